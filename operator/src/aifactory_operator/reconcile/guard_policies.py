"""Guard rails: ValidatingAdmissionPolicies bound cluster-wide, with no parameter object, that keep
anyone short of the operator and cluster admins from relabelling a tenant namespace, editing the
operator's objects or rewriting the audit log. They stand whether or not a factory exists."""

from typing import Any

from ..constants import (
    AUDIT_ANCHOR_NAME,
    AUDIT_SEGMENT_PREFIX,
    GROUP,
    LABEL_FACTORY,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    OPERATOR_NAMESPACE,
)
from .admission_policies import VAP_API, construct_policy, quote, rule, validation
from .ownership import managed_labels

Obj = dict[str, Any]
PROTECTED_LABEL_PREFIXES = (f"{GROUP}/", "pod-security.kubernetes.io/")
NAMESPACE_GUARD = "guard-rail/namespace-labels"
TENANT_OBJECTS_GUARD = "guard-rail/tenant-objects"
AUDIT_LOG_GUARD = "guard-rail/audit-log"
AUDIT_ANCHOR_GUARD = "guard-rail/audit-anchor"
# The names `policy.audit.segment_name` gives, as an RE2 pattern for CEL.
SEGMENT = f"^{AUDIT_SEGMENT_PREFIX}[0-9]{{6,}}$"
# Only cluster admins may change the audit log; every other identity, the operator's included, may append.
NOT_CLUSTER_ADMIN = {
    "name": "not-cluster-admin",
    "expression": "!(has(request.userInfo.groups)"
    " && request.userInfo.groups.exists(g, g == 'system:masters'))",
}


def is_privileged(exempt_users: list[str]) -> str:
    """CEL: the request comes from the operator, a cluster admin or a kube-system controller (which
    must be able to clean up a namespace being deleted)."""
    users = " || ".join(f"request.userInfo.username == {quote(u)}" for u in exempt_users) or "false"
    return (
        "(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g == 'system:masters'))"
        f" || {users} || request.userInfo.username.startsWith('system:serviceaccount:kube-system:')"
        " || request.userInfo.username == 'system:kube-controller-manager'"
    )


def is_protected(key: str) -> str:
    return " || ".join(f"{key}.startsWith({quote(prefix)})" for prefix in PROTECTED_LABEL_PREFIXES)


def guard_policy(name: str, rules: list[Obj], conditions: list[Obj], validations: list[Obj]) -> Obj:
    return construct_policy(name, rules, [], validations, conditions=conditions, by_factory=False)


def guard_binding(policy: str, match: Obj) -> Obj:
    return {
        "apiVersion": VAP_API,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy, "labels": managed_labels()},
        "spec": {"policyName": policy, "validationActions": ["Deny"], "matchResources": match},
    }


def construct_guard_rails(exempt_users: list[str], namespace: str = OPERATOR_NAMESPACE) -> list[Obj]:
    """Tenants (and anyone short of the operator and cluster admins) cannot relabel a tenant
    namespace, edit or delete the operator's guard-rail objects, or rewrite the audit log."""
    not_privileged = {"name": "not-privileged", "expression": f"!({is_privileged(exempt_users)})"}
    old_labels = "oldObject.metadata.?labels.orValue({})"
    new_labels = "object.metadata.?labels.orValue({})"
    namespace_guard = guard_policy(
        "aifactory-namespace-guard",
        [rule("", "v1", ["namespaces"], ["UPDATE"])],
        [
            not_privileged,
            {"name": "tenant-namespace", "expression": f"{quote(LABEL_FACTORY)} in {old_labels}"},
        ],
        [
            validation(
                NAMESPACE_GUARD,
                "metadata.labels",
                f"{old_labels}.filter(k, {is_protected('k')}).all(k, k in {new_labels} &&"
                f" {new_labels}[k] == {old_labels}[k]) && {new_labels}.filter(k, {is_protected('k')})"
                f".all(k, k in {old_labels})",
                "the aifactory.dev/* and pod-security.kubernetes.io/* labels of a tenant namespace are"
                " the factory's; change the AIFactory instead",
            )
        ],
    )
    tenant_guard = guard_policy(
        "aifactory-tenant-objects-guard",
        [
            rule("networking.k8s.io", "v1", ["networkpolicies"], ["UPDATE", "DELETE"]),
            rule("", "v1", ["resourcequotas", "limitranges"], ["UPDATE", "DELETE"]),
            rule("rbac.authorization.k8s.io", "v1", ["rolebindings"], ["UPDATE", "DELETE"]),
        ],
        [not_privileged],
        [
            validation(
                TENANT_OBJECTS_GUARD,
                "metadata",
                "false",
                "the operator's NetworkPolicies, ResourceQuotas, LimitRanges and RoleBindings in a tenant"
                " namespace are the factory's guard rails; change the AIFactory instead",
            )
        ],
    )
    managed = {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY}}
    return [
        namespace_guard,
        tenant_guard,
        *construct_audit_guards(namespace),
        guard_binding("aifactory-namespace-guard", {}),
        guard_binding(
            "aifactory-tenant-objects-guard",
            {
                "namespaceSelector": {"matchExpressions": [{"key": LABEL_FACTORY, "operator": "Exists"}]},
                "objectSelector": managed,
            },
        ),
    ]


def construct_audit_guards(namespace: str) -> list[Obj]:
    """The audit log's segments may only grow and its anchor may only move forward, for everyone but
    a cluster admin. Both are matched by name in `namespace` (whose kubernetes.io/metadata.name label
    the API server sets and keeps), never by a label the guarded party could remove. kube-system's
    controllers are not exempt: the garbage collector would delete a segment given an owner, and the
    namespace controller every segment of a deleted namespace."""
    only_here = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    segments = guard_policy(
        "aifactory-audit-log-guard",
        [rule("", "v1", ["configmaps"], ["UPDATE", "DELETE"])],
        [
            NOT_CLUSTER_ADMIN,
            {"name": "audit-segment", "expression": f"request.name.matches({quote(SEGMENT)})"},
        ],
        [
            validation(
                AUDIT_LOG_GUARD,
                "metadata.name",
                "request.operation != 'DELETE'",
                "an audit segment is never deleted: the log is append-only",
            ),
            validation(
                AUDIT_LOG_GUARD,
                "data",
                "request.operation == 'DELETE' || oldObject.?data.orValue({}).all(k, k in"
                " object.?data.orValue({}) && object.data[k] == oldObject.data[k])",
                "the audit log is append-only: entries may be added, never changed or removed",
            ),
            *kept_metadata(AUDIT_LOG_GUARD, "an audit segment"),
        ],
    )
    anchor = guard_policy(
        "aifactory-audit-anchor-guard",
        [rule("", "v1", ["configmaps"], ["CREATE", "UPDATE", "DELETE"])],
        [
            NOT_CLUSTER_ADMIN,
            {"name": "audit-anchor", "expression": f"request.name == {quote(AUDIT_ANCHOR_NAME)}"},
        ],
        anchor_validations(),
    )
    return [
        segments,
        anchor,
        guard_binding("aifactory-audit-log-guard", only_here),
        guard_binding("aifactory-audit-anchor-guard", only_here),
    ]


def anchor_validations() -> list[Obj]:
    """The anchor holds a count and a hash; the count only grows, and the hash changes only with it."""
    entries, head = "object.?data.?entries.orValue('')", "object.?data.?head.orValue('')"
    grows = "int(object.data.entries) >= int(oldObject.data.entries)"
    return [
        validation(
            AUDIT_ANCHOR_GUARD,
            "metadata.name",
            "request.operation != 'DELETE'",
            "the audit anchor is never deleted: `aifactory audit verify` checks the log's end against it",
        ),
        validation(
            AUDIT_ANCHOR_GUARD,
            "data",
            f"request.operation == 'DELETE' || ({entries}.matches('^[0-9]{{1,18}}$')"
            f" && {head}.matches('^[0-9a-f]{{64}}$'))",
            "the audit anchor holds data.entries (an entry count) and data.head (a sha256 in hex)",
        ),
        validation(
            AUDIT_ANCHOR_GUARD,
            "data.entries",
            f"request.operation != 'UPDATE' || {grows}",
            "the audit anchor's entry count may only grow",
        ),
        validation(
            AUDIT_ANCHOR_GUARD,
            "data.head",
            "request.operation != 'UPDATE' || object.data.head == oldObject.data.head"
            " || int(object.data.entries) > int(oldObject.data.entries)",
            "the audit anchor's head may change only when its entry count grows",
        ),
        *kept_metadata(AUDIT_ANCHOR_GUARD, "the audit anchor"),
    ]


def kept_metadata(rule_id: str, what: str) -> list[Obj]:
    """On update: labels and annotations kept, no owner (the garbage collector would delete the
    object), never immutable (the operator could no longer write it)."""
    updated = "request.operation != 'UPDATE' || "
    kept = " && ".join(
        f"oldObject.metadata.?{field}.orValue({{}}).all(k, k in object.metadata.?{field}.orValue({{}})"
        f" && object.metadata.{field}[k] == oldObject.metadata.{field}[k])"
        for field in ("labels", "annotations")
    )
    owners = "object.metadata.?ownerReferences.orValue([]) == oldObject.metadata.?ownerReferences.orValue([])"
    return [
        validation(
            rule_id,
            "metadata",
            updated + kept,
            f"the labels and annotations of {what} may be added, never removed or changed",
        ),
        validation(
            rule_id,
            "metadata.ownerReferences",
            updated + owners,
            f"{what} has no owner: the garbage collector would delete it with its owner",
        ),
        validation(
            rule_id,
            "immutable",
            updated + "!object.?immutable.orValue(false)",
            f"{what} is never made immutable: the operator could no longer append to it",
        ),
    ]
