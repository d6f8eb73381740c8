"""The Kubernetes Events that tell a TrainingJob's or ModelEndpoint's story (pure), so that
`kubectl describe` lists what happened to it: one Event per change of phase or condition, computed
from the status the API server holds and the one about to be written.

Events are narrated from transitions only, never from a state: a job that waits for a thousand
ticks gets one Queued Event, not one per tick (client-go's recorder would fold such repeats into a
count; not sending them at all also saves the writes). A waiting job's position and the wording of
why it waits change with every admission ahead of it; they stay in status.queuePosition and
status.reason and make no Event, since one per move would be an Event per queued job per tick.
"""

from dataclasses import dataclass
from typing import Any

from .conditions import READY, RECONCILING, STALLED, find_condition

Obj = dict[str, Any]
NODES_NAMED = 5  # an Admitted message names this many nodes, then counts the rest
# What a TrainingJob's first words are after a pause or a refusal ends, so the story reads on.
REQUEUED_AFTER = {"Suspended": "Resumed; ", "Refused": "The factory's rules allow the job now; "}


@dataclass(frozen=True)
class LifecycleEvent:
    """One Event to record on the object: a CamelCase reason and a readable sentence."""

    reason: str
    message: str
    warning: bool = False


def construct_lifecycle_events(kind: str, stored: Obj, patch: Obj) -> list[LifecycleEvent]:
    """The Events that writing the merge `patch` over the `stored` status tells, in order."""
    written = merge_status(stored, patch)
    if kind == "TrainingJob":
        return construct_training_events(stored, written)
    if kind == "ModelEndpoint":
        return construct_endpoint_events(stored, written)
    return []


def story_mark(kind: str, status: Obj) -> tuple[Any, ...]:
    """What of a status the Events narrate; two statuses with the same mark tell nothing new. A
    loop whose watch lags behind its own writes compares this to what it told last."""
    conditions = status.get("conditions") or []
    states = tuple(sorted((c.get("type"), c.get("status"), c.get("reason")) for c in conditions))
    if kind == "TrainingJob":
        return (status.get("phase"), int(status.get("attempt") or 0), states)
    admitted = int(status.get("reservedGpus") or 0) > 0
    return (admitted, status.get("rollingOutDigest"), status.get("servedDigest"), states)


def merge_status(stored: Obj, patch: Obj) -> Obj:
    """The status after a JSON merge patch of its top-level fields (None removes one)."""
    merged = {**stored, **patch}
    return {k: v for k, v in merged.items() if v is not None}


def construct_training_events(stored: Obj, written: Obj) -> list[LifecycleEvent]:
    """Refused, Restarted, then the Event of the phase the job entered, if any."""
    events = []
    # Stalled for any reason but a failed run (told as Failed) is a refusal: a rule of the factory,
    # a namespace of no tenant, a spec that does not parse.
    if (stalled := newly_true(stored, written, STALLED)) and stalled.get("reason") != "Failed":
        events.append(
            LifecycleEvent("Refused", f"The job is refused: {stalled.get('message', '')}", warning=True)
        )
    restarted = int(written.get("attempt") or 0) > int(stored.get("attempt") or 0)
    if restarted:
        events.append(construct_restarted_event(stored, written))
    phase = written.get("phase")
    if phase != stored.get("phase") and phase != "Refused" and not (restarted and phase == "Queued"):
        events.append(construct_phase_event(stored, written))
    return events


def construct_restarted_event(stored: Obj, written: Obj) -> LifecycleEvent:
    """A new attempt, saying whether the last one was preempted or ended by disruption or by the
    application."""
    attempt = int(written.get("attempt") or 0)
    if int(written.get("preemptions") or 0) > int(stored.get("preemptions") or 0):
        return LifecycleEvent(
            "Preempted",
            f"Attempt {attempt - 1} {written.get('reason') or 'preempted'}; requeued as attempt {attempt},"
            " to resume from its checkpoint (not counted against maxRestarts)",
            warning=True,
        )
    if int(written.get("disruptions") or 0) > int(stored.get("disruptions") or 0):
        cause = "a disruption (node lost or pod evicted; not counted against maxRestarts)"
    else:
        cause = "an application failure"
    detail = written.get("reason") or ""
    message = f"Attempt {attempt - 1} ended by {cause}; requeued as attempt {attempt}"
    return LifecycleEvent("Restarted", f"{message}: {detail}" if detail else message, warning=True)


def construct_phase_event(stored: Obj, written: Obj) -> LifecycleEvent:
    """The Event of the phase a TrainingJob entered."""
    phase = str(written.get("phase"))
    reason = str(written.get("reason") or "")
    nodes = list((written.get("placement") or {}).get("nodes") or [])
    if phase == "Queued":
        after = REQUEUED_AFTER.get(str(stored.get("phase")))
        return LifecycleEvent(
            "Queued", after + queued_as(written) if after else capitalise(queued_as(written))
        )
    if phase == "Admitted":
        pool = (written.get("placement") or {}).get("pool", "")
        return LifecycleEvent("Admitted", f"Admitted to pool '{pool}' on {name_nodes(nodes)}")
    if phase == "Running":
        attempt = int(written.get("attempt") or 0)
        return LifecycleEvent("Running", f"All {len(nodes)} workers of attempt {attempt} are running")
    if phase == "Succeeded":
        return LifecycleEvent("Succeeded", "The job completed" + count_restarts(written))
    if phase == "Failed":
        return LifecycleEvent("Failed", f"The job {reason}" if reason else "The job failed", warning=True)
    if phase == "Suspended":
        return LifecycleEvent(
            "Suspended", "Suspended: the attempt is deleted and its GPUs freed; resuming requeues the job"
        )
    return LifecycleEvent(phase, f"The job is {phase}")


def queued_as(status: Obj) -> str:
    """Queued, with the position and the reason when the decision gave them."""
    reason, position = status.get("reason"), status.get("queuePosition")
    where = f"queued at position {position}" if position else "queued"
    return f"{where}: {reason}" if reason else f"{where} for admission"


def capitalise(sentence: str) -> str:
    """The first letter upper case, the rest as written (str.capitalize would lower 'H100')."""
    return sentence[:1].upper() + sentence[1:]


def name_nodes(nodes: list[str]) -> str:
    """'2 nodes: a, b', naming at most NODES_NAMED of them."""
    named = ", ".join(nodes[:NODES_NAMED])
    more = f" and {len(nodes) - NODES_NAMED} more" if len(nodes) > NODES_NAMED else ""
    return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: {named}{more}"


def count_restarts(status: Obj) -> str:
    restarts, disruptions = int(status.get("restarts") or 0), int(status.get("disruptions") or 0)
    if not restarts and not disruptions:
        return ""
    return f" after {restarts} restart(s) and {disruptions} disruption(s)"


def construct_endpoint_events(stored: Obj, written: Obj) -> list[LifecycleEvent]:
    """Refused, InsufficientCapacity, Admitted, rollout started and finished, Ready, Unavailable."""
    events = []
    if stalled := newly_true(stored, written, STALLED):
        message = f"The endpoint is refused: {stalled.get('message', '')}"
        events.append(LifecycleEvent("Refused", message, warning=True))
    waiting = newly_true(stored, written, RECONCILING)
    if waiting and waiting.get("reason") == "InsufficientCapacity":
        message = f"Waiting for GPUs: {waiting.get('message', '')}"
        events.append(LifecycleEvent("InsufficientCapacity", message, warning=True))
    if int(written.get("reservedGpus") or 0) > 0 and not int(stored.get("reservedGpus") or 0) > 0:
        gpus, replicas = written["reservedGpus"], written.get("desiredReplicas", 0)
        events.append(LifecycleEvent("Admitted", f"Reserved {gpus} GPUs for {replicas} replica(s)"))
    events += construct_rollout_events(stored, written)
    was_ready, ready = is_ready(stored), is_ready(written)
    condition = find_condition(written.get("conditions") or [], READY) or {}
    if ready and not was_ready:
        events.append(LifecycleEvent("Ready", f"Serving: {condition.get('message', '')}"))
    if was_ready and not ready and not is_true(written, STALLED):
        events.append(
            LifecycleEvent("Unavailable", f"Not serving: {condition.get('message', '')}", warning=True)
        )
    return events


def construct_rollout_events(stored: Obj, written: Obj) -> list[LifecycleEvent]:
    """A new model replacing a served one: its roll starts, then it is served."""
    events = []
    served, rolling = stored.get("servedDigest"), written.get("rollingOutDigest")
    if served and rolling and rolling != stored.get("rollingOutDigest"):
        events.append(
            LifecycleEvent("RolloutStarted", f"Rolling out model {rolling}; {served} serves meanwhile")
        )
    now_served = written.get("servedDigest")
    if served and now_served and now_served != served:
        events.append(LifecycleEvent("RolloutFinished", f"Serving model {now_served} in place of {served}"))
    return events


def newly_true(stored: Obj, written: Obj, type_: str) -> Obj | None:
    """Condition `type_` when this write made it True or changed the reason it is True for."""
    after = find_condition(written.get("conditions") or [], type_)
    if not after or after.get("status") != "True":
        return None
    before = find_condition(stored.get("conditions") or [], type_)
    if before and before.get("status") == "True" and before.get("reason") == after.get("reason"):
        return None
    return after


def is_true(status: Obj, type_: str) -> bool:
    condition = find_condition(status.get("conditions") or [], type_)
    return bool(condition and condition.get("status") == "True")


def is_ready(status: Obj) -> bool:
    return is_true(status, READY)
