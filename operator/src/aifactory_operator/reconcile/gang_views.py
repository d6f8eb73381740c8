"""What the admission loop keeps of each batch Job and pod it watches (pure, so that the kopf
indexes and the protocol's simulation read objects the same way).

A gang's Job is the durable record of its admission: the nodes its pod template pins are where the
gang runs, whatever a status written before or after says. So the view keeps those nodes and the
requests of one worker, and the ledger reserves them until the workers' pods are bound there.
"""

from dataclasses import dataclass
from typing import Any

from ..constants import LABEL_ATTEMPT, LABEL_MODELENDPOINT, LABEL_TRAININGJOB
from .nodepools import PodOnNode, requested_gpus
from .resources import FrozenAmounts, freeze, pod_requests

Obj = dict[str, Any]


@dataclass(frozen=True)
class BatchJob:
    """What the life cycle needs of an observed batch/v1 Job."""

    name: str
    complete: bool = False
    failed: bool = False
    message: str = ""
    ready: int = 0
    attempt: int = -1  # the attempt label; -1 when absent (a Job written before attempts were labelled)
    nodes: tuple[str, ...] = ()  # the nodes its pod template pins, sorted
    requests: FrozenAmounts = ()  # what one worker requests
    owner_uid: str = ""  # the TrainingJob it belongs to (a recreated TrainingJob of the same name differs)

    @property
    def finished(self) -> bool:
        return self.complete or self.failed


@dataclass(frozen=True)
class UnschedulablePod:
    """A pod of a gang the scheduler could not place, and since when."""

    name: str
    attempt: str
    since: str  # lastTransitionTime of PodScheduled=False
    message: str


def batch_job_view(job: Obj) -> BatchJob:
    meta, spec, status = job.get("metadata") or {}, job.get("spec") or {}, job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    failed = conditions.get("Failed")
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    attempt = str((meta.get("labels") or {}).get(LABEL_ATTEMPT, ""))
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("kind") == "TrainingJob"]
    return BatchJob(
        name=str(meta.get("name", "")),
        complete="Complete" in conditions,
        failed=failed is not None,
        message=str((failed or {}).get("message", "")),
        ready=int(status.get("ready") or 0),
        attempt=int(attempt) if attempt.isdigit() else -1,
        nodes=pinned_nodes(pod_spec),
        requests=freeze(pod_requests(pod_spec)),
        owner_uid=str(owners[0].get("uid", "")) if owners else "",
    )


def pinned_nodes(pod_spec: Obj) -> tuple[str, ...]:
    """The node names a pod template's required node affinity allows through metadata.name."""
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    names = {
        name
        for term in affinity.get("nodeSelectorTerms") or []
        for field in term.get("matchFields") or []
        if field.get("key") == "metadata.name" and field.get("operator") == "In"
        for name in field.get("values") or []
    }
    return tuple(sorted(names))


def pod_view(pod: Obj) -> PodOnNode | None:
    """A pod bound to a node and not finished, with what it requests; None for any other pod."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    if not node or status.get("phase") in ("Succeeded", "Failed"):
        return None
    namespace = str(meta.get("namespace", ""))
    labels = meta.get("labels") or {}
    daemon = any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or [])
    training = f"{namespace}/{labels[LABEL_TRAININGJOB]}" if labels.get(LABEL_TRAININGJOB) else ""
    endpoint = f"{namespace}/{labels[LABEL_MODELENDPOINT]}" if labels.get(LABEL_MODELENDPOINT) else ""
    return PodOnNode(
        namespace,
        str(meta.get("name", "")),
        node,
        requested_gpus(spec),
        daemon=daemon,
        training_job=training,
        endpoint=endpoint,
        requests=freeze(pod_requests(spec)),
        attempt=str(labels.get(LABEL_ATTEMPT, "")),
    )


def unschedulable_view(pod: Obj) -> tuple[str, UnschedulablePod] | None:
    """(namespace/trainingjob, the pod) for a gang's pod the scheduler marked Unschedulable."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    labels = meta.get("labels") or {}
    if spec.get("nodeName") or not labels.get(LABEL_TRAININGJOB) or status.get("phase") != "Pending":
        return None
    condition = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    if not condition or condition.get("status") != "False" or condition.get("reason") != "Unschedulable":
        return None
    key = f"{meta.get('namespace', '')}/{labels[LABEL_TRAININGJOB]}"
    return key, UnschedulablePod(
        str(meta.get("name", "")),
        str(labels.get(LABEL_ATTEMPT, "")),
        str(condition.get("lastTransitionTime", "")),
        str(condition.get("message", "")),
    )
