"""Positive placement against the real API server: pods that do not say where they run are placed
inside the jurisdiction on the tenant's pools (by the operator's webhook, and by kube-apiserver
itself where it serves MutatingAdmissionPolicy), pods that say otherwise are refused, and only the
scheduler binds a tenant pod to a node."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from factories import make_factory, make_restricted_pod, make_tenant
from identities import impersonating, user_with_cluster_role
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aifactory_operator.constants import API_VERSION, LABEL_JURISDICTION, LABEL_POOL
from aifactory_operator.kube.client import Kube
from conftest import unique, wait_for

pytestmark = pytest.mark.compat
POOL_KEY = "requiredDuringSchedulingIgnoredDuringExecution"


def created(kube: Kube, body: dict[str, Any]) -> dict[str, Any] | str:
    """The pod as the API server stored it (dry run), or its refusal message."""
    try:
        result = kube.resource("v1", "Pod").create(
            body=body, namespace=body["metadata"]["namespace"], dry_run="All"
        )
    except ApiException as error:
        return str(json.loads(error.body).get("message", ""))
    return dict(result.to_dict())


def placement_of(pod: dict[str, Any]) -> tuple[str | None, set[str]]:
    """The jurisdiction the pod is confined to, and the pools (from its selector or its terms)."""
    spec = pod["spec"]
    selector = spec.get("nodeSelector") or {}
    if LABEL_POOL in selector:
        return selector.get(LABEL_JURISDICTION), {selector[LABEL_POOL]}
    terms = spec["affinity"]["nodeAffinity"][POOL_KEY]["nodeSelectorTerms"]
    pools = {v for t in terms for e in t["matchExpressions"] if e["key"] == LABEL_POOL for v in e["values"]}
    return selector.get(LABEL_JURISDICTION), pools


@pytest.fixture(scope="module")
def placed(kube, kubectl, operator) -> Iterator[dict[str, str]]:
    """Tenant 'team' cleared internal, with quota on both products: the confidential h100 pool is
    above its clearance, so only l40s is open to it."""
    name, namespace = unique("place"), unique("team")
    quota = [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 8}, {"product": "NVIDIA-L40S", "gpus": 4}]
    body = make_factory(
        name,
        h100_nodes=1,
        l40s_nodes=1,
        tenants=[make_tenant("team", namespace, clearance="internal", gpuQuota=quota)],
    )
    body["spec"]["nodePools"][0]["classification"] = "confidential"
    kube.apply(body)
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    probe = make_restricted_pod(unique("probe"), namespace, nodeSelector={LABEL_JURISDICTION: "FR"})
    wait_for(lambda: isinstance(created(kube, probe), str), "the policies in force")
    yield {"factory": name, "namespace": namespace}
    kube.delete(API_VERSION, "AIFactory", name)
    kube.delete("v1", "Namespace", namespace)


def test_a_pod_that_names_no_nodes_is_placed_in_the_jurisdiction_on_the_tenants_pools(kube, placed):
    pod = created(kube, make_restricted_pod(unique("plain"), placed["namespace"]))
    assert isinstance(pod, dict), pod
    assert placement_of(pod) == ("DE", {"l40s"})


def test_a_pod_on_a_pool_above_its_tenants_clearance_is_refused(kube, placed):
    pod = make_restricted_pod(unique("high"), placed["namespace"], nodeSelector={LABEL_POOL: "h100"})
    refusal = created(kube, pod)
    assert isinstance(refusal, str) and "[placement/pool]" in refusal and "(l40s)" in refusal


@pytest.mark.parametrize(
    "affinity",
    [
        {"key": LABEL_JURISDICTION, "operator": "NotIn", "values": ["FR"]},
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["foreign-node"]},
    ],
    ids=["notin-on-the-jurisdiction", "a-key-no-rule-inspected"],
)
def test_node_affinity_cannot_widen_placement_past_the_injected_jurisdiction(kube, placed, affinity):
    """Whatever the author asks for is ANDed with the jurisdiction the mutation adds."""
    terms = [{"matchExpressions": [affinity]}]
    pod = make_restricted_pod(
        unique("aff"),
        placed["namespace"],
        affinity={"nodeAffinity": {POOL_KEY: {"nodeSelectorTerms": terms}}},
    )
    stored = created(kube, pod)
    assert isinstance(stored, dict), stored
    assert placement_of(stored) == ("DE", {"l40s"})


def grant(kube: Kube, namespace: str, user: str, rules: list[dict[str, Any]] | None = None) -> None:
    """`user` gets the built-in edit role in `namespace`, or a Role with `rules`."""
    role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
    if rules is not None:
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": user, "namespace": namespace},
                "rules": rules,
            }
        )
        role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user}
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": user, "namespace": namespace},
            "roleRef": role,
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )


def test_only_the_scheduler_binds_a_tenant_pod(kube, kubeconfig, placed):
    """Even an identity that RBAC lets bind (a compromised controller's, say) cannot place a
    tenant pod on a node of its choosing: a Binding skips the pod's node selection."""
    namespace, name = placed["namespace"], unique("held")
    # Placed, but on no node yet: no node carries the extra label.
    pod = make_restricted_pod(name, namespace, nodeSelector={"example.com/never": "true"})
    kube.resource("v1", "Pod").create(body=pod, namespace=namespace)
    grant(
        kube, namespace, "binder", [{"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["create"]}]
    )
    binder = impersonating(kubeconfig, "binder", "system:authenticated")
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "foreign-node"},
    }
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(binder.api_client).create_namespaced_pod_binding(name, namespace, binding)
    assert "[placement/binding]" in str(refused.value.body)
    assert not (kube.get("v1", "Pod", name, namespace) or {}).get("spec", {}).get("nodeName")
    kube.delete("v1", "Pod", name, namespace)


def test_a_tenant_network_policy_is_refused_even_with_the_edit_role(kube, kubeconfig, placed):
    """NetworkPolicies add up, so one more can only open traffic: only the operator writes them."""
    grant(kube, placed["namespace"], "editor")
    editor = impersonating(kubeconfig, "editor", "system:authenticated")
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": placed["namespace"]},
        "spec": {"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]},
    }
    with pytest.raises(ApiException) as refused:
        editor.resource("networking.k8s.io/v1", "NetworkPolicy").create(
            body=policy, namespace=placed["namespace"]
        )
    assert "[guard-rail/network-policy]" in str(refused.value.body)


def test_with_the_operator_down_pods_are_placed_by_the_api_server_or_refused(kube, placed, operator):
    """Where kube-apiserver serves MutatingAdmissionPolicy it places the pod itself; where it does
    not (1.35), the pod is refused until the operator is back: never admitted unplaced."""
    mutation = "mutatingadmissionpolicies" in kube.served_resources("admissionregistration.k8s.io/v1")
    terms = [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]
    with_a_term = {"affinity": {"nodeAffinity": {POOL_KEY: {"nodeSelectorTerms": terms}}}}
    operator.stop()
    try:
        outcomes = [
            created(kube, make_restricted_pod(unique("down"), placed["namespace"], **spec))
            for spec in ({}, with_a_term)
        ]
    finally:
        operator.start()
    for outcome in outcomes:
        if mutation:
            assert isinstance(outcome, dict), outcome
            assert placement_of(outcome) == ("DE", {"l40s"})
        else:
            assert isinstance(outcome, str) and "[placement/" in outcome


def test_nobody_but_the_operator_makes_a_namespace_a_tenant_namespace(kube, kubeconfig, placed):
    """Creating a namespace with a factory's labels, or adding them to one, would claim the
    factory's rules and rights for it: refused even to a user allowed to manage namespaces."""
    rules = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "patch", "get"]}]
    claimed = {
        "metadata": {"name": unique("claimed"), "labels": {"aifactory.dev/factory": placed["factory"]}}
    }
    plain = unique("plain")
    with user_with_cluster_role(kube, kubeconfig, unique("ns-maker"), unique("ns-maker"), rules) as maker:
        namespaces = maker.resource("v1", "Namespace")

        def refusal_of_claim() -> str:
            try:
                namespaces.create(body={"apiVersion": "v1", "kind": "Namespace", **claimed}, dry_run="All")
            except ApiException as error:
                return str(error.body)
            return "admitted"

        # The role binding reaches kube-apiserver's authorizer through an informer: until then RBAC refuses.
        refusal = wait_for(
            lambda: r if "forbidden: User" not in (r := refusal_of_claim()) else None, "the grant"
        )
        assert "[guard-rail/namespace-labels]" in refusal
        namespaces.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plain}})
        try:
            with pytest.raises(ApiException) as refused:
                namespaces.patch(
                    body={"metadata": {"labels": {"aifactory.dev/factory": placed["factory"]}}},
                    name=plain,
                    content_type="application/merge-patch+json",
                )
            assert "[guard-rail/namespace-labels]" in str(refused.value.body)
        finally:
            kube.delete("v1", "Namespace", plain)
