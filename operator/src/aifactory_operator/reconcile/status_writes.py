"""Which status writes one tick sends, in which order (pure).

Decisions (a change of phase or condition) are always written; the queue's reports (first statuses
of newly queued jobs, oldest first, then refreshes of a waiting job's position, stalest first) get
what is left of the tick's write budget, an Event counting as a write. With a deep queue the API
server's write rate paces admission: a tick that admits a hundred gangs should not also wait for
hundreds of "still queued" statuses.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..api.v1alpha1 import ModelEndpoint, TrainingJob
from .conditions import Outcome, construct_conditions
from .lifecycle_events import LifecycleEvent, construct_lifecycle_events, merge_status, story_mark


@dataclass(frozen=True)
class WriteBudget:
    """How many writes a tick's reports may take (see the module's docstring)."""

    tick_writes: int = 100
    report_writes_min: int = 20
    queue_entries: int = 200
    queue_refreshes: int = 50


@dataclass(frozen=True)
class StatusWrite:
    """One status patch of a tick and the Events it tells; each costs one write."""

    key: str
    owner: TrainingJob | ModelEndpoint
    patch: dict[str, Any]
    events: list[LifecycleEvent] = field(default_factory=list)
    mark: tuple[Any, ...] | None = None  # story_mark of the written status; None: tells nothing

    @property
    def writes(self) -> int:
        return 1 + len(self.events)


def choose_status_writes(
    statuses: dict[str, tuple[dict[str, Any], Outcome]],
    owners: dict[str, TrainingJob | ModelEndpoint],
    decided_writes: int,
    refreshed: dict[str, float],
    told: dict[str, tuple[Any, ...]],
    budget: WriteBudget,
    now: datetime,
) -> tuple[list[StatusWrite], list[StatusWrite]]:
    """(every write of this tick, the queue refreshes among them); `decided_writes` = the creates
    and deletes the tick also sends, `refreshed` = job key -> time of its last refresh."""
    changes: list[StatusWrite] = []
    refreshes: list[tuple[float, str, StatusWrite]] = []
    entries: list[tuple[str, str, StatusWrite]] = []
    for key, (fields, outcome) in statuses.items():
        owner = owners[key]
        current = owner.status.to_wire() if owner.status else {}
        if not (patch := status_patch(owner, current, fields, outcome, now)):
            continue
        if is_queue_refresh(current, patch):
            # A refresh changes no phase or condition, so it tells nothing; with thousands queued,
            # working out its Events every tick would cost for nothing.
            refreshes.append((refreshed.get(key, 0.0), key, StatusWrite(key, owner, patch)))
            continue
        write = plan_status_write(key, owner, current, patch, told.get(key))
        if is_queue_entry(current, patch):
            entries.append((str(owner.metadata.get("creationTimestamp", "")), key, write))
        else:
            changes.append(write)
    decided = decided_writes + sum(w.writes for w in changes)
    room = max(budget.tick_writes - decided, budget.report_writes_min)
    entered = take_within([w for *_, w in sorted(entries, key=lambda e: e[:2])], budget.queue_entries, room)
    left = room - sum(w.writes for w in entered)
    chosen = take_within(
        [w for *_, w in sorted(refreshes, key=lambda r: r[:2])], budget.queue_refreshes, left
    )
    return changes + entered + chosen, chosen


def plan_status_write(
    key: str,
    owner: TrainingJob | ModelEndpoint,
    current: dict[str, Any],
    patch: dict[str, Any],
    told: tuple[Any, ...] | None,
) -> StatusWrite:
    """The write of `patch` with the Events it tells, none when they were told already."""
    kind = owner.info.kind
    mark = story_mark(kind, merge_status(current, patch))
    events = [] if mark == told else construct_lifecycle_events(kind, current, patch)
    return StatusWrite(key, owner, patch, events, mark)


def take_within(writes: list[StatusWrite], limit: int, room: int) -> list[StatusWrite]:
    """The first writes, at most `limit` of them and at most `room` API writes in all."""
    taken: list[StatusWrite] = []
    for write in writes[:limit]:
        if write.writes > room:
            break
        taken.append(write)
        room -= write.writes
    return taken


def is_queue_entry(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    """A job the loop has not reported on yet (`current`: its stored status), to be reported as queued."""
    return not current.get("phase") and patch.get("phase") == "Queued"


def is_queue_refresh(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    """A queued job staying queued, with its conditions' types, states and reasons unchanged: only
    its position or the wording of why it waits moved."""
    if current.get("phase") != "Queued" or patch.get("phase", "Queued") != "Queued":
        return False

    def states(conditions: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {(c.get("type"), c.get("status"), c.get("reason")) for c in conditions}

    return "conditions" not in patch or states(patch["conditions"]) == states(current.get("conditions") or [])


def status_patch(
    job: TrainingJob | ModelEndpoint,
    current: dict[str, Any],
    fields: dict[str, Any],
    outcome: Outcome,
    now: datetime,
) -> dict[str, Any]:
    """The merge patch from the stored status (`current`, as on the wire) to the wanted one; empty
    when nothing changed."""
    existing = list(current.get("conditions") or [])
    wanted = {
        **fields,
        "observedGeneration": job.generation,
        "conditions": construct_conditions(outcome, existing, generation=job.generation, now=now),
    }
    patch = {k: v for k, v in wanted.items() if current.get(k) != v and not (v is None and k not in current)}
    return patch
