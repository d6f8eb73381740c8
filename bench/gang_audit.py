"""Gang integrity at one moment (issue 20): gangs stuck Admitted, nodes promised to more pods than
they hold, and Jobs pinned to other nodes than their TrainingJob's status names.

`audit_gangs` is pure, over objects as listed from the API server; `read_gang_audit` lists them
at one etcd revision, so that a gang finishing and the next one admitted between two lists does not
read as one node promised twice."""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from aifactory_operator.constants import API_VERSION, LABEL_ATTEMPT, LABEL_TRAININGJOB
from aifactory_operator.kube.client import Kube

Obj = dict[str, Any]
GangKey = tuple[str, str, str]  # namespace, TrainingJob, attempt
# A failure message names this many of each; the counts stay whole.
NAMES_SHOWN = 10
FINISHED_PHASES = ("Succeeded", "Failed")
# A Job with one of these conditions True creates no more pods: since Kubernetes 1.31 the terminal
# Complete and Failed come only after its pods are gone, SuccessCriteriaMet and FailureTarget first.
FINISHED_JOB_CONDITIONS = ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget")
NODE_NAME_FIELD = "metadata.name"


@dataclass(frozen=True)
class GangAudit:
    """What was wrong at the moment of the audit; every figure must be 0. The names are sorted:
    TrainingJobs as namespace/name, nodes as `node: resource requested/allocatable`."""

    stuck: tuple[str, ...] = ()
    double_booked: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()

    @property
    def stuck_gangs(self) -> int:
        return len(self.stuck)

    @property
    def double_booked_nodes(self) -> int:
        return len(self.double_booked)

    @property
    def placement_mismatches(self) -> int:
        return len(self.mismatched)

    def is_clean(self) -> bool:
        return not (self.stuck or self.double_booked or self.mismatched)

    def counts(self) -> dict[str, int]:
        return {
            "stuck_gangs": self.stuck_gangs,
            "double_booked_nodes": self.double_booked_nodes,
            "placement_mismatches": self.placement_mismatches,
        }

    def names(self) -> dict[str, list[str]]:
        """The first names behind each figure that is not 0."""
        named = {"stuck_gangs": self.stuck, "double_booked_nodes": self.double_booked}
        named["placement_mismatches"] = self.mismatched
        return {figure: list(names[:NAMES_SHOWN]) for figure, names in named.items() if names}

    def summary(self) -> str:
        """One line for a log or a failed assertion."""
        counts = " ".join(f"{k}={v}" for k, v in self.counts().items())
        return counts + "".join(f"; {k}: {', '.join(v)}" for k, v in self.names().items())


def audit_gangs(
    trainingjobs: list[Obj],
    jobs: list[Obj],
    pods: list[Obj],
    nodes: list[Obj],
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
) -> GangAudit:
    """The audit of one snapshot. With `now`, a gang counts as stuck only once it has been so for
    longer than `grace` (its pod unschedulable, or admitted with no Job), so that a poll does not
    catch the moment between the operator's writes; without, every such gang counts."""
    gang_jobs = {key: job for job in jobs if (key := gang_key(job))}
    gang_pods: dict[GangKey, list[Obj]] = defaultdict(list)
    for pod in pods:
        if key := gang_key(pod):
            gang_pods[key].append(pod)
    return GangAudit(
        stuck=tuple(sorted(find_stuck(trainingjobs, gang_jobs, gang_pods, now, grace))),
        double_booked=tuple(sorted(find_double_booked(gang_jobs, gang_pods, pods, nodes))),
        mismatched=tuple(sorted(find_mismatches(trainingjobs, gang_jobs))),
    )


def gang_key(obj: Obj) -> GangKey | None:
    """The gang a Job or pod belongs to, from the labels the operator puts on both."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if LABEL_TRAININGJOB not in labels or LABEL_ATTEMPT not in labels:
        return None
    return meta.get("namespace", ""), labels[LABEL_TRAININGJOB], labels[LABEL_ATTEMPT]


def current_key(trainingjob: Obj) -> GangKey:
    meta, status = trainingjob["metadata"], trainingjob.get("status") or {}
    return meta.get("namespace", ""), meta["name"], str(status.get("attempt", 0))


def qualified(trainingjob: Obj) -> str:
    return f"{trainingjob['metadata'].get('namespace', '')}/{trainingjob['metadata']['name']}"


def placed_nodes(trainingjob: Obj) -> set[str]:
    """The nodes the TrainingJob's status says admission reserved."""
    return set(((trainingjob.get("status") or {}).get("placement") or {}).get("nodes") or [])


def pinned_nodes(job: Obj) -> set[str]:
    """The nodes a Job's pod template may run on: one `metadata.name In [node]` per term."""
    affinity = (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("affinity") or {}
    required = (affinity.get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    return {
        node
        for term in required.get("nodeSelectorTerms") or []
        for field in term.get("matchFields") or []
        if field.get("key") == NODE_NAME_FIELD and field.get("operator") == "In"
        for node in field.get("values") or []
    }


def find_mismatches(trainingjobs: list[Obj], gang_jobs: dict[GangKey, Obj]) -> list[str]:
    """TrainingJobs whose current attempt's Job pins other nodes than their status names: the
    accounting reads one and the scheduler obeys the other."""
    return [
        qualified(tj)
        for tj in trainingjobs
        if (placed := placed_nodes(tj))
        and (job := gang_jobs.get(current_key(tj))) is not None
        and pinned_nodes(job) != placed
    ]


def find_stuck(
    trainingjobs: list[Obj],
    gang_jobs: dict[GangKey, Obj],
    gang_pods: dict[GangKey, list[Obj]],
    now: datetime | None,
    grace: timedelta,
) -> list[str]:
    """Admitted gangs that cannot start: a worker the scheduler found no room for, or nodes in the
    status and no Job to run on them. A gang still queued is waiting, not stuck."""
    stuck = []
    for tj in trainingjobs:
        if (tj.get("status") or {}).get("phase") != "Admitted":
            continue
        key = current_key(tj)
        if key not in gang_jobs:
            admitted = (tj.get("status") or {}).get("admittedTime")
            if placed_nodes(tj) and is_older(admitted, now, grace):
                stuck.append(qualified(tj))
        elif any(is_unschedulable(pod, now, grace) for pod in gang_pods.get(key, [])):
            stuck.append(qualified(tj))
    return stuck


def is_unschedulable(pod: Obj, now: datetime | None, grace: timedelta) -> bool:
    """Pending because kube-scheduler found no node for it (not merely not looked at yet)."""
    if (pod.get("status") or {}).get("phase") != "Pending":
        return False
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        and is_older(c.get("lastTransitionTime"), now, grace)
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def is_older(stamp: str | None, now: datetime | None, grace: timedelta) -> bool:
    """True without a clock or a stamp to judge by: then every case counts."""
    if now is None or not stamp:
        return True
    return now - datetime.fromisoformat(stamp.replace("Z", "+00:00")) > grace


def is_finished_job(job: Obj) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in FINISHED_JOB_CONDITIONS and c.get("status") == "True" for c in conditions)


def is_holding_pod(pod: Obj) -> bool:
    """A pod that holds its node's resources and will not give them back soon: bound, not finished,
    not being deleted (a pod being deleted is leaving; the operator may count its node as free)."""
    return (
        bool((pod.get("spec") or {}).get("nodeName"))
        and (pod.get("status") or {}).get("phase") not in FINISHED_PHASES
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
    )


def find_double_booked(
    gang_jobs: dict[GangKey, Obj], gang_pods: dict[GangKey, list[Obj]], pods: list[Obj], nodes: list[Obj]
) -> list[str]:
    """Nodes where what the bound pods request plus what live gangs' workers pinned there but not
    yet bound will request exceeds what the node can allocate, for any resource."""
    committed: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for pod in pods:
        if is_holding_pod(pod):
            add(committed[pod["spec"]["nodeName"]], pod_requests(pod.get("spec") or {}))
    for key, job in gang_jobs.items():
        if is_finished_job(job) or (job.get("metadata") or {}).get("deletionTimestamp"):
            continue
        worker = pod_requests(job["spec"]["template"].get("spec") or {})
        for node in unbound_nodes(job, gang_pods.get(key, [])):
            add(committed[node], worker)
    return [
        f"{name}: {over}"
        for node in nodes
        if (name := node["metadata"]["name"]) in committed
        and (over := overcommitted(committed[name], allocatable(node)))
    ]


def unbound_nodes(job: Obj, pods: list[Obj]) -> set[str]:
    """Pinned nodes where no pod of the Job has been bound. A worker that already finished there
    counts as bound: an Indexed Job never runs a finished index again, so that node owes it nothing."""
    return pinned_nodes(job) - {(p.get("spec") or {}).get("nodeName") for p in pods}


def pod_requests(spec: Obj) -> dict[str, Decimal]:
    """What kube-scheduler reserves for a pod: its containers' requests summed, or its largest
    init container's where that is more, plus the pod overhead."""
    total: dict[str, Decimal] = defaultdict(Decimal)
    for container in spec.get("containers") or []:
        add(total, container_requests(container))
    for init in spec.get("initContainers") or []:
        for resource, amount in container_requests(init).items():
            total[resource] = max(total[resource], amount)
    add(total, quantities(spec.get("overhead") or {}))
    return dict(total)


def container_requests(container: Obj) -> dict[str, Decimal]:
    """Requests, or the limit where a resource has no request (as the API server defaults a pod's,
    which a Job's pod template has not been)."""
    resources = container.get("resources") or {}
    return quantities({**(resources.get("limits") or {}), **(resources.get("requests") or {})})


def allocatable(node: Obj) -> dict[str, Decimal]:
    return quantities((node.get("status") or {}).get("allocatable") or {})


def overcommitted(committed: dict[str, Decimal], capacity: dict[str, Decimal]) -> str:
    """Each resource committed beyond capacity as `resource committed/allocatable`; empty if none."""
    return ", ".join(
        f"{resource} {amount:f}/{capacity.get(resource, Decimal(0)):f}"
        for resource, amount in sorted(committed.items())
        if amount > capacity.get(resource, Decimal(0))
    )


def quantities(amounts: dict[str, Any]) -> dict[str, Decimal]:
    return {resource: parse_quantity(amount) for resource, amount in amounts.items()}


def add(total: dict[str, Decimal], amounts: dict[str, Decimal]) -> None:
    for resource, amount in amounts.items():
        total[resource] += amount


# Reading at one revision may find it compacted or not yet in a watch cache; the next read takes a
# newer one.
READ_ATTEMPTS = 3


def read_gang_audit(
    kube: Kube,
    namespaces: Iterable[str],
    *,
    node_selector: str = "",
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
) -> GangAudit:
    """The audit of the TrainingJobs and gang Jobs of `namespaces`, every pod (a pod of any
    namespace takes room on a node) and the nodes matching `node_selector`."""
    namespaces = list(namespaces)
    for _ in range(READ_ATTEMPTS - 1):
        try:
            return audit_gangs(*read_snapshot(kube, namespaces, node_selector), now=now, grace=grace)
        except ApiException:
            continue
    return audit_gangs(*read_snapshot(kube, namespaces, node_selector), now=now, grace=grace)


def read_snapshot(kube: Kube, namespaces: list[str], node_selector: str) -> tuple[list[Obj], ...]:
    """TrainingJobs, gang Jobs, pods and nodes as they were at one etcd revision: that of the first
    list (resource versions are etcd revisions, one sequence for every kind)."""
    trainingjobs, revision = list_at(kube, API_VERSION, "TrainingJob", namespaces[0], "", None)
    for namespace in namespaces[1:]:
        trainingjobs += list_at(kube, API_VERSION, "TrainingJob", namespace, "", revision)[0]
    jobs = [
        job
        for namespace in namespaces
        for job in list_at(kube, "batch/v1", "Job", namespace, LABEL_TRAININGJOB, revision)[0]
    ]
    pods = list_at(kube, "v1", "Pod", None, "", revision)[0]
    nodes = list_at(kube, "v1", "Node", None, node_selector, revision)[0]
    return trainingjobs, jobs, pods, nodes


def list_at(
    kube: Kube, api_version: str, kind: str, namespace: str | None, selector: str, revision: str | None
) -> tuple[list[Obj], str]:
    """One list as plain JSON (decoding thousands of pods into the client's models costs seconds),
    at `revision` exactly, or the newest when None; with the revision it was read at."""
    at = {"resource_version": revision, "resource_version_match": "Exact"} if revision else {}
    response = kube.resource(api_version, kind).get(
        namespace=namespace, label_selector=selector or None, serialize=False, **at
    )
    body = json.loads(response.data)
    return body.get("items") or [], body["metadata"]["resourceVersion"]
