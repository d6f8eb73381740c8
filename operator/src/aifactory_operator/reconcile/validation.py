"""Rules on an AIFactory spec that CEL cannot express cheaply; each problem names its field path."""

from collections import Counter

from ..api.v1alpha1.aifactory import AIFactory


def find_factory_problems(factory: AIFactory) -> list[str]:
    """Everything in the spec that stops the operator from acting on it, most specific first."""
    return [*_shared_namespaces(factory), *_quota_for_unknown_products(factory)]


def _shared_namespaces(factory: AIFactory) -> list[str]:
    owners = Counter(ns for tenant in factory.spec.tenants for ns in tenant.namespaces)
    return [
        f"spec.tenants[{i}].namespaces[{j}]: namespace '{ns}' also belongs to another tenant;"
        " give each namespace to one tenant"
        for i, tenant in enumerate(factory.spec.tenants)
        for j, ns in enumerate(tenant.namespaces)
        if owners[ns] > 1
    ]


def _quota_for_unknown_products(factory: AIFactory) -> list[str]:
    products = {pool.gpu_product for pool in factory.spec.node_pools}
    return [
        f"spec.tenants[{i}].gpuQuota[{j}].product: no node pool offers '{quota.product}';"
        f" use one of {sorted(products)}"
        for i, tenant in enumerate(factory.spec.tenants)
        for j, quota in enumerate(tenant.gpu_quota)
        if quota.product not in products
    ]
