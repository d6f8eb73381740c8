"""Node pools: the simulated nodes a kwok pool should have, adopting and releasing static nodes,
draining before removal, and what the pools hold now."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, DomainStatus, NodePool, PoolStatus
from ..constants import (
    ANNOTATION_OWNED_TAINTS,
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
from .resources import FrozenAmounts

Node = dict[str, Any]
ANNOTATION_OWNED_LABELS = "aifactory.dev/owned-labels"


@dataclass(frozen=True)
class PodOnNode:
    """A non-terminal pod bound to a node, as the pods index keeps it."""

    namespace: str
    name: str
    node: str
    gpus: int
    daemon: bool = False
    training_job: str = ""  # namespace/name of the TrainingJob that owns the pod, if any
    endpoint: str = ""  # namespace/name of the ModelEndpoint that owns the pod, if any
    requests: FrozenAmounts = ()  # every resource it requests, scaled (see resources.py)
    attempt: str = ""  # the attempt label of a training pod


@dataclass(frozen=True)
class NodeChanges:
    """What one reconcile does to nodes."""

    apply: list[Node]
    patch: dict[str, dict[str, Any]]  # node name -> strategic merge patch (static nodes)
    delete: list[str]
    draining: dict[str, list[str]]  # pool -> nodes cordoned and still running pods


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


def construct_kwok_node(factory: AIFactory, pool: NodePool, index: int, *, cordoned: bool = False) -> Node:
    """A simulated GPU node: KWOK plays its kubelet because of the kwok.x-k8s.io/node annotation."""
    name = node_name(factory, pool, index)
    resources = {
        "cpu": str(pool.cpus_per_node),
        "memory": pool.memory_per_node,
        "pods": "110",
        GPU_RESOURCE: str(pool.gpus_per_node),
    }
    spec: dict[str, Any] = {"taints": [t.to_wire() for t in pool.taints]}
    if cordoned:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": managed_labels(
                **pool_labels(factory, pool),
                **topology_labels(pool, index),
                **{"type": "kwok", "kubernetes.io/hostname": name},
            ),
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE},
            "ownerReferences": [construct_owner_reference(factory)],
        },
        "spec": spec,
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


def plan_nodes(factory: AIFactory, observed: list[Node], pods: list[PodOnNode]) -> NodeChanges:
    """Kwok nodes to create, surplus ones to cordon, drain and delete; static nodes to adopt or release."""
    observed_by_name = {n["metadata"]["name"]: n for n in observed}
    desired = [
        _keep_foreign_taints(n, observed_by_name.get(n["metadata"]["name"]))
        for n in desired_kwok_nodes(factory)
    ]
    wanted = {n["metadata"]["name"] for n in desired}
    ours = [n for n in observed if n["metadata"].get("labels", {}).get(LABEL_FACTORY) == factory.name]
    apply, delete, draining = list(desired), [], defaultdict(list)
    busy = nodes_with_workloads(pods)
    for node in ours:
        name = node["metadata"]["name"]
        if not is_simulated_by_factory(node) or name in wanted:
            continue
        pool = node["metadata"]["labels"].get(LABEL_POOL, "")
        if not node.get("spec", {}).get("unschedulable"):
            apply.append(_cordon(node))
            draining[pool].append(name)
        elif name in busy:
            draining[pool].append(name)
        else:
            delete.append(name)
    patch = _static_patches(factory, observed)
    return NodeChanges(apply=apply, patch=patch, delete=sorted(delete), draining=dict(draining))


def _keep_foreign_taints(node: Node, observed: Node | None) -> Node:
    """Taints someone else put on a simulated node (a health checker, an admin) stay; ours are
    recorded in an annotation so that a taint dropped from the pool spec is removed again."""
    ours = node["spec"]["taints"]
    ours_ids = {_taint_id(t) for t in ours}
    node["metadata"]["annotations"][ANNOTATION_OWNED_TAINTS] = ",".join(sorted(ours_ids))
    if observed is None:
        return node
    previously = _owned_taints(observed["metadata"].get("annotations") or {})
    foreign = [
        t
        for t in all_taints(observed)
        if _taint_id(t) not in ours_ids | previously
        and not str(t.get("key", "")).startswith("node.kubernetes.io/")
    ]
    node["spec"]["taints"] = ours + [{k: v for k, v in t.items() if k != "timeAdded"} for t in foreign]
    return node


def nodes_with_workloads(pods: list[PodOnNode]) -> set[str]:
    """Nodes that still run pods a drain must wait for (DaemonSet pods do not count)."""
    return {p.node for p in pods if not p.daemon}


def _cordon(node: Node) -> Node:
    """The apply that marks a surplus node unschedulable, keeping every other field we own."""
    labels = node["metadata"].get("labels", {})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node["metadata"]["name"],
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE},
            "ownerReferences": node["metadata"].get("ownerReferences", []),
        },
        "spec": {"unschedulable": True, "taints": node.get("spec", {}).get("taints", [])},
    }


def _static_patches(factory: AIFactory, observed: list[Node]) -> dict[str, dict[str, Any]]:
    """Strategic merge patches that adopt matching nodes and release the ones no pool selects.

    Node taints are an atomic list for server-side apply, so applying ours would take over the
    admin's; a strategic merge patch adds ours by key instead, and annotations remember which
    labels and taints we added so that a release removes exactly those.
    """
    patches: dict[str, dict[str, Any]] = {}
    adopted: set[str] = set()
    for pool in factory.spec.node_pools:
        if pool.provisioner != "static" or not pool.node_selector:
            continue
        for node in observed:
            owner = node["metadata"].get("labels", {}).get(LABEL_FACTORY)
            if (
                is_simulated_by_factory(node)
                or owner not in (None, factory.name)
                or not _matches(node, pool.node_selector)
            ):
                continue
            adopted.add(node["metadata"]["name"])
            if body := adoption_patch(factory, pool, node):
                patches[node["metadata"]["name"]] = body
    for node in observed:
        labels = node["metadata"].get("labels", {})
        if (
            labels.get(LABEL_FACTORY) == factory.name
            and not is_simulated_by_factory(node)
            and node["metadata"]["name"] not in adopted
        ):
            patches[node["metadata"]["name"]] = release_patch(node)
    return patches


def adoption_patch(factory: AIFactory, pool: NodePool, node: Node) -> dict[str, Any] | None:
    """The patch that gives an adopted node the pool's labels and taints; None when it has them.

    Node taints are replaced as a whole by any patch, so the patch carries the node's other taints
    too, and the node's resourceVersion, so that a concurrent change makes it fail and retry.
    """
    meta = node["metadata"]
    labels, annotations = meta.get("labels", {}), meta.get("annotations") or {}
    wanted_labels = pool_labels(factory, pool)
    previously_owned = set(filter(None, annotations.get(ANNOTATION_OWNED_LABELS, "").split(",")))
    owned = sorted(k for k in wanted_labels if k not in labels or k in previously_owned)
    ours = [t.to_wire() for t in pool.taints]
    ours_ids = {_taint_id(t) for t in ours}
    current = all_taints(node)
    others = [t for t in current if _taint_id(t) not in ours_ids | _owned_taints(annotations)]
    satisfied = (
        all(labels.get(k) == v for k, v in wanted_labels.items())
        and ours_ids <= {_taint_id(t) for t in current}
        and annotations.get(ANNOTATION_OWNED_LABELS) == ",".join(owned)
        and annotations.get(ANNOTATION_OWNED_TAINTS) == ",".join(sorted(ours_ids))
    )
    if satisfied:
        return None
    return {
        "metadata": {
            "labels": wanted_labels,
            "annotations": {
                ANNOTATION_OWNED_LABELS: ",".join(owned),
                ANNOTATION_OWNED_TAINTS: ",".join(sorted(ours_ids)),
            },
            "resourceVersion": meta.get("resourceVersion"),
        },
        "spec": {"taints": others + ours},
    }


def release_patch(node: Node) -> dict[str, Any]:
    """The patch that removes exactly the labels and taints we added to an adopted node."""
    meta = node["metadata"]
    annotations = meta.get("annotations") or {}
    owned_labels = [k for k in annotations.get(ANNOTATION_OWNED_LABELS, "").split(",") if k]
    owned_taints = _owned_taints(annotations)
    return {
        "metadata": {
            "labels": {k: None for k in sorted({*owned_labels, LABEL_FACTORY})},
            "annotations": {ANNOTATION_OWNED_LABELS: None, ANNOTATION_OWNED_TAINTS: None},
            "resourceVersion": meta.get("resourceVersion"),
        },
        "spec": {"taints": [t for t in all_taints(node) if _taint_id(t) not in owned_taints]},
    }


def all_taints(node: Node) -> list[dict[str, Any]]:
    """Every taint of the node, including those the node lifecycle controller manages."""
    return list(node.get("allTaints", node.get("spec", {}).get("taints")) or [])


def _taint_id(taint: dict[str, Any]) -> str:
    return f"{taint.get('key')}:{taint.get('effect')}"


def _owned_taints(annotations: dict[str, str]) -> set[str]:
    return set(filter(None, annotations.get(ANNOTATION_OWNED_TAINTS, "").split(",")))


def _matches(node: Node, selector: dict[str, str]) -> bool:
    labels = node["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in selector.items())


def summarize_pools(factory: AIFactory, observed: list[Node], pods: list[PodOnNode]) -> list[PoolStatus]:
    """Per pool: desired and ready nodes, allocatable and used GPUs, per rack, and draining nodes."""
    gpus_by_node: dict[str, int] = defaultdict(int)
    for pod in pods:
        gpus_by_node[pod.node] += pod.gpus
    ours = [n for n in observed if n["metadata"].get("labels", {}).get(LABEL_FACTORY) == factory.name]
    return [_summarize_pool(pool, ours, gpus_by_node) for pool in factory.spec.node_pools]


def is_node_ready(node: Node) -> bool:
    """True when the node's Ready condition is True and it accepts new pods."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not node.get("spec", {}).get("unschedulable", False)


def allocatable_gpus(node: Node) -> int:
    """nvidia.com/gpu the node offers to the scheduler."""
    return int(node.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, 0))


def requested_gpus(pod_spec: dict[str, Any]) -> int:
    """nvidia.com/gpu a pod's containers request (a limit alone implies an equal request)."""
    return sum(
        int((c.get("resources") or {}).get("requests", {}).get(GPU_RESOURCE, 0))
        or int((c.get("resources") or {}).get("limits", {}).get(GPU_RESOURCE, 0))
        for c in pod_spec.get("containers") or []
    )


def is_simulated_by_factory(node: Node) -> bool:
    """A kwok node an AIFactory created (it owns it); adopted nodes, simulated or not, have no such owner."""
    owners = node["metadata"].get("ownerReferences") or []
    return any(o.get("kind") == "AIFactory" for o in owners)


def _summarize_pool(pool: NodePool, ours: list[Node], gpus_by_node: dict[str, int]) -> PoolStatus:
    members = [n for n in ours if n["metadata"].get("labels", {}).get(LABEL_POOL) == pool.name]
    ready = [n for n in members if is_node_ready(n)]
    racks: dict[str, DomainStatus] = {}
    for node in members:
        rack = node["metadata"]["labels"].get(LABEL_RACK, "")
        entry = racks.setdefault(rack, DomainStatus(name=rack))
        if is_node_ready(node):
            entry.nodes_ready += 1
            entry.gpus_allocatable += allocatable_gpus(node)
        entry.gpus_in_use += gpus_by_node.get(node["metadata"]["name"], 0)
    return PoolStatus(
        name=pool.name,
        nodes_desired=pool.nodes,
        nodes_ready=len(ready),
        gpus_allocatable=sum(allocatable_gpus(n) for n in ready),
        gpus_in_use=sum(gpus_by_node.get(n["metadata"]["name"], 0) for n in members),
        racks=[racks[k] for k in sorted(racks) if k],
    )
