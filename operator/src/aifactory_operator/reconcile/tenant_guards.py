"""Guards on tenant namespaces that need no factory: who may bind a pod to a node, and who may
write NetworkPolicies. Bound cluster-wide to every namespace labelled for a factory, so they hold
for namespaces whose factory is gone too."""

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


def construct_binding_guard() -> list[Obj]:
    """Only the scheduler binds tenant pods: it honours the pod's node selection and its volumes'
    node affinity, which a direct Binding (pods/binding, or the legacy bindings resource) skips."""
    policy = construct_policy(
        "aifactory-binding-guard",
        [rule("", "v1", ["pods/binding", "bindings"], ["CREATE"])],
        [],
        [
            validation(
                BINDING,
                "target",
                "false",
                "only the scheduler binds pods in a tenant namespace, so placement stays inside the"
                " jurisdiction; remove the binding and let the pod's node selection place it",
            )
        ],
        conditions=[
            {
                "name": "not-the-scheduler",
                "expression": f"request.userInfo.username != '{SCHEDULER}' && !({is_privileged([])})",
            }
        ],
        by_factory=False,
    )
    return [policy, guard_binding("aifactory-binding-guard", TENANT_NAMESPACES)]


def construct_network_policy_guard(exempt_users: list[str]) -> list[Obj]:
    """NetworkPolicies add up: any policy a tenant adds can only allow more, so in a tenant
    namespace only the operator writes them (from the factory's allowedEgress)."""
    policy = construct_policy(
        "aifactory-network-policy-guard",
        [rule("networking.k8s.io", "v1", ["networkpolicies"], ["CREATE", "UPDATE", "DELETE"])],
        [],
        [
            validation(
                NETWORK_POLICY_GUARD,
                "metadata",
                "false",
                "NetworkPolicies in a tenant namespace are the factory's: a policy can only allow more"
                " traffic; ask the platform team to change the AIFactory's allowedEgress instead",
            )
        ],
        conditions=[{"name": "not-privileged", "expression": f"!({is_privileged(exempt_users)})"}],
        by_factory=False,
    )
    return [policy, guard_binding("aifactory-network-policy-guard", TENANT_NAMESPACES)]


def construct_status_guard(exempt_users: list[str]) -> list[Obj]:
    """The status of a Dataset, TrainingJob or ModelEndpoint is the operator's report (a Dataset's
    bound volume, a job's placement): nobody else writes it, so nobody can forge a binding."""
    policy = construct_policy(
        "aifactory-status-guard",
        [
            rule(
                GROUP,
                VERSION,
                [f"{p}/status" for p in ("datasets", "trainingjobs", "modelendpoints")],
                ["UPDATE"],
            )
        ],
        [],
        [
            validation(
                OPERATOR_OBJECTS_GUARD,
                "status",
                "false",
                "the status is the operator's report; change the spec instead",
            )
        ],
        conditions=[{"name": "not-privileged", "expression": f"!({is_privileged(exempt_users)})"}],
        by_factory=False,
    )
    return [policy, guard_binding("aifactory-status-guard", TENANT_NAMESPACES)]


def construct_scale_guard(exempt_users: list[str]) -> list[Obj]:
    """A Scale carries no labels, so nothing tells the operator's Deployment (a ModelEndpoint's,
    whose replicas its autoscaler and the operator own) from a tenant's: in a tenant namespace
    only the operator and kube-system controllers (the HPA) use deployments/scale. Tenants scale
    their own Deployments by editing spec.replicas, which the operator-objects guard judges."""
    policy = construct_policy(
        "aifactory-scale-guard",
        [rule("apps", "v1", ["deployments/scale"], ["UPDATE"])],
        [],
        [
            validation(
                OPERATOR_OBJECTS_GUARD,
                "spec.replicas",
                "false",
                "the scale subresource is the operator's and the autoscaler's in a tenant namespace; set"
                " spec.replicas of your own Deployment, or the ModelEndpoint's replicas, instead",
            )
        ],
        conditions=[{"name": "not-privileged", "expression": f"!({is_privileged(exempt_users)})"}],
        by_factory=False,
    )
    return [policy, guard_binding("aifactory-scale-guard", TENANT_NAMESPACES)]


def construct_tenant_guards(exempt_users: list[str]) -> list[Obj]:
    return [
        *construct_binding_guard(),
        *construct_network_policy_guard(exempt_users),
        *construct_status_guard(exempt_users),
        *construct_scale_guard(exempt_users),
    ]
