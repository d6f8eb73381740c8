"""Our Argo CD health checks read the status the operator writes: every branch, on objects whose
conditions come from the operator's own construct_conditions."""

from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from gitops import HEALTH_CHECKS, argocd_health

from aifactory_operator.api.v1alpha1 import KINDS
from aifactory_operator.api.v1alpha1.trainingjob import TrainingJobStatus
from aifactory_operator.constants import API_VERSION
from aifactory_operator.reconcile.conditions import Outcome, construct_conditions

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GENERIC_KINDS = ("AIFactory", "Dataset", "ModelEndpoint")


def make_object(
    kind: str,
    outcome: Outcome | None = None,
    *,
    generation: int = 3,
    observed: int | None = 3,
    spec: dict[str, Any] | None = None,
    **status: Any,
) -> dict[str, Any]:
    """An object as the operator leaves it after reconciling `outcome` at generation `observed`."""
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "team-a", "generation": generation},
        "spec": spec or {},
    }
    if observed is not None:
        status["observedGeneration"] = observed
    if outcome is not None:
        status["conditions"] = construct_conditions(outcome, [], generation=observed or 0, now=NOW)
    if status:
        body["status"] = status
    return body


def test_every_kind_has_a_health_check():
    assert sorted(p.name for p in HEALTH_CHECKS.glob("*.lua")) == sorted(
        f"aifactory.dev_{k.info.kind}.lua" for k in KINDS
    )


@pytest.mark.parametrize("kind", GENERIC_KINDS)
@pytest.mark.parametrize(
    ("obj_args", "expected"),
    [
        pytest.param(
            {"outcome": None, "observed": None},
            ("Progressing", "waiting for the operator to observe generation 3"),
            id="new-object-without-status",
        ),
        pytest.param(
            {"outcome": Outcome.ready("Ok", "all good"), "generation": 4},
            ("Progressing", "waiting for the operator to observe generation 4"),
            id="spec-changed-since-last-reconcile",
        ),
        pytest.param(
            {"outcome": None},
            ("Progressing", "waiting for the operator to report Ready"),
            id="observed-but-no-ready-yet",
        ),
        pytest.param(
            {"outcome": Outcome.stalled("Refused", "spec.pool: the factory has no pool 'x'")},
            ("Degraded", "spec.pool: the factory has no pool 'x'"),
            id="stalled",
        ),
        pytest.param(
            {"outcome": Outcome.ready("Ok", "2 pools ready")}, ("Healthy", "2 pools ready"), id="ready"
        ),
        pytest.param(
            {"outcome": Outcome.progressing("NodesNotReady", "pool 'h100': 1 of 2 nodes ready")},
            ("Progressing", "pool 'h100': 1 of 2 nodes ready"),
            id="reconciling",
        ),
    ],
)
def test_generic_health_follows_the_conditions(kind, obj_args, expected):
    health = argocd_health(kind, make_object(kind, **obj_args))
    assert (health["status"], health["message"]) == expected


@pytest.mark.parametrize("kind", GENERIC_KINDS)
def test_ready_false_without_reconciling_is_progressing_with_its_message(kind):
    obj = make_object(kind, conditions=[{"type": "Ready", "status": "False", "message": "claim is Pending"}])
    assert argocd_health(kind, obj) == {"status": "Progressing", "message": "claim is Pending"}


# One row per TrainingJob state, with the status the operator writes for it (reconcile/training.py).
TRAINING_CASES = [
    pytest.param(
        make_object(
            "TrainingJob",
            Outcome.progressing("Queued", "waiting for 16 GPUs"),
            phase="Queued",
            queuePosition=2,
            reason="waiting for 16 GPUs",
        ),
        ("Progressing", "queued at position 2: waiting for 16 GPUs"),
        id="Queued-with-position",
    ),
    pytest.param(
        make_object(
            "TrainingJob",
            Outcome.progressing("Queued", "restart 1 of 3 from the last checkpoint"),
            phase="Queued",
            reason="restart 1 of 3 from the last checkpoint",
        ),
        ("Progressing", "queued: restart 1 of 3 from the last checkpoint"),
        id="Queued-backing-off-without-position",
    ),
    pytest.param(
        make_object("TrainingJob", Outcome.progressing("Admitted", "the job is Admitted"), phase="Admitted"),
        ("Progressing", "the job is Admitted"),
        id="Admitted",
    ),
    pytest.param(
        make_object("TrainingJob", Outcome.ready("Running", "all workers are running"), phase="Running"),
        ("Healthy", "all workers are running"),
        id="Running",
    ),
    pytest.param(
        make_object("TrainingJob", Outcome.ready("Succeeded", "the job completed"), phase="Succeeded"),
        ("Healthy", "the job completed"),
        id="Succeeded",
    ),
    pytest.param(
        make_object(
            "TrainingJob",
            Outcome.stalled("Failed", "failed after 3 restarts: exit code 2"),
            phase="Failed",
            reason="failed after 3 restarts: exit code 2",
        ),
        ("Degraded", "failed after 3 restarts: exit code 2"),
        id="Failed",
    ),
    pytest.param(
        make_object(
            "TrainingJob",
            Outcome.paused("Suspended", "suspended; resuming requeues the job"),
            phase="Suspended",
            reason="suspended; resuming requeues the job",
        ),
        ("Suspended", "suspended; resuming requeues the job"),
        id="Suspended",
    ),
    pytest.param(
        make_object(
            "TrainingJob",
            Outcome.stalled("Refused", "spec.gpusPerNode: 8 exceeds the 4 GPUs of a 'l40s' node"),
            phase="Refused",
            reason="8 exceeds the 4 GPUs of a 'l40s' node",
        ),
        ("Degraded", "spec.gpusPerNode: 8 exceeds the 4 GPUs of a 'l40s' node"),
        id="Refused",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), TRAINING_CASES)
def test_training_health_follows_the_phase(obj, expected):
    health = argocd_health("TrainingJob", obj)
    assert (health["status"], health["message"]) == expected


def test_every_training_phase_has_a_case():
    phases = {case.values[0]["status"]["phase"] for case in TRAINING_CASES}
    assert phases == set(get_args(get_args(TrainingJobStatus.model_fields["phase"].annotation)[0]))


def test_a_running_job_the_rules_no_longer_allow_is_degraded_although_its_phase_is_running():
    obj = make_object(
        "TrainingJob",
        Outcome.stalled("Refused", "spec.pool: clearance 'secret' is above the tenant's 'internal'"),
        phase="Running",
    )
    assert argocd_health("TrainingJob", obj) == {
        "status": "Degraded",
        "message": "spec.pool: clearance 'secret' is above the tenant's 'internal'",
    }


def test_a_refused_phase_without_stalled_is_still_degraded():
    obj = make_object("TrainingJob", phase="Refused", reason="the factory has no pool 'b200'")
    assert argocd_health("TrainingJob", obj) == {
        "status": "Degraded",
        "message": "the factory has no pool 'b200'",
    }


def test_an_endpoint_waiting_for_gpus_is_progressing_with_the_reason():
    waiting = Outcome.progressing("InsufficientCapacity", "cannot reserve replicas.min: waiting for 8 GPUs")
    obj = make_object("ModelEndpoint", waiting, reservedGpus=0)
    assert argocd_health("ModelEndpoint", obj) == {
        "status": "Progressing",
        "message": "cannot reserve replicas.min: waiting for 8 GPUs",
    }


def test_a_job_asked_to_suspend_is_suspended_once_the_operator_saw_the_request():
    queued = Outcome.progressing("Queued", "waiting for 16 GPUs")
    obj = make_object("TrainingJob", queued, spec={"suspend": True}, phase="Queued")
    assert argocd_health("TrainingJob", obj)["status"] == "Suspended"


def test_a_job_asked_to_suspend_waits_for_the_operator_first():
    running = Outcome.ready("Running", "all workers are running")
    obj = make_object("TrainingJob", running, generation=4, spec={"suspend": True}, phase="Running")
    assert argocd_health("TrainingJob", obj) == {
        "status": "Progressing",
        "message": "waiting for the operator to observe generation 4",
    }


def test_a_finished_job_stays_healthy_when_suspended_afterwards():
    done = Outcome.ready("Succeeded", "the job completed")
    obj = make_object("TrainingJob", done, spec={"suspend": True}, phase="Succeeded")
    assert argocd_health("TrainingJob", obj)["status"] == "Healthy"


def test_a_failed_phase_without_stalled_is_still_degraded():
    obj = make_object("TrainingJob", phase="Failed", reason="failed after 0 restarts: exit code 1")
    assert argocd_health("TrainingJob", obj) == {
        "status": "Degraded",
        "message": "failed after 0 restarts: exit code 1",
    }


def test_a_job_the_operator_has_not_placed_yet_is_progressing():
    obj = make_object("TrainingJob")
    assert argocd_health("TrainingJob", obj) == {
        "status": "Progressing",
        "message": "waiting for the operator to report Ready",
    }


def test_a_job_without_status_is_progressing():
    obj = make_object("TrainingJob", observed=None, generation=1)
    assert argocd_health("TrainingJob", obj) == {
        "status": "Progressing",
        "message": "waiting for the operator to observe generation 1",
    }
