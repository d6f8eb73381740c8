"""Guards on tenant namespaces that need no factory: who may bind a pod to a node, write
NetworkPolicies, write the status of our kinds, or scale a Deployment. Bound cluster-wide to every
namespace labelled for a factory, so they hold for namespaces whose factory is gone too."""

from typing import Any

from ..constants import GROUP, LABEL_FACTORY, VERSION
from ..policy.placement import BINDING
from .admission_policies import construct_policy, rule, validation
from .guard_policies import OPERATOR_OBJECTS_GUARD, guard_binding, is_privileged

Obj = dict[str, Any]
NETWORK_POLICY_GUARD = "guard-rail/network-policy"
SCHEDULER = "system:kube-scheduler"
TENANT_NAMESPACES = {
    "namespaceSelector": {"matchExpressions": [{"key": LABEL_FACTORY, "operator": "Exists"}]}
}


def construct_refusal_guard(
    name: str, rules: list[Obj], exempt: str, refusal: tuple[str, str, str]
) -> list[Obj]:
    """A policy that refuses every matched request from anyone the CEL `exempt` does not name,
    with `refusal` = (rule id, field path, message and fix), and its binding to tenant namespaces."""
    rule_id, path, message = refusal
    policy = construct_policy(
        name,
        rules,
        [],
        [validation(rule_id, path, "false", message)],
        conditions=[{"name": "not-exempt", "expression": f"!({exempt})"}],
        by_factory=False,
    )
    return [policy, guard_binding(name, TENANT_NAMESPACES)]


def construct_tenant_guards(exempt_users: list[str]) -> list[Obj]:
    privileged = is_privileged(exempt_users)
    return [
        *construct_binding_guard(),
        *construct_network_policy_guard(privileged),
        *construct_status_guard(privileged),
        *construct_scale_guard(privileged),
    ]


def construct_binding_guard() -> list[Obj]:
    """Only the scheduler binds tenant pods: it honours the pod's node selection and its volumes'
    node affinity, which a direct Binding (pods/binding, or the legacy bindings resource) skips."""
    return construct_refusal_guard(
        "aifactory-binding-guard",
        [rule("", "v1", ["pods/binding", "bindings"], ["CREATE"])],
        f"request.userInfo.username == '{SCHEDULER}' || {is_privileged([])}",
        (
            BINDING,
            "target",
            "only the scheduler binds pods in a tenant namespace, so placement stays inside the"
            " jurisdiction; remove the binding and let the pod's node selection place it",
        ),
    )


def construct_network_policy_guard(privileged: str) -> list[Obj]:
    """NetworkPolicies add up: any policy a tenant adds can only allow more, so in a tenant namespace
    only the operator writes them (from the factory's allowedEgress)."""
    return construct_refusal_guard(
        "aifactory-network-policy-guard",
        [rule("networking.k8s.io", "v1", ["networkpolicies"], ["CREATE", "UPDATE", "DELETE"])],
        privileged,
        (
            NETWORK_POLICY_GUARD,
            "metadata",
            "NetworkPolicies in a tenant namespace are the factory's: a policy can only allow more"
            " traffic; ask the platform team to change the AIFactory's allowedEgress instead",
        ),
    )


def construct_status_guard(privileged: str) -> list[Obj]:
    """The status of a Dataset, TrainingJob or ModelEndpoint is the operator's report (a Dataset's
    bound volume, a job's placement): nobody else writes it, so nobody forges one."""
    return construct_refusal_guard(
        "aifactory-status-guard",
        [
            rule(
                GROUP,
                VERSION,
                [f"{p}/status" for p in ("datasets", "trainingjobs", "modelendpoints")],
                ["UPDATE"],
            )
        ],
        privileged,
        (OPERATOR_OBJECTS_GUARD, "status", "the status is the operator's report; change the spec instead"),
    )


def construct_scale_guard(privileged: str) -> list[Obj]:
    """A Scale carries no labels, so nothing tells the operator's Deployment (a ModelEndpoint's, whose
    replicas its autoscaler and the operator own) from a tenant's: only the operator and kube-system
    controllers (the HPA) use deployments/scale. Tenants set spec.replicas, which the
    operator-objects guard judges."""
    return construct_refusal_guard(
        "aifactory-scale-guard",
        [rule("apps", "v1", ["deployments/scale"], ["UPDATE"])],
        privileged,
        (
            OPERATOR_OBJECTS_GUARD,
            "spec.replicas",
            "the scale subresource is the operator's and the autoscaler's in a tenant namespace; set"
            " spec.replicas of your own Deployment, or the ModelEndpoint's replicas, instead",
        ),
    )
