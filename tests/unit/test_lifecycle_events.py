"""The Events a TrainingJob's or ModelEndpoint's status change tells: one per transition, never one
per tick, each with a CamelCase reason and a readable sentence."""

from datetime import UTC, datetime
from typing import Any

from aifactory_operator.reconcile.conditions import Outcome, construct_conditions
from aifactory_operator.reconcile.lifecycle_events import (
    LifecycleEvent,
    construct_lifecycle_events,
    story_mark,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WAITING = Outcome.progressing("Queued", "waiting for 16 GPUs")
PLACEMENT = {"pool": "h100", "nodes": ["h100-0", "h100-1"]}


def status(outcome: Outcome | None = None, **fields: Any) -> dict[str, Any]:
    """A status as the operator writes it, with the conditions of `outcome`."""
    if outcome is not None:
        fields["conditions"] = construct_conditions(outcome, [], generation=1, now=NOW)
    return fields


def told(stored: dict[str, Any], written: dict[str, Any], kind: str = "TrainingJob") -> list[tuple[str, str]]:
    """(reason, message) of each Event, the written status being sent whole as the patch."""
    return [(e.reason, e.message) for e in construct_lifecycle_events(kind, stored, written)]


def test_a_job_entering_the_queue_is_told_queued_with_its_position_and_reason():
    written = status(WAITING, phase="Queued", queuePosition=3, reason="waiting for 16 GPUs (2 x 8)")
    assert told({}, written) == [("Queued", "Queued at position 3: waiting for 16 GPUs (2 x 8)")]


def test_a_job_moving_up_the_queue_tells_nothing():
    before = status(WAITING, phase="Queued", queuePosition=3, reason="waiting for 16 GPUs; 8 free")
    after = status(WAITING, phase="Queued", queuePosition=1, reason="waiting for 16 GPUs; 12 free")
    assert told(before, after) == []
    assert story_mark("TrainingJob", before) == story_mark("TrainingJob", after)


def test_an_admission_names_the_pool_and_the_nodes():
    before = status(WAITING, phase="Queued", queuePosition=1)
    after = status(
        Outcome.progressing("Admitted", "the job is Admitted"), phase="Admitted", placement=PLACEMENT
    )
    assert told(before, after) == [("Admitted", "Admitted to pool 'h100' on 2 nodes: h100-0, h100-1")]


def test_a_large_gang_names_a_few_nodes_and_counts_the_rest():
    placement = {"pool": "h100", "nodes": [f"h100-{i}" for i in range(8)]}
    [(_, message)] = told({}, status(phase="Admitted", placement=placement))
    assert message.endswith("on 8 nodes: h100-0, h100-1, h100-2, h100-3, h100-4 and 3 more")


def test_all_workers_up_is_told_running():
    before = status(phase="Admitted", placement=PLACEMENT)
    after = status(Outcome.ready("Running", "all workers are running"), phase="Running", placement=PLACEMENT)
    assert told(before, after) == [("Running", "All 2 workers of attempt 0 are running")]


def test_an_application_failure_is_told_restarted_as_a_warning_not_queued():
    before = status(phase="Running", placement=PLACEMENT)
    after = status(
        WAITING,
        phase="Queued",
        attempt=1,
        restarts=1,
        reason="restart 1 of 3 from the last checkpoint after: exit 3",
    )
    events = construct_lifecycle_events("TrainingJob", before, after)
    assert events == [
        LifecycleEvent(
            "Restarted",
            "Attempt 0 ended by an application failure; requeued as attempt 1:"
            " restart 1 of 3 from the last checkpoint after: exit 3",
            warning=True,
        )
    ]


def test_a_disruption_is_told_restarted_with_its_cause_and_readmission_follows_in_order():
    before = status(phase="Running", placement=PLACEMENT)
    # A disruption has no backoff, so the same tick can readmit the new attempt.
    after = status(phase="Admitted", attempt=1, disruptions=1, placement=PLACEMENT)
    events = told(before, after)
    assert [reason for reason, _ in events] == ["Restarted", "Admitted"]
    assert "a disruption (node lost or pod evicted; not counted against maxRestarts)" in events[0][1]


def test_completion_and_failure_are_told_normal_and_warning():
    running = status(phase="Running", placement=PLACEMENT)
    done = construct_lifecycle_events("TrainingJob", running, status(phase="Succeeded", restarts=1))
    failed = construct_lifecycle_events(
        "TrainingJob", running, status(phase="Failed", reason="failed after 3 restarts: exit 2")
    )
    assert done == [LifecycleEvent("Succeeded", "The job completed after 1 restart(s) and 0 disruption(s)")]
    assert failed == [LifecycleEvent("Failed", "The job failed after 3 restarts: exit 2", warning=True)]


def test_suspending_and_resuming_are_told():
    running = status(phase="Running", placement=PLACEMENT)
    suspended = status(Outcome.paused("Suspended", "suspended"), phase="Suspended")
    resumed = status(WAITING, phase="Queued", queuePosition=1, reason="waiting for 16 GPUs")
    assert [r for r, _ in told(running, suspended)] == ["Suspended"]
    assert told(suspended, resumed) == [("Queued", "Resumed; queued at position 1: waiting for 16 GPUs")]


def test_a_refusal_is_one_warning_with_the_rule_and_its_end_is_told_as_queued():
    refused = status(Outcome.stalled("Refused", "spec.pool: the factory has no pool 'b200'"), phase="Refused")
    events = construct_lifecycle_events("TrainingJob", {}, refused)
    assert events == [
        LifecycleEvent(
            "Refused", "The job is refused: spec.pool: the factory has no pool 'b200'", warning=True
        )
    ]
    assert told(refused, refused) == []
    allowed = status(WAITING, phase="Queued", queuePosition=2, reason="waiting for 16 GPUs")
    assert told(refused, allowed) == [
        ("Queued", "The factory's rules allow the job now; queued at position 2: waiting for 16 GPUs")
    ]


def test_a_running_job_the_rules_no_longer_allow_is_told_refused_though_its_phase_stays():
    running = status(Outcome.ready("Running", "ok"), phase="Running", placement=PLACEMENT)
    refused = status(
        Outcome.stalled("Refused", "spec.pool: above clearance"), phase="Running", placement=PLACEMENT
    )
    assert [r for r, _ in told(running, refused)] == ["Refused"]


def test_a_patch_of_some_fields_is_read_over_the_stored_status():
    stored = status(WAITING, phase="Queued", queuePosition=1, attempt=2)
    assert told(stored, {"queuePosition": 4}) == []


# ModelEndpoint: its life is in conditions and reservedGpus, not a phase.
CAPACITY = Outcome.progressing("InsufficientCapacity", "cannot reserve replicas.min: waiting for 8 GPUs")
STARTING = Outcome.progressing("Starting", "0 of 1 minimum replicas ready")
SERVING = Outcome.ready("Serving", "1 of 1 replicas ready")
OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def test_an_endpoint_waiting_for_gpus_is_told_once_as_a_warning():
    waiting = status(CAPACITY, reservedGpus=0, reason="cannot reserve replicas.min: waiting for 8 GPUs")
    assert construct_lifecycle_events("ModelEndpoint", {}, waiting) == [
        LifecycleEvent(
            "InsufficientCapacity",
            "Waiting for GPUs: cannot reserve replicas.min: waiting for 8 GPUs",
            warning=True,
        )
    ]
    longer = status(
        CAPACITY, reservedGpus=0, reason="cannot reserve replicas.min: waiting for 8 GPUs; 2 free"
    )
    assert told(waiting, longer, "ModelEndpoint") == []


def test_an_endpoint_is_told_admitted_then_ready():
    waiting = status(CAPACITY, reservedGpus=0)
    admitted = status(STARTING, reservedGpus=2, desiredReplicas=1, rollingOutDigest=OLD)
    serving = status(SERVING, reservedGpus=2, desiredReplicas=1, servedDigest=OLD)
    assert told(waiting, admitted, "ModelEndpoint") == [("Admitted", "Reserved 2 GPUs for 1 replica(s)")]
    assert told(admitted, serving, "ModelEndpoint") == [("Ready", "Serving: 1 of 1 replicas ready")]


def test_an_endpoint_losing_its_minimum_is_told_unavailable():
    serving = status(SERVING, reservedGpus=2)
    degraded = status(STARTING, reservedGpus=2)
    assert told(serving, degraded, "ModelEndpoint") == [
        ("Unavailable", "Not serving: 0 of 1 minimum replicas ready")
    ]


def test_a_new_model_is_told_when_its_roll_starts_and_when_it_is_served():
    serving = status(SERVING, reservedGpus=2, servedDigest=OLD)
    rolling = status(SERVING, reservedGpus=2, servedDigest=OLD, rollingOutDigest=NEW)
    rolled = status(SERVING, reservedGpus=2, servedDigest=NEW)
    assert [r for r, _ in told(serving, rolling, "ModelEndpoint")] == ["RolloutStarted"]
    assert told(rolling, rolled, "ModelEndpoint") == [
        ("RolloutFinished", f"Serving model {NEW} in place of {OLD}")
    ]


def test_a_refused_endpoint_is_told_refused_only():
    refused = status(Outcome.stalled("Refused", "spec.model: no Dataset 'llama'"))
    assert told({}, refused, "ModelEndpoint") == [
        ("Refused", "The endpoint is refused: spec.model: no Dataset 'llama'")
    ]


def test_a_job_in_a_namespace_of_no_tenant_is_told_refused():
    stalled = Outcome.stalled("NotATenantNamespace", "metadata.namespace: 'x' belongs to no AIFactory tenant")
    [event] = construct_lifecycle_events("TrainingJob", {}, status(stalled, phase="Refused"))
    assert (event.reason, event.warning) == ("Refused", True)
    assert event.message == "The job is refused: metadata.namespace: 'x' belongs to no AIFactory tenant"


def test_a_failed_run_is_told_failed_not_refused():
    running = status(Outcome.ready("Running", "ok"), phase="Running", placement=PLACEMENT)
    failed = status(Outcome.stalled("Failed", "failed after 3 restarts"), phase="Failed", reason="failed")
    assert [r for r, _ in told(running, failed)] == ["Failed"]
