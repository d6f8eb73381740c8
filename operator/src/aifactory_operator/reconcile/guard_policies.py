"""Guard rails: ValidatingAdmissionPolicies bound cluster-wide, with no parameter object, that keep
anyone short of the operator and cluster admins from relabelling a tenant namespace, editing the
operator's objects or rewriting the audit log. They stand whether or not a factory exists."""

from typing import Any

from ..constants import (
    GROUP,
    LABEL_AUDIT_LOG,
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
    masters_only = {
        "name": "not-cluster-admin",
        "expression": f"!({is_privileged([])})",
    }
    audit_guard = guard_policy(
        "aifactory-audit-log-guard",
        [rule("", "v1", ["configmaps"], ["UPDATE", "DELETE"])],
        [masters_only],
        [
            validation(
                AUDIT_LOG_GUARD,
                "data",
                "request.operation != 'DELETE' && oldObject.?data.orValue({}).all(k, k in"
                " object.?data.orValue({}) && object.data[k] == oldObject.data[k])",
                "the audit log is append-only: entries may be added, never changed or removed",
            )
        ],
    )
    managed = {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY}}
    return [
        namespace_guard,
        tenant_guard,
        audit_guard,
        guard_binding("aifactory-namespace-guard", {}),
        guard_binding(
            "aifactory-tenant-objects-guard",
            {
                "namespaceSelector": {"matchExpressions": [{"key": LABEL_FACTORY, "operator": "Exists"}]},
                "objectSelector": managed,
            },
        ),
        guard_binding(
            "aifactory-audit-log-guard",
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "objectSelector": {"matchLabels": {LABEL_AUDIT_LOG: "true"}},
            },
        ),
    ]
