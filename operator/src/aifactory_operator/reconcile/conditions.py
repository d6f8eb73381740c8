"""Standard Kubernetes conditions (Ready, Reconciling, Stalled), kept in kstatus's conventions.

kstatus (used by Flux and kubectl wait) reads Ready=True as healthy, Reconciling=True as in progress
and Stalled=True as failed; an abnormal-true condition is removed rather than set to False. With
neither, kstatus falls back to Ready: True is Current, False is InProgress.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class Outcome:
    """What one reconcile concluded, before it is turned into conditions."""

    state: str  # "ready", "progressing", "paused" or "stalled"
    reason: str
    message: str

    @classmethod
    def ready(cls, reason: str, message: str) -> "Outcome":
        return cls("ready", reason, message)

    @classmethod
    def progressing(cls, reason: str, message: str) -> "Outcome":
        return cls("progressing", reason, message)

    @classmethod
    def paused(cls, reason: str, message: str) -> "Outcome":
        """Deliberately not running (a suspended job): Ready=False with the reason, and neither
        Reconciling (the operator has nothing left to do) nor Stalled (nothing is wrong). kstatus
        reads it as InProgress, as it reads a suspended batch/v1 Job that has not started."""
        return cls("paused", reason, message)

    @classmethod
    def stalled(cls, reason: str, message: str) -> "Outcome":
        return cls("stalled", reason, message)


def construct_conditions(
    outcome: Outcome,
    existing: list[dict[str, Any]],
    *,
    generation: int,
    now: datetime,
    extra: Sequence[tuple[str, str, str, str]] = (),
) -> list[dict[str, Any]]:
    """The conditions for `outcome` plus `extra` (type, status, reason, message) ones;
    lastTransitionTime only moves when a status flips."""
    ready_status = "True" if outcome.state == "ready" else "False"
    wanted = [construct_condition(READY, ready_status, outcome.reason, outcome.message, generation)]
    if outcome.state == "progressing":
        wanted.append(construct_condition(RECONCILING, "True", outcome.reason, outcome.message, generation))
    if outcome.state == "stalled":
        wanted.append(construct_condition(STALLED, "True", outcome.reason, outcome.message, generation))
    wanted += [
        construct_condition(type_, status, reason, message, generation)
        for type_, status, reason, message in extra
    ]
    previous = {c.get("type"): c for c in existing}
    return [_with_transition_time(c, previous.get(c["type"]), now) for c in wanted]


def construct_condition(
    type_: str, status: str, reason: str, message: str, generation: int
) -> dict[str, Any]:
    """One condition in the metav1.Condition shape (without its transition time)."""
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def find_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    """The condition of `type_`, if present."""
    return next((c for c in conditions if c.get("type") == type_), None)


def _with_transition_time(
    condition: dict[str, Any], previous: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    if previous and previous.get("status") == condition["status"] and previous.get("lastTransitionTime"):
        stamp = previous["lastTransitionTime"]
    else:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**condition, "lastTransitionTime": stamp}
