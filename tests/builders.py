"""Builders that make test objects read as stories: make_factory(pools=[make_pool(nodes=4)])."""

from typing import Any

from aifactory_operator.api.v1alpha1 import AIFactory


def make_pool(name: str = "h100", **fields: Any) -> dict[str, Any]:
    pool = {
        "name": name,
        "provisioner": "kwok",
        "gpuProduct": "NVIDIA-H100-80GB-HBM3",
        "gpusPerNode": 8,
        "nodes": 2,
        "region": "de-fra",
    }
    return {**pool, **fields}


def make_tenant(name: str = "research", **fields: Any) -> dict[str, Any]:
    tenant = {"name": name, "namespaces": [name], "clearance": "internal", "gpuQuota": []}
    return {**tenant, **fields}


def make_factory_body(
    name: str = "de-1",
    *,
    pools: list[dict[str, Any]] | None = None,
    tenants: list[dict[str, Any]] | None = None,
    jurisdiction: str = "DE",
    regions: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactory",
        "metadata": {"name": name, "uid": "0000-uid", "generation": 3},
        "spec": {
            "sovereignty": {"jurisdiction": jurisdiction, "regions": regions or ["de-fra", "de-ber"]},
            "nodePools": [make_pool()] if pools is None else pools,
            "tenants": tenants or [],
        },
    }


def make_factory(**kwargs: Any) -> AIFactory:
    return AIFactory.model_validate(make_factory_body(**kwargs))


def make_node(
    name: str,
    *,
    pool: str = "h100",
    ready: bool = True,
    gpus: int = 8,
    ours: bool = True,
    labels: dict | None = None,
    cordoned: bool = False,
    cpu: str = "64",
    memory: str = "512Gi",
) -> dict:
    base_labels = {"aifactory.dev/pool": pool, "aifactory.dev/factory": "de-1"} if ours else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {**base_labels, **(labels or {})},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "ownerReferences": [{"kind": "AIFactory", "name": "de-1"}] if ours else [],
        },
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus), "cpu": cpu, "memory": memory},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
