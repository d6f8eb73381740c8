"""A tenant's namespaces and the guard rails in each: quota, limits, admin binding, network policy."""

from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, Tenant
from ..constants import (
    ANNOTATION_CREATED,
    GPU_RESOURCE,
    LABEL_CLEARANCE,
    LABEL_FACTORY,
    LABEL_TENANT,
    POD_SECURITY_LEVEL,
    TENANT_ADMIN_ROLE,
)
from .ownership import managed_labels

Obj = dict[str, Any]
POD_SECURITY_LABELS = [
    "pod-security.kubernetes.io/enforce",
    "pod-security.kubernetes.io/enforce-version",
    "pod-security.kubernetes.io/warn",
    "pod-security.kubernetes.io/audit",
]
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def tenant_labels(factory: AIFactory, tenant: Tenant) -> dict[str, str]:
    return managed_labels(**{LABEL_FACTORY: factory.name, LABEL_TENANT: tenant.name})


def construct_namespace(factory: AIFactory, tenant: Tenant, name: str, *, created_by_us: bool) -> Obj:
    """The tenant namespace, enforcing Pod Security "restricted"; marked when we created it, so that
    only namespaces we created are ever deleted by us."""
    labels = {
        **tenant_labels(factory, tenant),
        LABEL_CLEARANCE: tenant.clearance,
        "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
        "pod-security.kubernetes.io/audit": POD_SECURITY_LEVEL,
    }
    metadata: Obj = {"name": name, "labels": labels}
    if created_by_us:
        metadata["annotations"] = {ANNOTATION_CREATED: "true"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def construct_resource_quota(factory: AIFactory, tenant: Tenant, namespace: str) -> Obj:
    """The most GPUs the tenant may hold (shares plus borrowing limits) as a ResourceQuota: a ceiling
    for pods that bypass us; the per-product split and borrowing are kept by our admission."""
    total = sum(q.gpus + q.borrowing_limit for q in tenant.gpu_quota)
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": "aifactory-gpu",
            "namespace": namespace,
            "labels": tenant_labels(factory, tenant),
        },
        "spec": {"hard": {f"requests.{GPU_RESOURCE}": str(total)}},
    }


def construct_limit_range(factory: AIFactory, tenant: Tenant, namespace: str) -> Obj:
    """Defaults for containers that state no resources, so that quota accounting always applies."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {
            "name": "aifactory-defaults",
            "namespace": namespace,
            "labels": tenant_labels(factory, tenant),
        },
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "2", "memory": "8Gi"},
                    "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
                }
            ]
        },
    }


def construct_admin_binding(factory: AIFactory, tenant: Tenant, namespace: str) -> Obj | None:
    """Binds the tenant's admin groups to the tenant-admin role; none when it has no admin groups."""
    if not tenant.admin_groups:
        return None
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": TENANT_ADMIN_ROLE,
            "namespace": namespace,
            "labels": tenant_labels(factory, tenant),
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": TENANT_ADMIN_ROLE,
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
            for group in tenant.admin_groups
        ],
    }


def construct_network_policies(factory: AIFactory, tenant: Tenant, namespace: str) -> list[Obj]:
    """Default deny both ways; then DNS, the namespace's own pods, and egress as the factory allows:
    only allowedEgress when air-gapped, anywhere otherwise."""
    sovereignty = factory.spec.sovereignty

    def policy(name: str, spec: Obj) -> Obj:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": tenant_labels(factory, tenant)},
            "spec": {"podSelector": {}, **spec},
        }

    policies = [
        policy("aifactory-default-deny", {"policyTypes": ["Ingress", "Egress"]}),
        policy(
            "aifactory-allow-dns",
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": DNS_PORTS,
                    }
                ],
            },
        ),
        policy(
            "aifactory-allow-same-namespace",
            {
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        ),
    ]
    if not sovereignty.air_gapped:
        policies.append(policy("aifactory-allow-egress", {"policyTypes": ["Egress"], "egress": [{}]}))
    elif sovereignty.allowed_egress:
        blocks = [{"ipBlock": {"cidr": cidr}} for cidr in sovereignty.allowed_egress]
        policies.append(
            policy("aifactory-allow-egress", {"policyTypes": ["Egress"], "egress": [{"to": blocks}]})
        )
    return policies


def construct_tenant_objects(factory: AIFactory, tenant: Tenant, namespace: str) -> list[Obj]:
    """Everything the operator puts inside one tenant namespace."""
    binding = construct_admin_binding(factory, tenant, namespace)
    return [
        construct_resource_quota(factory, tenant, namespace),
        construct_limit_range(factory, tenant, namespace),
        *([binding] if binding else []),
        *construct_network_policies(factory, tenant, namespace),
    ]


def construct_tenant_admin_role() -> Obj:
    """The role tenant admins get: run workloads and manage data, but not quotas, limits,
    network policies or role bindings, which are the factory's guard rails."""
    everything = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": TENANT_ADMIN_ROLE, "labels": managed_labels()},
        "rules": [
            {
                "apiGroups": [""],
                "resources": [
                    "pods",
                    "services",
                    "configmaps",
                    "secrets",
                    "persistentvolumeclaims",
                    "serviceaccounts",
                ],
                "verbs": everything,
            },
            {"apiGroups": [""], "resources": ["pods/log", "pods/status", "events"], "verbs": read},
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "statefulsets", "replicasets"],
                "verbs": everything,
            },
            {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": everything},
            {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": everything},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": everything},
            {
                "apiGroups": ["aifactory.dev"],
                "resources": ["datasets", "trainingjobs", "modelendpoints"],
                "verbs": everything,
            },
            {
                "apiGroups": ["aifactory.dev"],
                "resources": ["datasets/status", "trainingjobs/status", "modelendpoints/status"],
                "verbs": read,
            },
            {"apiGroups": [""], "resources": ["resourcequotas", "limitranges"], "verbs": read},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read},
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings", "roles"],
                "verbs": read,
            },
        ],
    }
