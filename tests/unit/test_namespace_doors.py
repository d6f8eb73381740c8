"""Lifecycle doors, pure: when a tenant namespace is locked, unlocked and locked again, which
bindings outlive their factory, and the guard policies that hold all of it in the API server."""

from dataclasses import replace

from test_factory_plan import TENANT, settled, stored, unlocked

from aifactory_operator.policy.lifecycle import ORPHANED_NAMESPACE, check_namespace_owner
from aifactory_operator.reconcile.admission_policies import FACTORY_POLICY_NAMES
from aifactory_operator.reconcile.aifactory import plan_factory, plan_factory_deletion
from aifactory_operator.reconcile.enforcement import (
    construct_enforcement_probe,
    is_refused_by_factory,
    plan_orphan_sweep,
)
from aifactory_operator.reconcile.guard_policies import construct_guard_rails
from aifactory_operator.reconcile.podsecurity import restricted_container_security
from aifactory_operator.reconcile.tenants import construct_tenant_admin_role
from builders import make_factory

ENFORCED = "aifactory.dev/enforced"
BINDING = "ValidatingAdmissionPolicyBinding"


def namespace(name: str, factory: str, door: str | None = None, **meta: object) -> dict:
    labels = {"aifactory.dev/factory": factory, **({ENFORCED: door} if door else {})}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels, **meta}}


def binding(policy: str, factory: str) -> dict:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": BINDING,
        "metadata": {"name": f"{policy}.{factory}", "labels": {"aifactory.dev/factory": factory}},
    }


def guard(name: str) -> tuple[dict, dict]:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in construct_guard_rails(["operator"])}
    return objects[("ValidatingAdmissionPolicy", name)], objects[(BINDING, name)]


def test_a_namespace_no_factory_lists_is_refused_naming_the_factory_and_the_fix():
    [violation] = check_namespace_owner("research", "de-1", listed=False)
    assert violation.rule == ORPHANED_NAMESPACE
    assert "AIFactory 'de-1'" in str(violation) and "re-create the AIFactory 'de-1'" in str(violation)
    assert str(violation).endswith("[lifecycle/orphaned-namespace]")
    assert check_namespace_owner("research", "de-1", listed=True) == []


def test_the_probe_passes_pod_security_and_is_refused_by_any_factorys_locality_rule():
    probe = construct_enforcement_probe("research")
    assert probe["spec"]["nodeSelector"] == {"topology.kubernetes.io/region": "aifactory-enforcement-probe"}
    assert probe["spec"]["securityContext"]["runAsNonRoot"] is True
    assert probe["spec"]["containers"][0]["securityContext"] == restricted_container_security()


def test_only_a_refusal_by_the_factorys_own_binding_proves_enforcement():
    theirs = "ValidatingAdmissionPolicy 'aifactory-pods' with binding 'aifactory-pods.de-1' denied request"
    assert is_refused_by_factory(theirs, "de-1")
    assert not is_refused_by_factory(theirs.replace("de-1", "de-2"), "de-1")
    assert not is_refused_by_factory('serviceaccount "default" not found', "de-1")
    assert not is_refused_by_factory(None, "de-1")


def test_a_factory_is_not_ready_until_its_namespaces_are_unlocked():
    factory = make_factory(tenants=[TENANT])
    waiting = plan_factory(factory, stored(settled(factory)))
    assert waiting.outcome.state == "progressing" and waiting.outcome.reason == "EnforcementPending"
    assert "research" in waiting.outcome.message
    assert plan_factory(factory, unlocked(settled(factory))).outcome.state == "ready"


def test_a_factory_listing_a_locked_namespace_again_reopens_it_for_the_probe():
    factory = make_factory(tenants=[TENANT])
    observed = unlocked(settled(factory))
    observed.namespaces["research"]["metadata"]["labels"][ENFORCED] = "false"
    plan = plan_factory(factory, observed)
    assert plan.enforce == ["research"]
    assert [(ref.name, body) for ref, body in plan.patch if ref.kind == "Namespace"] == [
        ("research", {"metadata": {"labels": {ENFORCED: None}}})
    ]


def test_deleting_a_factory_whose_namespace_holds_data_locks_it_and_keeps_the_bindings():
    factory = make_factory(tenants=[TENANT])
    observed = replace(unlocked(settled(factory)), datasets={"research": ["corpus"]})
    plan = plan_factory_deletion(factory, observed)
    assert BINDING not in {ref.kind for ref in plan.delete}
    [body] = [body for ref, body in plan.patch if ref.kind == "Namespace"]
    assert body["metadata"]["labels"] == {ENFORCED: "false"}
    assert body["metadata"]["annotations"] == {"aifactory.dev/retained": "holds Dataset research/corpus"}


def test_deleting_a_factory_whose_namespaces_all_go_deletes_its_bindings():
    factory = make_factory(tenants=[TENANT])
    plan = plan_factory_deletion(factory, stored(settled(factory)))
    assert {ref.name for ref in plan.delete if ref.kind == BINDING} == {
        f"{policy}.de-1" for policy in FACTORY_POLICY_NAMES
    }


def test_the_sweep_deletes_bindings_of_a_gone_factory_only_once_no_namespace_carries_its_label():
    bindings = [
        binding("aifactory-pods", "gone"),
        binding("aifactory-pods", "held"),
        binding("aifactory-pods", "live"),
    ]
    namespaces = {
        "kept": namespace("kept", "held", "false"),
        "leaving": namespace("leaving", "gone", "false", deletionTimestamp="2026-01-01T00:00:00Z"),
    }
    stale, locks = plan_orphan_sweep(namespaces, bindings, {"live"})
    assert [b["metadata"]["name"] for b in stale] == ["aifactory-pods.gone"]
    assert locks == []


def test_the_sweep_locks_a_namespace_still_unlocked_for_a_factory_that_is_gone():
    namespaces = {"open": namespace("open", "forced", "true"), "new": namespace("new", "forced")}
    _, locks = plan_orphan_sweep(namespaces, [], {"other"})
    assert locks == [
        (
            "open",
            {
                "metadata": {
                    "labels": {ENFORCED: "false"},
                    "annotations": {"aifactory.dev/retained": "AIFactory 'forced' no longer exists"},
                }
            },
        )
    ]


def test_the_sweep_runs_only_when_the_factories_were_observed():
    factory = make_factory(tenants=[TENANT])
    observed = replace(unlocked(settled(factory)), all_bindings=[binding("aifactory-pods", "gone")])
    assert plan_factory(factory, observed).delete == []
    swept = plan_factory(factory, replace(observed, factory_names=frozenset({"de-1"})))
    assert [ref.name for ref in swept.delete] == ["aifactory-pods.gone"]


def test_the_lifecycle_guard_judges_tenant_writes_in_every_namespace_not_unlocked():
    policy, bound = guard("aifactory-lifecycle-guard")
    resources = {r for rule in policy["spec"]["matchConstraints"]["resourceRules"] for r in rule["resources"]}
    assert {"pods", "services", "persistentvolumeclaims", "deployments", "jobs", "datasets"} <= resources
    assert {"trainingjobs", "modelendpoints", "cronjobs", "statefulsets"} <= resources
    assert bound["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"] == [
        {"key": "aifactory.dev/factory", "operator": "Exists"},
        {"key": ENFORCED, "operator": "NotIn", "values": ["true"]},
    ]
    assert "'operator'" in policy["spec"]["matchConditions"][0]["expression"]
    rules = [v["message"].rsplit("[", 1)[1] for v in policy["spec"]["validations"]]
    assert rules == ["lifecycle/orphaned-namespace]", "lifecycle/not-yet-enforced]"]


def test_the_operator_objects_guard_matches_on_the_old_or_new_label_and_refuses_spoofs():
    policy, bound = guard("aifactory-operator-objects-guard")
    operations = {
        (resource, op)
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]
        for resource in rule["resources"]
        for op in rule["operations"]
    }
    for kind in ("deployments", "jobs", "services", "horizontalpodautoscalers", "poddisruptionbudgets"):
        assert {(kind, "UPDATE"), (kind, "DELETE"), (kind, "CREATE")} <= operations
    assert {("rolebindings", "CREATE"), ("networkpolicies", "CREATE"), ("pods", "CREATE")} <= operations
    assert bound["spec"]["matchResources"]["objectSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "aifactory-operator"}
    }
    messages = " ".join(v.get("messageExpression", v["message"]) for v in policy["spec"]["validations"])
    assert "ownerReferences" in messages and "[guard-rail/operator-objects]" in messages


def test_the_tenant_admin_role_grants_no_scale_subresource():
    """A Scale carries no labels, so no object selector guards the operator's Deployments there:
    the role must keep not granting it."""
    resources = {r for rule in construct_tenant_admin_role()["rules"] for r in rule["resources"]}
    assert not any(r.endswith("/scale") for r in resources)


def test_the_tenant_cannot_unlock_its_own_namespace():
    policy, _ = guard("aifactory-namespace-guard")
    [check] = policy["spec"]["validations"]
    # Every protected key of the new labels must have been in the old ones: adding enforced=true fails.
    assert ".all(k, k in oldObject.metadata.?labels.orValue({}))" in check["expression"]


def test_the_webhook_locks_a_labelled_namespace_no_factory_lists():
    from aifactory_operator.handlers.webhook import check_own_kind

    dataset = {"apiVersion": "aifactory.dev/v1alpha1", "kind": "Dataset", "spec": {"jurisdiction": "DE"}}
    indexes = {"factories_by_tenant_namespace": {}, "factory_label_by_namespace": {"kept": ["de-1"]}}
    [violation] = check_own_kind(dataset, "kept", indexes)
    assert violation.rule == "lifecycle/orphaned-namespace" and "AIFactory 'de-1'" in violation.message
    [unknown] = check_own_kind(dataset, "unseen", indexes)
    assert "AIFactory '(unknown)'" in unknown.message
