"""The placement oracle the attack suite judges generated pods with follows Kubernetes' node-selection
semantics: each case below is one sentence of the scheduling documentation."""

import pytest
from placement_oracle import (
    JURISDICTION_KEY,
    POOL_KEY,
    REGION_KEY,
    Node,
    escapes,
    make_universe,
    matches_expression,
    schedulable_on,
    tolerates,
)

UNIVERSE = make_universe()
RESEARCH = {"h100", "l40s"}
CITIZEN = {"l40s"}
TOLERATE_GPU = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def term(*expressions: dict, fields: list | None = None) -> dict:
    required = {"nodeSelectorTerms": [{"matchExpressions": list(expressions), "matchFields": fields or []}]}
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}}


def expr(key: str, operator: str, *values: str) -> dict:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


@pytest.mark.parametrize(
    ("expression", "labels", "expected"),
    [
        (expr("k", "In", "a"), {"k": "a"}, True),
        (expr("k", "In", "a"), {}, False),
        (expr("k", "NotIn", "a"), {}, True),
        (expr("k", "NotIn", "a"), {"k": "a"}, False),
        (expr("k", "Exists"), {"k": ""}, True),
        (expr("k", "DoesNotExist"), {"k": "x"}, False),
        (expr("k", "Gt", "3"), {"k": "4"}, True),
        (expr("k", "Gt", "3"), {"k": "DE"}, False),
        (expr("k", "Lt", "3"), {}, False),
    ],
    ids=lambda v: str(v),
)
def test_an_expression_matches_as_kubernetes_documents(expression, labels, expected):
    assert matches_expression(labels, expression) is expected


def test_the_universe_holds_every_combination_and_taints_the_h100_nodes():
    assert len(UNIVERSE) == 3 * 4 * 4 * 2
    assert all(bool(n.taints) == (n.labels.get(POOL_KEY) == "h100") for n in UNIVERSE)


def test_a_pod_without_selection_escapes_both_ways():
    assert escapes({}, "DE", RESEARCH, UNIVERSE) == {"jurisdiction", "pool"}


def test_a_pod_pinned_by_node_selector_stays_inside():
    spec = {"nodeSelector": {JURISDICTION_KEY: "DE", POOL_KEY: "l40s"}}
    assert escapes(spec, "DE", CITIZEN, UNIVERSE) == set()


def test_not_in_the_foreign_value_still_reaches_nodes_without_the_label():
    spec = {"nodeSelector": {POOL_KEY: "l40s"}, **term(expr(JURISDICTION_KEY, "NotIn", "FR"))}
    assert escapes(spec, "DE", CITIZEN, UNIVERSE) == {"jurisdiction"}


def test_terms_are_ored_so_one_open_term_escapes():
    spec = term(expr(JURISDICTION_KEY, "In", "DE"), expr(POOL_KEY, "In", "l40s"))
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ].append({"matchExpressions": [expr(REGION_KEY, "In", "fr-par")]})
    assert "jurisdiction" in escapes(spec, "DE", CITIZEN, UNIVERSE)


def test_an_empty_term_matches_no_node():
    spec = {
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}
        }
    }
    assert not any(schedulable_on(spec, n) for n in UNIVERSE)


def test_the_confidential_pool_is_reached_only_by_tolerating_its_taint():
    selected = {"nodeSelector": {JURISDICTION_KEY: "DE", POOL_KEY: "h100"}}
    assert escapes(selected, "DE", CITIZEN, UNIVERSE) == set()
    assert escapes({**selected, "tolerations": TOLERATE_GPU}, "DE", CITIZEN, UNIVERSE) == {"pool"}


def test_match_fields_pin_one_node_by_name():
    foreign = next(n for n in UNIVERSE if n.labels.get(JURISDICTION_KEY) == "FR" and not n.taints)
    spec = term(fields=[expr("metadata.name", "In", foreign.name)])
    assert [n.name for n in UNIVERSE if schedulable_on(spec, n)] == [foreign.name]


def test_tolerations_follow_key_value_and_effect():
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert tolerates([{"operator": "Exists"}], taint)
    assert tolerates([{"key": "nvidia.com/gpu", "value": "present"}], taint)
    assert not tolerates([{"key": "nvidia.com/gpu", "value": "absent"}], taint)
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}], taint)


def test_node_name_binds_to_that_node_only():
    node = Node("x", {JURISDICTION_KEY: "FR"})
    assert schedulable_on({"nodeName": "x"}, node)
    assert escapes({"nodeName": "x"}, "DE", CITIZEN, [node]) == {"jurisdiction", "pool"}
