"""Positive placement: what confines a pod, what the mutation adds, and which pools a tenant gets."""

import pytest

from aifactory_operator.api.v1alpha1.aifactory import AIFactory
from aifactory_operator.constants import LABEL_JURISDICTION, LABEL_POOL
from aifactory_operator.policy.allow_lists import check_priority_class, is_core_resource
from aifactory_operator.policy.placement import (
    JURISDICTION,
    POOL,
    TenantScope,
    check_placement,
    is_confined,
    place,
    scope_of,
)
from builders import make_factory_body

SCOPE = TenantScope("DE", ("l40s", "a100"))
J, P = LABEL_JURISDICTION, LABEL_POOL


def pod(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [], **spec}}


def terms(*expression_lists):
    required = {"nodeSelectorTerms": [{"matchExpressions": list(e)} for e in expression_lists]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def expr(key, operator, *values):
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


@pytest.mark.parametrize(
    ("spec", "confined"),
    [
        ({"nodeSelector": {J: "DE"}}, True),
        ({"nodeSelector": {J: "FR"}}, False),
        ({}, False),
        ({"affinity": terms([expr(J, "In", "DE")])}, True),
        ({"affinity": terms([expr(J, "In", "DE", "FR")])}, False),
        ({"affinity": terms([expr(J, "NotIn", "FR")])}, False),
        ({"affinity": terms([expr(J, "Exists")])}, False),
        ({"affinity": terms([expr(J, "In", "DE")], [expr("kubernetes.io/hostname", "In", "x")])}, False),
        ({"affinity": terms([expr(J, "In", "DE")], [expr(J, "In", "DE"), expr("a", "Exists")])}, True),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}}, False),
        ({"nodeSelector": {J: "DE"}, "affinity": terms([expr(J, "NotIn", "DE")])}, True),
    ],
    ids=[
        "selector-inside",
        "selector-outside",
        "nothing",
        "one-term-in",
        "in-with-a-foreign-value",
        "notin-only",
        "exists-only",
        "a-second-term-without-it",
        "every-term-has-it",
        "empty-required",
        "selector-wins-over-terms",
    ],
)
def test_a_pod_is_confined_only_when_every_node_it_can_match_carries_the_value(spec, confined):
    assert is_confined(spec, J, ("DE",)) is confined


def test_an_unplaced_pod_breaks_both_placement_rules():
    assert [v.rule for v in check_placement(pod(), SCOPE)] == [JURISDICTION, POOL]


def test_only_pods_are_judged_for_placement_templates_are_judged_at_their_pods():
    assert check_placement({"kind": "Deployment", "spec": {}}, SCOPE) == []


def test_placing_adds_the_jurisdiction_and_the_pools_to_every_required_term():
    spec = {"affinity": terms([expr("kubernetes.io/hostname", "In", "n1")], [expr("rack", "In", "r2")])}
    placed = place(spec, SCOPE)
    assert placed["nodeSelector"] == {J: "DE"}
    assert check_placement(pod(**placed), SCOPE) == []
    required = placed["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert [t["matchExpressions"][-1] for t in required["nodeSelectorTerms"]] == [
        expr(P, "In", "l40s", "a100")
    ] * 2


def test_placing_a_single_pool_uses_the_node_selector_and_keeps_the_authors_choices():
    placed = place({"nodeSelector": {"zone": "z1"}}, TenantScope("DE", ("h100",)))
    assert placed == {"nodeSelector": {"zone": "z1", J: "DE", P: "h100"}}


def test_placing_never_overrides_a_value_the_author_set_so_the_rule_refuses_it():
    placed = place({"nodeSelector": {J: "FR", P: "h100"}}, SCOPE)
    assert placed["nodeSelector"] == {J: "FR", P: "h100"}
    assert [v.rule for v in check_placement(pod(**placed), SCOPE)] == [JURISDICTION, POOL]


def test_placing_is_idempotent():
    once = place({}, SCOPE)
    assert place(once, SCOPE) == once


def factory_with(pools, tenants) -> AIFactory:
    return AIFactory.model_validate(make_factory_body(pools=pools, tenants=tenants))


def pool(name, product, classification=None):
    extra = {"classification": classification} if classification else {}
    return {"name": name, "gpuProduct": product, "region": "de-fra", **extra}


def tenant(clearance, *quota, priority_classes=()):
    return {
        "name": "t",
        "namespaces": ["t"],
        "clearance": clearance,
        "gpuQuota": [{"product": p, "gpus": g} for p, g in quota],
        "priorityClasses": list(priority_classes),
    }


def test_a_tenant_gets_the_pools_it_is_cleared_for_and_holds_quota_for():
    factory = factory_with(
        [
            pool("secret", "H100", "confidential"),
            pool("open", "L40S", "public"),
            pool("any", "L40S"),
            pool("a", "A100"),
        ],
        [tenant("internal", ("H100", 8), ("L40S", 4), ("A100", 0))],
    )
    scope = scope_of(factory, factory.spec.tenants[0])
    assert scope == TenantScope("DE", ("open", "any"), ())


def test_priority_classes_are_an_allow_list_per_tenant():
    scope = TenantScope("DE", (), ("research-high",))
    assert check_priority_class(pod(priorityClassName="research-high"), scope) == []
    assert check_priority_class(pod(), scope) == []
    [violation] = check_priority_class(pod(priorityClassName="system-node-critical"), scope)
    assert violation.rule == "allow-list/priority-class"
    assert "system-node-critical" in violation.message


@pytest.mark.parametrize(
    ("name", "core"),
    [
        ("cpu", True),
        ("hugepages-2Mi", True),
        ("kubernetes.io/batch-cpu", True),
        ("example.kubernetes.io/x", True),
        ("nvidia.com/gpu", False),
        ("nvidia.com/mig-1g.10gb", False),
        ("kubernetes.io.evil.com/gpu", False),
    ],
)
def test_only_core_resources_are_open_to_every_pod(name, core):
    assert is_core_resource(name) is core
