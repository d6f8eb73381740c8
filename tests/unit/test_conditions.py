"""Conditions follow the metav1.Condition shape and kstatus's rules."""

from datetime import UTC, datetime

from aifactory_operator.reconcile.conditions import Outcome, construct_conditions, find_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def test_ready_sets_only_ready_true():
    conditions = construct_conditions(Outcome.ready("FactoryReady", "ok"), [], generation=4, now=T0)
    assert conditions == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "FactoryReady",
            "message": "ok",
            "observedGeneration": 4,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]


def test_progress_adds_reconciling_true_and_ready_false():
    conditions = construct_conditions(
        Outcome.progressing("NodesNotReady", "1 of 2"), [], generation=1, now=T0
    )
    assert [(c["type"], c["status"]) for c in conditions] == [("Ready", "False"), ("Reconciling", "True")]


def test_stalled_adds_stalled_true_with_the_reason():
    conditions = construct_conditions(Outcome.stalled("InvalidSpec", "spec.x: bad"), [], generation=1, now=T0)
    stalled = find_condition(conditions, "Stalled")
    assert stalled is not None
    assert (stalled["status"], stalled["reason"], stalled["message"]) == (
        "True",
        "InvalidSpec",
        "spec.x: bad",
    )


def test_transition_time_moves_only_when_the_status_flips():
    first = construct_conditions(Outcome.progressing("A", "a"), [], generation=1, now=T0)
    same = construct_conditions(Outcome.progressing("B", "b"), first, generation=2, now=T1)
    flipped = construct_conditions(Outcome.ready("C", "c"), same, generation=2, now=T1)
    assert find_condition(same, "Ready")["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert find_condition(flipped, "Ready")["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_reconciling_disappears_once_ready():
    progressing = construct_conditions(Outcome.progressing("A", "a"), [], generation=1, now=T0)
    ready = construct_conditions(Outcome.ready("B", "b"), progressing, generation=1, now=T1)
    assert find_condition(ready, "Reconciling") is None


def test_paused_is_not_ready_and_neither_in_progress_nor_stalled():
    conditions = construct_conditions(Outcome.paused("Suspended", "suspended"), [], generation=1, now=T0)
    assert [(c["type"], c["status"], c["reason"]) for c in conditions] == [("Ready", "False", "Suspended")]
