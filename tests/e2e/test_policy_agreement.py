"""The pure rule functions and the API server (the rendered ValidatingAdmissionPolicies and the
operator's webhooks, through server-side dry-run) reach the same verdict on every shared fixture."""

import json
import re
from typing import Any

import pytest
from factories import make_factory, make_tenant
from hypothesis import HealthCheck, given, settings
from identities import impersonating
from kubernetes.client.exceptions import ApiException
from policy_fixtures import FIXTURES, PROFILES, Fixture, instance, make_pod, with_spec, wrap
from policy_properties import generated_pods

from aifactory_operator.api.v1alpha1.aifactory import AIFactory
from aifactory_operator.constants import LABEL_ENFORCED
from aifactory_operator.kube.client import Kube
from aifactory_operator.policy.object_rules import check_object
from aifactory_operator.policy.placement import JURISDICTION, POOL, place, scope_of
from aifactory_operator.reconcile.admission_policies import FACTORY_POLICY_NAMES
from aifactory_operator.reconcile.tenants import TENANT_ADMIN_ROLE
from conftest import unique, wait_for

# In the compatibility suite that make compat runs on the oldest supported minor.
pytestmark = pytest.mark.compat

RULE_IN_MESSAGE = re.compile(r"\[([a-z-]+/[a-z-]+)\]")
AUTHOR = "agreement-author"  # a workload author holding the built-in edit role in each namespace


def judged(obj: dict[str, Any], profile: str) -> set[str]:
    """The rules the pure functions find in `obj` as the API server sees it: placed by the
    mutating webhook first, as it is while the operator runs, and written by a tenant."""
    body = make_factory("agree", tenants=[make_tenant("t", obj["metadata"]["namespace"])])
    body["spec"]["sovereignty"] = {**PROFILES[profile], "allowedEgress": []}
    factory = AIFactory.model_validate(body)
    scope = scope_of(factory, factory.spec.tenants[0])
    if obj["kind"] == "Pod":
        obj = {**obj, "spec": place(obj["spec"], scope)}
    return {v.rule for v in check_object(obj, factory.spec.sovereignty, scope=scope)}


def dry_run(kube: Kube, obj: dict[str, Any]) -> str | None:
    """None when the API server would admit `obj`; its refusal message otherwise."""
    resource = kube.resource(obj["apiVersion"], obj["kind"])
    try:
        resource.create(body=obj, namespace=obj["metadata"]["namespace"], dry_run="All")
    except ApiException as error:
        assert error.status in (403, 422), error.body
        return str(json.loads(error.body).get("message", ""))
    return None


@pytest.fixture(scope="module")
def author(kubeconfig) -> Kube:
    return impersonating(kubeconfig, AUTHOR, "system:authenticated")


def grant_edit(kube: Kube, namespace: str) -> None:
    """The built-in edit role (every core and apps kind) and the tenant-admin role (our kinds)."""
    for role in ("edit", TENANT_ADMIN_ROLE):
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{AUTHOR}-{role}", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": AUTHOR}],
            }
        )


def refused_by_policy(refusal: str | None) -> bool:
    return refusal is not None and "ValidatingAdmissionPolicy" in refusal


@pytest.fixture(scope="module")
def tenant_namespaces(kube, author, operator) -> dict[str, str]:
    """One factory per sovereignty profile, each with a tenant namespace, policies in force."""
    namespaces, names = {}, []
    for profile, sovereignty in PROFILES.items():
        name, namespace = unique(f"agree-{profile}"), unique(f"agree-{profile}")
        body = make_factory(name, h100_nodes=0, l40s_nodes=0, tenants=[make_tenant("t", namespace)])
        body["spec"]["sovereignty"] = {**sovereignty, "allowedEgress": []}
        kube.apply(body)
        names.append(name)
        namespaces[profile] = namespace
    for namespace in namespaces.values():
        wait_for(lambda namespace=namespace: kube.get("v1", "Namespace", namespace), f"namespace {namespace}")
        wait_for(
            lambda namespace=namespace: (
                (kube.get("v1", "Namespace", namespace) or {})["metadata"]
                .get("labels", {})
                .get(LABEL_ENFORCED)
                == "true"
            ),
            f"the factory's policies proved in force in {namespace}",
        )
        grant_edit(kube, namespace)
        probe = instance(Fixture("probe", wrap("Deployment", with_spec(hostNetwork=True))), namespace)
        wait_for(
            lambda probe=probe: refused_by_policy(dry_run(author, probe)),
            f"the policies in force in {namespace}",
        )
    yield namespaces
    for name in names:
        kube.delete("aifactory.dev/v1alpha1", "AIFactory", name)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.id for f in FIXTURES])
def test_the_api_server_agrees_with_the_pure_rules(author, tenant_namespaces, fixture):
    namespace = tenant_namespaces[fixture.profile]
    obj = instance(fixture, namespace)
    pure = judged(obj, fixture.profile)
    refusal = dry_run(author, obj)
    assert fixture.rules <= pure
    assert (refusal is None) == (not pure), (refusal, pure)
    assert (refusal is None) == fixture.allowed, refusal
    if refusal is not None and "PodSecurity" not in refusal:
        # Refused by our own policy: the message names a rule the pure functions found.
        assert set(RULE_IN_MESSAGE.findall(refusal)) & pure, refusal


@pytest.fixture(scope="module")
def unguarded_namespace(kube, tenant_namespaces) -> str:
    """A namespace without Pod Security labels, bound (by this test) to the rendered pods policy
    with a tenant's factory as parameter: shows the policy holds even if Pod Security is lifted."""
    namespace, label = unique("nopsa"), unique("probe")
    factory = kube.list(
        "v1", "Namespace", label_selector=f"kubernetes.io/metadata.name={tenant_namespaces['default']}"
    )
    factory_name = factory[0]["metadata"]["labels"]["aifactory.dev/factory"]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"policy-probe": label}},
        }
    )
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": label},
        "spec": {
            "policyName": "aifactory-pods",
            "paramRef": {"name": factory_name, "parameterNotFoundAction": "Deny"},
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"policy-probe": label}}},
        },
    }
    kube.apply(binding)
    probe = instance(Fixture("probe", make_pod(hostNetwork=True)), namespace)
    wait_for(lambda: dry_run(kube, probe), "the probe binding in force")
    yield namespace
    kube.delete("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", label)
    kube.delete("v1", "Namespace", namespace)


POD_FIXTURES = [f for f in FIXTURES if f.obj["kind"] == "Pod" and f.profile == "default"]


@pytest.mark.parametrize("fixture", POD_FIXTURES, ids=[f.id for f in POD_FIXTURES])
def test_the_pods_policy_alone_refuses_with_the_rule_field_and_fix(kube, unguarded_namespace, fixture):
    """No tenant lists this namespace, so no pool is open to its pods: the policy fails closed
    and every pod breaks placement/pool, besides whatever the fixture breaks."""
    refusal = dry_run(kube, instance(fixture, unguarded_namespace))
    assert refusal is not None and "ValidatingAdmissionPolicy 'aifactory-pods'" in refusal
    [rule] = RULE_IN_MESSAGE.findall(refusal)
    assert rule in fixture.rules | {JURISDICTION, POOL}
    assert "spec." in refusal and (
        "remove" in refusal or "use" in refusal or "mirror" in refusal or "set" in refusal
    )


def test_every_factory_policy_is_bound_for_each_factory(kube, tenant_namespaces):
    bindings = kube.list("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding")
    for namespace in tenant_namespaces.values():
        labels = kube.get("v1", "Namespace", namespace)["metadata"]["labels"]
        factory = labels["aifactory.dev/factory"]
        mine = {b["spec"]["policyName"] for b in bindings if b["metadata"]["name"].endswith(f".{factory}")}
        assert mine == set(FACTORY_POLICY_NAMES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=generated_pods())
def test_a_sample_of_generated_pods_gets_the_same_verdict_from_the_api_server(
    author, tenant_namespaces, case
):
    pod, broken = case
    pod = {**pod, "metadata": {"name": "generated", "namespace": tenant_namespaces["default"]}}
    pure = judged(pod, "default")
    refusal = dry_run(author, pod)
    assert broken <= pure
    assert (refusal is None) == (not pure), (refusal, pure)
