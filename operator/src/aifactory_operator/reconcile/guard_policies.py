"""Guard rails: ValidatingAdmissionPolicies bound cluster-wide, with no parameter object, that keep
anyone short of the operator and cluster admins from relabelling a tenant namespace, editing the
operator's objects, writing in a tenant namespace that is not (or no longer) enforced, or rewriting
the audit log. They stand whether or not a factory exists, and while the operator is down."""

from typing import Any

from ..constants import (
    AUDIT_ANCHOR_NAME,
    AUDIT_SEGMENT_PREFIX,
    ENFORCED,
    GROUP,
    LABEL_ENFORCED,
    LABEL_FACTORY,
    LABEL_MANAGED_BY,
    LOCKED,
    MANAGED_BY,
    OPERATOR_NAMESPACE,
    VERSION,
)
from ..policy import lifecycle
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
OPERATOR_OBJECTS_GUARD = "guard-rail/operator-objects"
# What a tenant could run or expose with: locked in a namespace that is not (or no longer) enforced.
TENANT_WRITES = [
    rule("", "v1", ["pods", "pods/ephemeralcontainers", "services", "persistentvolumeclaims"]),
    rule("apps", "v1", ["deployments", "statefulsets", "daemonsets", "replicasets"]),
    rule("batch", "v1", ["jobs", "cronjobs"]),
    rule(GROUP, VERSION, ["datasets", "trainingjobs", "modelendpoints"]),
]
# The kinds the operator renders into tenant namespaces besides the guard rails the tenant-objects
# guard already holds (NetworkPolicies, ResourceQuotas, LimitRanges, RoleBindings): for Dataset,
# TrainingJob and ModelEndpoint. A scale subresource carries no labels, so no object selector can
# match it; the tenant-admin role grants no `*/scale` (a unit test holds it to that).
OPERATOR_KINDS = [
    rule("", "v1", ["services", "persistentvolumeclaims", "configmaps"], ["UPDATE", "DELETE"]),
    rule("apps", "v1", ["deployments"], ["UPDATE", "DELETE"]),
    rule("batch", "v1", ["jobs"], ["UPDATE", "DELETE"]),
    rule("autoscaling", "v2", ["horizontalpodautoscalers"], ["UPDATE", "DELETE"]),
    rule("policy", "v1", ["poddisruptionbudgets"], ["UPDATE", "DELETE"]),
]
# A pod carrying the label is the workload controllers' copy of one of our templates, or a spoof.
SPOOFABLE_KINDS = [
    rule("", "v1", ["pods", "services", "persistentvolumeclaims", "configmaps"], ["CREATE"]),
    rule("", "v1", ["resourcequotas", "limitranges"], ["CREATE"]),
    rule("apps", "v1", ["deployments"], ["CREATE"]),
    rule("batch", "v1", ["jobs"], ["CREATE"]),
    rule("autoscaling", "v2", ["horizontalpodautoscalers"], ["CREATE"]),
    rule("policy", "v1", ["poddisruptionbudgets"], ["CREATE"]),
    rule("networking.k8s.io", "v1", ["networkpolicies"], ["CREATE"]),
    rule("rbac.authorization.k8s.io", "v1", ["rolebindings"], ["CREATE"]),
]


def is_privileged(exempt_users: list[str]) -> str:
    """CEL: the request comes from the operator, a cluster admin, a kube-system controller (which
    must be able to clean up a namespace being deleted) or kube-scheduler (which marks the node it
    chose on a WaitForFirstConsumer claim, one the operator renders for a Dataset)."""
    users = " || ".join(f"request.userInfo.username == {quote(u)}" for u in exempt_users) or "false"
    return (
        "(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g == 'system:masters'))"
        f" || {users} || request.userInfo.username.startsWith('system:serviceaccount:kube-system:')"
        " || request.userInfo.username == 'system:kube-controller-manager'"
        " || request.userInfo.username == 'system:kube-scheduler'"
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


def construct_lifecycle_guard(not_privileged: Obj) -> list[Obj]:
    """Locks a namespace labelled with a factory until the operator has proved the factory's
    policies in force there (`aifactory.dev/enforced=true`), and again once the factory is gone or
    let go of it (the operator then sets `enforced=false` and says why in an annotation): the policy
    informers of kube-apiserver lag behind a new binding, and a namespace whose factory is gone has
    no rules left to be judged by."""
    labels = "namespaceObject.metadata.?labels.orValue({})"
    factory = f"{labels}[{quote(LABEL_FACTORY)}]"
    namespace = "namespaceObject.metadata.name"
    orphaned = f"{labels}[?{quote(LABEL_ENFORCED)}].orValue('') == {quote(LOCKED)}"
    policy = guard_policy(
        "aifactory-lifecycle-guard",
        TENANT_WRITES,
        [not_privileged],
        [
            validation(
                lifecycle.ORPHANED_NAMESPACE,
                "metadata.namespace",
                f"!({orphaned})",
                lifecycle.orphaned_message("<namespace>", "<factory>"),
                cel_format(lifecycle.orphaned_message, namespace, factory),
            ),
            validation(
                lifecycle.NOT_YET_ENFORCED,
                "metadata.namespace",
                orphaned,
                lifecycle.not_yet_enforced_message("<namespace>", "<factory>"),
                cel_format(lifecycle.not_yet_enforced_message, namespace, factory),
            ),
        ],
    )
    locked = {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": LABEL_FACTORY, "operator": "Exists"},
                {"key": LABEL_ENFORCED, "operator": "NotIn", "values": [ENFORCED]},
            ]
        }
    }
    return [policy, guard_binding("aifactory-lifecycle-guard", locked)]


def cel_format(message: Any, namespace: str, factory: str) -> str:
    """A CEL string expression of `message(namespace, factory)`: the pure rule's own wording."""
    text = quote(message("@namespace@", "@factory@"))
    return f"{text}.replace('@namespace@', {namespace}).replace('@factory@', {factory})"


def construct_operator_objects_guard(not_privileged: Obj) -> list[Obj]:
    """What the operator renders for a Dataset, TrainingJob or ModelEndpoint is changed through
    that resource: anyone else's edit would be overwritten at best and outlive the next reconcile
    at worst (an edited env or toleration). An object selector matches when the old or the new
    object carries the label, so removing it is refused too; a create carrying it is a spoof."""
    owners = "oldObject.metadata.?ownerReferences.orValue([]).filter(r, r.?controller.orValue(false))"
    factory = f"oldObject.metadata.?labels[{quote(LABEL_FACTORY)}].orValue('')"
    owner = (
        f'(size({owners}) > 0 ? {owners}[0].kind + " \'" + {owners}[0].name + "\'; change that "'
        f' + {owners}[0].kind : "AIFactory \'" + {factory} + "\'; change the AIFactory")'
    )
    policy = guard_policy(
        "aifactory-operator-objects-guard",
        [*OPERATOR_KINDS, *SPOOFABLE_KINDS],
        [not_privileged],
        [
            validation(
                OPERATOR_OBJECTS_GUARD,
                f"metadata.labels[{LABEL_MANAGED_BY}]",
                "request.operation != 'CREATE'",
                f"only the operator creates objects labelled {LABEL_MANAGED_BY}={MANAGED_BY}; remove"
                " the label",
            ),
            validation(
                OPERATOR_OBJECTS_GUARD,
                "metadata",
                "request.operation == 'CREATE'",
                "the operator renders this object from a custom resource; change that resource instead",
                f'request.kind.kind + " \'" + oldObject.metadata.name + "\' is rendered by the'
                f" operator for \" + {owner} + ' instead'",
            ),
        ],
    )
    match = {
        "namespaceSelector": {"matchExpressions": [{"key": LABEL_FACTORY, "operator": "Exists"}]},
        "objectSelector": {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY}},
    }
    return [policy, guard_binding("aifactory-operator-objects-guard", match)]


def construct_guard_rails(exempt_users: list[str], namespace: str = OPERATOR_NAMESPACE) -> list[Obj]:
    """Tenants (and anyone short of the operator and cluster admins) cannot relabel a tenant
    namespace, edit or delete the operator's guard-rail objects, or rewrite the audit log."""
    not_privileged = {"name": "not-privileged", "expression": f"!({is_privileged(exempt_users)})"}
    managed = {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY}}
    return [
        construct_namespace_guard(not_privileged),
        construct_tenant_objects_guard(not_privileged),
        *construct_audit_guards(namespace),
        *construct_lifecycle_guard(not_privileged),
        *construct_operator_objects_guard(not_privileged),
        guard_binding("aifactory-namespace-guard", {}),
        guard_binding(
            "aifactory-tenant-objects-guard",
            {
                "namespaceSelector": {"matchExpressions": [{"key": LABEL_FACTORY, "operator": "Exists"}]},
                "objectSelector": managed,
            },
        ),
    ]


def construct_namespace_guard(not_privileged: Obj) -> Obj:
    """A namespace becomes a tenant namespace only by the operator's hand: nobody else creates one
    with our labels or adds them later (that would claim a factory's rules and rights for it)."""
    old_labels = "oldObject.metadata.?labels.orValue({})"
    new_labels = "object.metadata.?labels.orValue({})"
    ours = f"{new_labels}.exists(k, k.startsWith({quote(GROUP + '/')}))"
    unchanged = (
        f"{old_labels}.filter(k, {is_protected('k')}).all(k, k in {new_labels} &&"
        f" {new_labels}[k] == {old_labels}[k]) && {new_labels}.filter(k, {is_protected('k')})"
        f".all(k, k in {old_labels})"
    )
    return guard_policy(
        "aifactory-namespace-guard",
        [rule("", "v1", ["namespaces"], ["CREATE", "UPDATE"])],
        [
            not_privileged,
            {
                "name": "tenant-namespace-or-claiming-to-be",
                "expression": f"(request.operation == 'UPDATE' && {quote(LABEL_FACTORY)} in {old_labels})"
                f" || {ours}",
            },
        ],
        [
            validation(
                NAMESPACE_GUARD,
                "metadata.labels",
                f"request.operation == 'CREATE' ? !{ours} : ({unchanged})",
                "the aifactory.dev/* and pod-security.kubernetes.io/* labels of a tenant namespace are"
                " the factory's; change the AIFactory instead",
            )
        ],
    )


def construct_tenant_objects_guard(not_privileged: Obj) -> Obj:
    """The operator's NetworkPolicies, quotas, limits and RoleBindings in a tenant namespace stay as
    the factory wrote them."""
    return guard_policy(
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
