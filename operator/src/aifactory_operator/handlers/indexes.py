"""Watch-fed in-memory views of nodes and pods, so reconciles read them without a LIST.

The index functions are coroutines although they never await: kopf runs a plain function on its
thread pool, and the hop there and back cost more than the function itself. Building a 4,000-node
factory, those hops were a quarter of the operator's CPU (py-spy)."""

from typing import Any

import kopf

from ..constants import (
    ANNOTATION_MODEL_DIGEST,
    GROUP,
    LABEL_FACTORY,
    LABEL_MODELENDPOINT,
    LABEL_TRAININGJOB,
    VERSION,
)
from ..reconcile.gang_views import BatchJob, UnschedulablePod, batch_job_view, pod_view, unschedulable_view
from ..reconcile.nodepools import PodOnNode
from ..reconcile.resources import parse_amounts
from ..reconcile.serving import DeploymentView

SYSTEM_TAINTS = "node.kubernetes.io/"


def lean(body: kopf.Body) -> dict[str, Any]:
    """The object without metadata.managedFields, which nothing here reads and which is often the
    largest part of it: thousands of queued jobs are held in memory at once."""
    whole = dict(body)
    whole["metadata"] = {k: v for k, v in body.metadata.items() if k != "managedFields"}
    return whole


@kopf.index("v1", "nodes")
async def nodes_by_name(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """The parts of each node the factory reconciler compares and counts."""
    meta, spec, status = body.metadata, body.spec, body.status
    return {
        name: {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": dict(meta.labels),
                "annotations": dict(meta.annotations),
                "ownerReferences": list(meta.get("ownerReferences") or []),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "allTaints": list(spec.get("taints") or []),
            "spec": {
                # Taints the node lifecycle controller manages come and go with node health; they
                # are not ours to compare, so they are left out of the view.
                "taints": [
                    t for t in spec.get("taints") or [] if not t.get("key", "").startswith(SYSTEM_TAINTS)
                ],
                **({"unschedulable": True} if spec.get("unschedulable") else {}),
            },
            "status": {
                "capacity": dict(status.get("capacity") or {}),
                "allocatable": dict(status.get("allocatable") or {}),
                # Parsed once per change of the node, not once per tick of the admission loop.
                "allocatableAmounts": parse_amounts(status.get("allocatable") or {}),
                "conditions": [
                    {"type": c.get("type"), "status": c.get("status")}
                    for c in status.get("conditions") or []
                    if c.get("type") == "Ready"
                ],
            },
        }
    }


@kopf.index("v1", "pods")
async def pods_by_node(name: str, body: kopf.Body, **_: Any) -> dict[str, PodOnNode]:
    """Pods bound to a node and not finished, with what they request. An empty result, not None:
    kopf keeps an object's previous entry when its function returns None, so a pod that finished
    would go on holding its node's GPUs in the ledger until it was deleted."""
    pod = pod_view({"metadata": body.metadata, "spec": body.spec, "status": body.status})
    return {} if pod is None else {pod.node: pod}


@kopf.index("v1", "pods", labels={LABEL_TRAININGJOB: kopf.PRESENT})
async def unschedulable_pods_by_trainingjob(body: kopf.Body, **_: Any) -> dict[str, UnschedulablePod]:
    """Gang pods the scheduler could not place: a gang admitted onto nodes that cannot hold it.
    Empty (not None, see pods_by_node) once the pod is placed."""
    seen = unschedulable_view({"metadata": body.metadata, "spec": body.spec, "status": body.status})
    return {} if seen is None else {seen[0]: seen[1]}


@kopf.index(GROUP, VERSION, "modelendpoints")
async def modelendpoints_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Every ModelEndpoint, whole, by namespace: served from the same loop as training."""
    return {namespace: lean(body)}


@kopf.index("apps", "v1", "deployments", labels={LABEL_MODELENDPOINT: kopf.PRESENT})
async def deployments_by_endpoint(
    namespace: str, labels: kopf.Labels, body: kopf.Body, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[str, DeploymentView]:
    """Our Deployments by the ModelEndpoint that owns them, with how their rollout is going."""
    template = spec.get("template") or {}
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    return {
        f"{namespace}/{labels[LABEL_MODELENDPOINT]}": DeploymentView(
            replicas=int(spec.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            generation=int(body.metadata.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            version=str(annotations.get(ANNOTATION_MODEL_DIGEST, "")),
            surge=rolling.get("maxSurge") == 1,
        )
    }


@kopf.index("scheduling.k8s.io", "v1", "priorityclasses")
async def priority_class_values(name: str, body: kopf.Body, **_: Any) -> dict[str, int]:
    """Every PriorityClass's value by name: a TrainingJob's priorityClassName is its priority."""
    return {name: int(body.get("value") or 0)}


@kopf.index(GROUP, VERSION, "trainingjobs")
async def trainingjobs_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Every TrainingJob, whole, by namespace: the admission loop's queue."""
    return {namespace: lean(body)}


@kopf.index(GROUP, VERSION, "datasets")
async def datasets_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {namespace: lean(body)}


@kopf.index("batch", "v1", "jobs", labels={LABEL_TRAININGJOB: kopf.PRESENT})
async def batch_jobs_by_trainingjob(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[str, BatchJob]:
    """Our Jobs by the TrainingJob that owns them: how each attempt goes and which nodes it pins."""
    return {f"{namespace}/{labels[LABEL_TRAININGJOB]}": batch_job_view(dict(body))}


def snapshot_nodes(index: kopf.Index[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A stable copy of the nodes index, taken in the event loop before work moves to a thread."""
    return [node for key in list(index) for node in list(index.get(key, []))]


def snapshot_pods(index: kopf.Index[str, PodOnNode]) -> list[PodOnNode]:
    return [pod for key in list(index) for pod in list(index.get(key, []))]


def snapshot_values(index: kopf.Index[str, Any], keys: list[str] | None = None) -> dict[str, list[Any]]:
    """A copy of an index (or of some of its keys), taken in the event loop."""
    chosen = list(index) if keys is None else [k for k in keys if k in index]
    return {key: list(index.get(key, [])) for key in chosen}


@kopf.index(GROUP, VERSION, "aifactories")
async def factories_by_tenant_namespace(
    body: kopf.Body, spec: kopf.Spec, **_: Any
) -> dict[str, dict[str, Any]]:
    """Each tenant namespace's factory, whole: the webhook reads tenants and pools from it."""
    factory = dict(body)
    return {ns: factory for tenant in spec.get("tenants") or [] for ns in tenant.get("namespaces") or []}


@kopf.index("v1", "namespaces", labels={LABEL_FACTORY: kopf.PRESENT})
async def factory_label_by_namespace(name: str, labels: kopf.Labels, **_: Any) -> dict[str, str]:
    """Which factory each labelled namespace names: the webhook locks one no factory lists."""
    return {name: str(labels[LABEL_FACTORY])}
