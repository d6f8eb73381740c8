"""Decision rates, waits and queue lengths from the timestamps the API server keeps (pure).

Creation times, condition transition times and the operator's status.admittedTime all have
one-second resolution, so every wait and rate here does too."""

import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from aifactory_operator.constants import LABEL_TRAININGJOB

RESOLUTION_SECONDS = 1


@dataclass(frozen=True)
class Decided:
    """One queued item: when it was created and when it was admitted or bound (None: not yet)."""

    created: datetime
    decided: datetime | None
    workers: int = 1


def parse_time(stamp: Any) -> datetime | None:
    if not stamp:
        return None
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def each_second(start: datetime, end: datetime) -> Iterator[datetime]:
    moment = start
    while moment <= end:
        yield moment
        moment += timedelta(seconds=1)


def queue_lengths(items: Sequence[Decided], start: datetime, end: datetime) -> list[int]:
    """Items created and not yet decided, at each second from start to end."""
    created = sorted(i.created for i in items)
    decided = sorted(i.decided for i in items if i.decided)
    return [bisect_right(created, t) - bisect_right(decided, t) for t in each_second(start, end)]


def summarize(items: Sequence[Decided], window_seconds: float) -> dict[str, Any]:
    """Decisions made within `window_seconds` of the first creation: how many, how fast (over the
    time from the first creation to the last decision in the window), how long each waited, and
    how many waited at each second of the window."""
    start = min(i.created for i in items)
    end = start + timedelta(seconds=window_seconds)
    done = [i for i in items if i.decided and i.decided <= end]
    last = max((i.decided for i in done if i.decided), default=start)
    span = max((last - start).total_seconds(), RESOLUTION_SECONDS)
    waits = [(i.decided - i.created).total_seconds() for i in done if i.decided]
    queue = queue_lengths(items, start, end)
    instants = decision_instants(done)
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(instants)]
    return {
        "created_in_window": sum(1 for i in items if i.created <= end),
        "decided": len(done),
        "decided_workers": sum(i.workers for i in done),
        "seconds_first_creation_to_last_decision": span,
        "decisions_per_second": round(len(done) / span, 2),
        "workers_per_second": round(sum(i.workers for i in done) / span, 2),
        "wait_p50_seconds": percentile(waits, 0.5) if waits else None,
        "wait_p99_seconds": percentile(waits, 0.99) if waits else None,
        "wait_max_seconds": max(waits, default=None),
        "decision_instants": len(instants),
        "longest_gap_between_decisions_seconds": max(gaps, default=None),
        "queue_length_mean": round(sum(queue) / len(queue), 1),
        "queue_length_max": max(queue),
        "queue_length_at_window_end": queue[-1],
    }


def decision_instants(items: Sequence[Decided]) -> list[datetime]:
    """The distinct seconds at which decisions landed: a decision loop that stalls shows as few
    instants with long gaps between them."""
    return sorted({i.decided for i in items if i.decided})


def trainingjob_decisions(trainingjobs: list[dict[str, Any]]) -> list[Decided]:
    """Creation to the operator's admission (status.admittedTime) of each TrainingJob."""
    return [
        Decided(
            created=_created(t),
            decided=parse_time((t.get("status") or {}).get("admittedTime")),
            workers=t["spec"]["nodes"],
        )
        for t in trainingjobs
    ]


def pod_decisions(pods: list[dict[str, Any]]) -> list[Decided]:
    """Creation to kube-scheduler's binding (the PodScheduled condition turning True) of each pod."""
    return [Decided(created=_created(p), decided=scheduled_at(p)) for p in pods]


def job_decisions(jobs: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[Decided]:
    """Creation of each plain Job to the binding of its last pod: when the whole gang was placed."""
    bound: dict[str, list[datetime | None]] = {}
    for pod in pods:
        bound.setdefault(_gang(pod), []).append(scheduled_at(pod))
    decisions = []
    for job in jobs:
        size = job["spec"]["parallelism"]
        times = bound.get(_gang(job), [])
        whole = len(times) >= size and all(times)
        decisions.append(Decided(_created(job), max(t for t in times if t) if whole else None, workers=size))
    return decisions


def workload_decisions(jobs: list[dict[str, Any]], workloads: list[dict[str, Any]]) -> list[Decided]:
    """Creation of each Job queued in Kueue to the admission of its Workload (the Admitted
    condition turning True): Kueue's gang decision, made before the Job is unsuspended."""
    admitted: dict[str, datetime | None] = {}
    for workload in workloads:
        for owner in workload["metadata"].get("ownerReferences") or []:
            admitted[owner["uid"]] = condition_true_at(workload, "Admitted")
    return [
        Decided(_created(job), admitted.get(job["metadata"]["uid"]), workers=job["spec"]["parallelism"])
        for job in jobs
    ]


def condition_true_at(obj: dict[str, Any], kind: str) -> datetime | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return parse_time(condition.get("lastTransitionTime"))
    return None


def scheduled_at(pod: dict[str, Any]) -> datetime | None:
    return condition_true_at(pod, "PodScheduled")


def _created(obj: dict[str, Any]) -> datetime:
    created = parse_time(obj["metadata"].get("creationTimestamp"))
    assert created is not None, f"{obj['metadata']['name']} has no creationTimestamp"
    return created


def _gang(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("labels") or {}).get(LABEL_TRAININGJOB, ""))
