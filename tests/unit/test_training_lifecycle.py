"""The TrainingJob life cycle as a pure function of what is observed."""

from datetime import UTC, datetime, timedelta

from aifactory_operator.api.v1alpha1 import TrainingJob
from aifactory_operator.reconcile.nodepools import PodOnNode
from aifactory_operator.reconcile.training import BatchJob, TrainingConfig, plan_training
from builders import make_factory, make_node, make_pool, make_tenant

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = TrainingConfig(starvation_seconds=300, backoff_seconds=10)


def factory():
    tenant = make_tenant("research", gpuQuota=[{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 64}])
    return make_factory(pools=[make_pool(nodes=4)], tenants=[tenant])


def nodes():
    return [make_node(f"de-1-h100-{i}") for i in range(4)]


def make_job(name="llm", status=None, **spec) -> TrainingJob:
    body = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": "research",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"image": "registry/t:1", "pool": "h100", "nodes": 2, "gpusPerNode": 8, **spec},
        "status": status or {},
    }
    return TrainingJob.model_validate(body)


def plan(jobs, batch=None, pods=(), **kwargs):
    return plan_training(
        factory(), jobs, batch or {}, nodes(), list(pods), {}, now=kwargs.get("now", NOW), config=CONFIG
    )


def bound(job: str, attempt: int, nodes: list[str]) -> list[PodOnNode]:
    """The running workers of a gang, bound to its nodes as the pods index holds them."""
    return [
        PodOnNode(
            "research", f"{job}-{attempt}-{i}", node, 8, training_job=f"research/{job}", attempt=str(attempt)
        )
        for i, node in enumerate(nodes)
    ]


def test_a_new_job_is_admitted_and_materialised_in_one_decision():
    result = plan([make_job()])
    status, outcome = result.statuses["research/llm"]
    assert status["phase"] == "Admitted" and len(status["placement"]["nodes"]) == 2
    assert [o["kind"] for o in result.apply] == ["Service"]
    # The Job is created, not applied: its name can be taken once, so an attempt is decided once.
    assert [c.obj["kind"] for c in result.create] == ["Job"] and result.create[0].admission
    job = result.create[0].obj
    assert job["metadata"]["name"] == "llm-0"
    assert job["spec"]["backoffLimit"] == 0
    assert outcome.state == "progressing"


def test_a_single_worker_needs_no_service_and_rendezvouses_on_loopback():
    result = plan([make_job(nodes=1)])
    assert result.apply == [] and [c.obj["kind"] for c in result.create] == ["Job"]
    pod = result.create[0].obj["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MASTER_ADDR"] == "127.0.0.1" and "subdomain" not in pod


def test_a_job_that_does_not_fit_waits_with_its_position_and_reason():
    running = make_job(
        "big",
        status={
            "phase": "Running",
            "placement": {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1", "de-1-h100-2"]},
        },
        nodes=3,
    )
    on = ["de-1-h100-0", "de-1-h100-1", "de-1-h100-2"]
    result = plan(
        [running, make_job("next")], {"research/big": [BatchJob("big-0", ready=3)]}, pods=bound("big", 0, on)
    )
    status, _ = result.statuses["research/next"]
    assert (status["phase"], status["queuePosition"]) == ("Queued", 1)
    assert status["reason"].startswith("waiting for 16 NVIDIA-H100-80GB-HBM3 GPUs (2 x 8)")


def test_all_workers_ready_means_running_with_a_residency_record():
    admitted = make_job(
        status={"phase": "Admitted", "placement": {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1"]}}
    )
    result = plan([admitted], {"research/llm": [BatchJob("llm-0", ready=2)]})
    status, outcome = result.statuses["research/llm"]
    assert status["phase"] == "Running" and outcome.state == "ready"
    assert [n["name"] for n in status["residency"]["nodes"]] == ["de-1-h100-0", "de-1-h100-1"]
    assert result.apply == [] and result.create == [], "the Job exists already"


def test_completion_releases_the_placement():
    running = make_job(
        status={"phase": "Running", "placement": {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1"]}}
    )
    status, _ = plan([running], {"research/llm": [BatchJob("llm-0", complete=True)]}).statuses["research/llm"]
    assert status["phase"] == "Succeeded" and status["placement"] is None


def test_an_application_failure_requeues_the_next_attempt_with_backoff():
    running = make_job(
        status={"phase": "Running", "placement": {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1"]}}
    )
    failed = BatchJob(
        "llm-0",
        failed=True,
        message="Container trainer for pod research/llm-0-1 failed with exit code 3 matching FailJob rule at index 1",
    )
    result = plan([running], {"research/llm": [failed]})
    status, _ = result.statuses["research/llm"]
    assert (status["phase"], status["attempt"], status["restarts"]) == ("Queued", 1, 1)
    assert status["retryAfter"] == "2026-01-01T00:00:10Z"
    assert ("research", "llm-0") in result.delete


def test_a_disruption_restarts_without_spending_a_restart():
    running = make_job(
        status={"phase": "Running", "placement": {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1"]}},
        maxRestarts=0,
    )
    failed = BatchJob(
        "llm-0",
        failed=True,
        message="Pod research/llm-0-1 has condition DisruptionTarget matching FailJob rule at index 0",
    )
    status, _ = plan([running], {"research/llm": [failed]}).statuses["research/llm"]
    assert (status["restarts"], status.get("disruptions"), status["attempt"]) == (0, 1, 1)
    assert status["phase"] in ("Queued", "Admitted")


def test_exhausted_restarts_fail_the_job():
    running = make_job(
        status={
            "phase": "Running",
            "restarts": 1,
            "attempt": 1,
            "placement": {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1"]},
        },
        maxRestarts=1,
    )
    failed = BatchJob("llm-1", failed=True, message="exit code 3")
    status, outcome = plan([running], {"research/llm": [failed]}).statuses["research/llm"]
    assert status["phase"] == "Failed" and outcome.state == "stalled"
    assert status["reason"] == "failed after 1 restarts: exit code 3"


def test_backing_off_jobs_are_not_admitted_before_their_time():
    waiting = make_job(
        status={"phase": "Queued", "attempt": 1, "restarts": 1, "retryAfter": "2026-01-01T00:00:10Z"}
    )
    early, _ = plan([waiting]).statuses["research/llm"]
    assert early["phase"] == "Queued"
    later, _ = plan([waiting], now=NOW + timedelta(seconds=11)).statuses["research/llm"]
    assert later["phase"] == "Admitted"


def test_suspend_deletes_the_attempt_and_releases_the_gpus():
    running = make_job(
        status={"phase": "Running", "placement": {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1"]}},
        suspend=True,
    )
    result = plan([running], {"research/llm": [BatchJob("llm-0", ready=2)]})
    status, outcome = result.statuses["research/llm"]
    assert status["phase"] == "Suspended" and status["placement"] is None
    assert result.delete == [("research", "llm-0")]
    # Not Ready, since nothing runs, but not in progress or failed either: it does what it was asked.
    assert (outcome.state, outcome.reason) == ("paused", "Suspended")


def test_jobs_that_can_never_run_here_are_refused_with_the_field():
    status, outcome = plan([make_job(nodes=5)]).statuses["research/llm"]
    assert (status["phase"], outcome.state, outcome.reason) == ("Refused", "stalled", "Refused")
    assert "spec.nodes: 5 exceeds the 4 nodes of pool 'h100'" in outcome.message
    _, unknown = plan([make_job(pool="b200")]).statuses["research/llm"]
    assert "spec.pool: the factory has no pool 'b200'" in unknown.message
    _, data = plan([make_job(datasets=[{"name": "missing", "mountPath": "/data"}])]).statuses["research/llm"]
    assert "spec.datasets[0].name: no Dataset 'missing' in namespace research" in data.message


def test_a_refused_job_is_queued_again_once_the_rules_allow_it():
    refused = make_job(status={"phase": "Refused", "reason": "the factory has no pool 'h100'"}, nodes=1)
    status, _ = plan([refused]).statuses["research/llm"]
    assert status["phase"] == "Admitted"


def test_a_running_job_the_rules_no_longer_allow_keeps_its_phase_and_is_stalled():
    placement = {"pool": "h100", "nodes": ["de-1-h100-0"]}
    running = make_job(status={"phase": "Running", "placement": placement}, nodes=5)
    status, outcome = plan([running]).statuses["research/llm"]
    assert (status["phase"], outcome.state) == ("Running", "stalled")
