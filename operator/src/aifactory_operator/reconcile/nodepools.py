"""Node pools: the simulated GPU nodes a kwok pool should have, and what the pools hold now."""

from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, NodePool, PoolStatus
from ..constants import (
    GPU_RESOURCE,
    KWOK_NODE_ANNOTATION,
    KWOK_NODE_VALUE,
    LABEL_FACTORY,
    LABEL_GPU_COUNT,
    LABEL_GPU_PRODUCT,
    LABEL_JURISDICTION,
    LABEL_NVLINK_DOMAIN,
    LABEL_POOL,
    LABEL_RACK,
    LABEL_REGION,
    LABEL_ZONE,
)
from .ownership import construct_owner_reference, managed_labels

Node = dict[str, Any]


def node_name(factory: AIFactory, pool: NodePool, index: int) -> str:
    """Stable node names, so that a re-run or a restarted operator addresses the same nodes."""
    return f"{factory.name}-{pool.name}-{index}"


def topology_labels(pool: NodePool, index: int) -> dict[str, str]:
    """NVLink domain and rack of the index-th node, counting nodes into domains and domains into racks."""
    domain = index // pool.topology.nodes_per_nvlink_domain
    rack = domain // pool.topology.nvlink_domains_per_rack
    return {LABEL_NVLINK_DOMAIN: f"{pool.name}-nvl{domain}", LABEL_RACK: f"{pool.name}-rack{rack}"}


def pool_labels(factory: AIFactory, pool: NodePool) -> dict[str, str]:
    """Labels every node of the pool carries, whatever its provisioner."""
    labels = {
        LABEL_FACTORY: factory.name,
        LABEL_POOL: pool.name,
        LABEL_GPU_PRODUCT: pool.gpu_product,
        LABEL_GPU_COUNT: str(pool.gpus_per_node),
        LABEL_REGION: pool.region,
        LABEL_JURISDICTION: factory.spec.sovereignty.jurisdiction,
    }
    if pool.zone:
        labels[LABEL_ZONE] = pool.zone
    return labels


def construct_kwok_node(factory: AIFactory, pool: NodePool, index: int) -> Node:
    """A simulated GPU node: KWOK plays its kubelet because of the kwok.x-k8s.io/node annotation."""
    resources = {
        "cpu": str(pool.cpus_per_node),
        "memory": pool.memory_per_node,
        "pods": "110",
        GPU_RESOURCE: str(pool.gpus_per_node),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node_name(factory, pool, index),
            "labels": managed_labels(
                **pool_labels(factory, pool),
                **topology_labels(pool, index),
                **{"type": "kwok", "kubernetes.io/hostname": node_name(factory, pool, index)},
            ),
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE},
            "ownerReferences": [construct_owner_reference(factory)],
        },
        "spec": {
            "taints": [t.to_wire() for t in pool.taints],
        },
        "status": {"capacity": resources, "allocatable": resources},
    }


def desired_kwok_nodes(factory: AIFactory) -> list[Node]:
    """Every simulated node the factory's kwok pools should have."""
    return [
        construct_kwok_node(factory, pool, index)
        for pool in factory.spec.node_pools
        if pool.provisioner == "kwok"
        for index in range(pool.nodes)
    ]


def surplus_kwok_nodes(factory: AIFactory, observed: list[Node]) -> list[str]:
    """Names of simulated nodes we created that no pool wants any more (scaled down or removed)."""
    wanted = {n["metadata"]["name"] for n in desired_kwok_nodes(factory)}
    return sorted(
        name for node in observed if (name := node["metadata"]["name"]) not in wanted and _is_kwok(node)
    )


def summarize_pools(factory: AIFactory, observed: list[Node]) -> list[PoolStatus]:
    """Per pool: desired nodes, ready nodes and allocatable GPUs on the ready ones."""
    return [_summarize_pool(pool, observed) for pool in factory.spec.node_pools]


def is_node_ready(node: Node) -> bool:
    """True when the node's Ready condition is True and it accepts new pods."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not node.get("spec", {}).get("unschedulable", False)


def allocatable_gpus(node: Node) -> int:
    """nvidia.com/gpu the node offers to the scheduler."""
    return int(node.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, 0))


def _summarize_pool(pool: NodePool, observed: list[Node]) -> PoolStatus:
    members = [n for n in observed if n["metadata"].get("labels", {}).get(LABEL_POOL) == pool.name]
    ready = [n for n in members if is_node_ready(n)]
    return PoolStatus(
        name=pool.name,
        nodes_desired=pool.nodes,
        nodes_ready=len(ready),
        gpus_allocatable=sum(allocatable_gpus(n) for n in ready),
    )


def _is_kwok(node: Node) -> bool:
    annotations = node["metadata"].get("annotations") or {}
    return bool(annotations.get(KWOK_NODE_ANNOTATION) == KWOK_NODE_VALUE)
