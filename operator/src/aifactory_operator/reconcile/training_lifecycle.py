"""The TrainingJob life cycle as typed states and transitions (pure).

    Queued --admit--> Admitted --all workers ready--> Running --Job complete--> Succeeded
      ^                  |  |                            |
      |                  |  +--withdraw (a check failed)-+--> Queued, attempt + 1, withdrawals + 1
      |                  +-----preempted (for another job) -> Queued, attempt + 1, preemptions + 1
      |                  +-----Job failed: disruption ------> Queued, attempt + 1, disruptions + 1
      |                  +-----Job failed: application -----> Queued, attempt + 1, restarts + 1 (backoff)
      |                                                   or Failed once maxRestarts are spent
    Suspended <--spec.suspend-- any unfinished phase;  Refused <--a rule of the factory forbids it

Every function takes a status and returns the next one; none edits its argument. Which Job an
attempt owns, and which nodes it holds, is the protocol's business (gang_protocol.py).
"""

from datetime import datetime, timedelta
from typing import Any, Final

from ..api.v1alpha1.trainingjob import Placement, Residency, TrainingJobStatus
from ..policy.violations import Violation
from .conditions import Outcome

Status = TrainingJobStatus


class Phase:
    """The phases of TrainingJobStatus.phase, by name."""

    QUEUED: Final = "Queued"
    ADMITTED: Final = "Admitted"
    RUNNING: Final = "Running"
    SUCCEEDED: Final = "Succeeded"
    FAILED: Final = "Failed"
    SUSPENDED: Final = "Suspended"
    REFUSED: Final = "Refused"


FINISHED = (Phase.SUCCEEDED, Phase.FAILED)
HOLDING = (Phase.ADMITTED, Phase.RUNNING)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_finished(status: Status) -> bool:
    return status.phase in FINISHED


def holds_nodes(status: Status) -> bool:
    """Admitted or Running with a placement: the attempt's Job exists or is about to."""
    return status.phase in HOLDING and status.placement is not None


def queue(status: Status) -> Status:
    """Waiting for admission (again): holds nothing."""
    return status.model_copy(update={"phase": Phase.QUEUED, "placement": None})


def suspend(status: Status) -> Status:
    return status.model_copy(
        update={
            "phase": Phase.SUSPENDED,
            "placement": None,
            "reason": "suspended; resuming requeues the job",
            "queue_position": None,
        }
    )


def admit(status: Status, placement: Placement, now: datetime) -> Status:
    return status.model_copy(
        update={
            "phase": Phase.ADMITTED,
            "placement": placement,
            "admitted_time": stamp(now),
            "queue_position": None,
            "reason": None,
            "retry_after": None,
        }
    )


def adopt(status: Status, placement: Placement, admitted: str | None) -> Status:
    """The attempt's placement as its Job records it (the Job is the truth about where it runs)."""
    phase = status.phase if status.phase in HOLDING else Phase.ADMITTED
    update: dict[str, Any] = {
        "phase": phase,
        "placement": placement,
        "queue_position": None,
        "retry_after": None,
    }
    if phase == Phase.ADMITTED:
        update["reason"] = None
    if admitted and not status.admitted_time:
        update["admitted_time"] = admitted
    return status.model_copy(update=update)


def run(status: Status, residency: Residency, now: datetime) -> Status:
    return status.model_copy(
        update={
            "phase": Phase.RUNNING,
            "reason": None,
            "start_time": status.start_time or stamp(now),
            "residency": residency,
        }
    )


def wait_admitted(status: Status) -> Status:
    return status.model_copy(update={"phase": Phase.ADMITTED})


def succeed(status: Status, now: datetime) -> Status:
    return status.model_copy(
        update={"phase": Phase.SUCCEEDED, "placement": None, "reason": None, "completion_time": stamp(now)}
    )


def disrupt(status: Status, message: str) -> Status:
    """A node lost or a pod evicted: the gang starts again from its checkpoint, for free."""
    return status.model_copy(
        update={
            "phase": Phase.QUEUED,
            "placement": None,
            "attempt": status.attempt + 1,
            "disruptions": status.disruptions + 1,
            "reason": f"restarting after a disruption: {message}",
        }
    )


def restart(status: Status, message: str, max_restarts: int, delay: timedelta, now: datetime) -> Status:
    """An application failure spends one of maxRestarts and waits out a backoff."""
    restarts = status.restarts + 1
    return status.model_copy(
        update={
            "phase": Phase.QUEUED,
            "placement": None,
            "attempt": status.attempt + 1,
            "restarts": restarts,
            "retry_after": stamp(now + delay),
            "reason": f"restart {restarts} of {max_restarts} from the last checkpoint after: {message}",
        }
    )


def fail(status: Status, message: str, max_restarts: int, now: datetime) -> Status:
    return status.model_copy(
        update={
            "phase": Phase.FAILED,
            "placement": None,
            "completion_time": stamp(now),
            "reason": f"failed after {max_restarts} restarts: {message}",
        }
    )


def preempt(status: Status, why: str) -> Status:
    """Stopped for another job: its workers get the grace period to checkpoint, then it is re-queued
    on a new attempt that resumes from the checkpoint, without spending a restart."""
    return _requeue(status, "preemptions", status.preemptions + 1, why)


def withdraw(status: Status, why: str) -> Status:
    """The operator takes its admission back (its own check failed): re-queued at once, on a new
    attempt, without spending a restart."""
    return _requeue(status, "withdrawals", status.withdrawals + 1, f"re-queued: {why}")


def _requeue(status: Status, counter: str, count: int, reason: str) -> Status:
    """Queued again at once on a new attempt, the cause counted in `counter` (not in restarts)."""
    return status.model_copy(
        update={
            "phase": Phase.QUEUED,
            "placement": None,
            "attempt": status.attempt + 1,
            counter: count,
            "retry_after": None,
            "reason": reason,
        }
    )


def refuse(status: Status, problems: list[Violation]) -> tuple[Status, Outcome]:
    """Phase Refused, unless the job already finished or holds nodes (an attempt that runs is left
    to end; its phase stays true to what its pods do)."""
    keeps_phase = is_finished(status) or holds_nodes(status)
    update: dict[str, object] = {"reason": problems[0].message}
    if not keeps_phase:
        update.update(phase=Phase.REFUSED, queue_position=None)
    return (
        status.model_copy(update=update),
        Outcome.stalled("Refused", "; ".join(str(p) for p in problems)),
    )


def outcome(status: Status) -> Outcome:
    phase = status.phase
    if phase in (Phase.RUNNING, Phase.SUCCEEDED):
        return Outcome.ready(
            phase, "all workers are running" if phase == Phase.RUNNING else "the job completed"
        )
    if phase == Phase.FAILED:
        return Outcome.stalled("Failed", str(status.reason or ""))
    if phase == Phase.SUSPENDED:
        # Not Ready, since nothing runs; not Reconciling or Stalled, since nothing is left to do or
        # wrong. kstatus reads Ready=False as InProgress, as it reads a suspended batch/v1 Job.
        return Outcome.paused("Suspended", str(status.reason or ""))
    return Outcome.progressing(str(phase), str(status.reason or f"the job is {phase}"))


def status_fields(before: Status, after: Status) -> dict[str, object]:
    """The wanted status as on the wire, with None for each field `after` clears (a merge patch
    removes it), leaving conditions and observedGeneration to the caller."""
    old, new = before.to_wire(), after.to_wire()
    fields = {k: v for k, v in new.items() if k not in ("conditions", "observedGeneration")}
    fields.update({k: None for k in old if k not in new and k not in ("conditions", "observedGeneration")})
    return fields
