"""Builders for end-to-end objects: factories, restricted pods, simulated existing nodes."""

from typing import Any

from aifactory_operator.constants import API_VERSION, GPU_RESOURCE


def make_factory(
    name: str,
    *,
    h100_nodes: int = 2,
    l40s_nodes: int = 1,
    tenants: list | None = None,
    storage: list | None = None,
    pools: list | None = None,
) -> dict:
    default_pools = [
        {
            "name": "h100",
            "gpuProduct": "NVIDIA-H100-80GB-HBM3",
            "gpusPerNode": 8,
            "nodes": h100_nodes,
            "region": "de-fra",
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
        {
            "name": "l40s",
            "gpuProduct": "NVIDIA-L40S",
            "gpusPerNode": 4,
            "nodes": l40s_nodes,
            "region": "de-ber",
        },
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": "AIFactory",
        "metadata": {"name": name},
        "spec": {
            "sovereignty": {
                "jurisdiction": "DE",
                "regions": ["de-fra", "de-ber"],
                "allowedEgress": ["10.20.0.0/16"],
                "allowedRegistries": ["registry.factory.internal"],
            },
            "nodePools": default_pools if pools is None else pools,
            "tenants": tenants or [],
            "storage": storage or [],
        },
    }


def make_tenant(name: str, namespace: str, **fields: Any) -> dict:
    return {
        "name": name,
        "namespaces": [namespace],
        "clearance": "confidential",
        "gpuQuota": [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 16}],
        "adminGroups": [f"{name}-admins"],
        **fields,
    }


def make_restricted_pod(
    name: str, namespace: str, *, gpus: int = 0, claim: str | None = None, **spec: Any
) -> dict:
    """A pod that passes Pod Security "restricted", optionally with GPUs and a dataset claim."""
    container: dict[str, Any] = {
        "name": "main",
        "image": "registry.factory.internal/app:1",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if gpus:
        container["resources"] = {"limits": {GPU_RESOURCE: str(gpus)}}
    pod_spec: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        **spec,
    }
    if claim:
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data", "readOnly": True}]
        pod_spec["volumes"] = [
            {"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": pod_spec,
    }


def make_existing_node(name: str, labels: dict[str, str], taints: list | None = None, gpus: int = 8) -> dict:
    """A node that exists before any factory (simulated by KWOK): the on-premises case."""
    resources = {"cpu": "64", "memory": "512Gi", "pods": "110", GPU_RESOURCE: str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {"taints": taints or []},
        "status": {"capacity": resources, "allocatable": resources},
    }


def make_dataset(
    namespace: str,
    name: str,
    *,
    purpose: str = "training-data",
    storage: str = "nfs",
    path: str = "",
    jurisdiction: str = "DE",
    **spec: Any,
) -> dict:
    """A Dataset in a tenant namespace, classified internal unless told otherwise."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "purpose": purpose,
            "storage": {"name": storage, "path": path or f"/{name}"},
            "jurisdiction": jurisdiction,
            "classification": "internal",
            **spec,
        },
    }
