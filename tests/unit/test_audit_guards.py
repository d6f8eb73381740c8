"""The audit log's guard rails, as objects: matched by names in the operator namespace (never by a
label the guarded party could remove), and exempting cluster admins only. What they refuse is held to
the real API server in tests/e2e/test_audit_log.py."""

import re

from aifactory_operator.policy.audit import segment_name
from aifactory_operator.reconcile.guard_policies import SEGMENT, construct_audit_guards, construct_guard_rails

OPERATOR = "system:serviceaccount:aifactory-system:aifactory-operator"


def by_name(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


GUARDS = construct_audit_guards("aifactory-system")
POLICIES = by_name(GUARDS, "ValidatingAdmissionPolicy")
BINDINGS = by_name(GUARDS, "ValidatingAdmissionPolicyBinding")


def test_the_guards_are_part_of_the_guard_rails():
    rails = construct_guard_rails([OPERATOR])

    assert set(POLICIES) <= set(by_name(rails, "ValidatingAdmissionPolicy"))
    assert set(BINDINGS) == {"aifactory-audit-log-guard", "aifactory-audit-anchor-guard"}


def test_bindings_select_the_operator_namespace_by_its_name_and_no_object_label():
    for binding in BINDINGS.values():
        match = binding["spec"]["matchResources"]
        assert match == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "aifactory-system"}}
        }
        assert binding["spec"]["validationActions"] == ["Deny"]


def test_segments_are_matched_by_their_name_pattern():
    [_, by_segment_name] = POLICIES["aifactory-audit-log-guard"]["spec"]["matchConditions"]
    pattern = re.compile(SEGMENT)

    assert by_segment_name["expression"].startswith("request.name.matches(")
    assert all(pattern.match(segment_name(n)) for n in (1, 42, 1_000_000))
    assert not any(
        pattern.match(n) for n in ("aifactory-audit-anchor", "aifactory-audit-1", "x-aifactory-audit-000001")
    )


def test_only_cluster_admins_are_exempt():
    for policy in POLICIES.values():
        [exempt, _] = policy["spec"]["matchConditions"]
        assert exempt["expression"] == (
            "!(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g == 'system:masters'))"
        )
        assert policy["spec"]["failurePolicy"] == "Fail"


def test_segments_refuse_delete_edits_relabelling_owners_and_immutability():
    policy = POLICIES["aifactory-audit-log-guard"]
    messages = [v["message"] for v in policy["spec"]["validations"]]

    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["UPDATE", "DELETE"]
    assert [m.split(":")[0] for m in messages] == [
        "metadata.name",
        "data",
        "metadata",
        "metadata.ownerReferences",
        "immutable",
    ]
    assert all(m.endswith("[guard-rail/audit-log]") for m in messages)


def test_the_anchor_may_only_grow():
    policy = POLICIES["aifactory-audit-anchor-guard"]
    validations = {v["message"].split(":")[0]: v for v in policy["spec"]["validations"]}

    assert policy["spec"]["matchConditions"][1]["expression"] == "request.name == 'aifactory-audit-anchor'"
    assert (
        "int(object.data.entries) >= int(oldObject.data.entries)" in validations["data.entries"]["expression"]
    )
    assert "[guard-rail/audit-anchor]" in validations["data.head"]["message"]
