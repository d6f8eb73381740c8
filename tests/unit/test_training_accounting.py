"""What one training tick reports for the operator's metrics: the queue, the tenants' GPUs, and how
long each newly admitted job waited."""

from datetime import UTC, datetime

from aifactory_operator.api.v1alpha1 import TrainingJob
from aifactory_operator.reconcile.training import TenantGpus, TrainingConfig, plan_training
from builders import make_factory, make_node, make_pool, make_tenant

NOW = datetime(2026, 1, 1, 0, 2, 0, tzinfo=UTC)
CREATED = "2026-01-01T00:00:00Z"
H100 = "NVIDIA-H100-80GB-HBM3"
PLACED = {"pool": "h100", "nodes": ["de-1-h100-0", "de-1-h100-1"]}


def factory():
    research = make_tenant("research", gpuQuota=[{"product": H100, "gpus": 32}])
    vision = make_tenant(
        "vision", gpuQuota=[{"product": H100, "gpus": 16}, {"product": "NVIDIA-L40S", "gpus": 4}]
    )
    return make_factory(pools=[make_pool(nodes=4)], tenants=[research, vision])


def make_job(name, status=None, namespace="research", **spec) -> TrainingJob:
    body = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": CREATED,
        },
        "spec": {"image": "registry/t:1", "pool": "h100", "nodes": 2, "gpusPerNode": 8, **spec},
        "status": status or {},
    }
    return TrainingJob.model_validate(body)


def plan(jobs):
    nodes = [make_node(f"de-1-h100-{i}") for i in range(4)]
    return plan_training(factory(), jobs, {}, nodes, [], {}, now=NOW, config=TrainingConfig())


def test_a_job_admitted_for_the_first_time_reports_how_long_it_waited_since_creation():
    assert plan([make_job("llm")]).first_admissions == {"research/llm": 120.0}


def test_a_readmitted_job_is_not_reported_again():
    restarted = make_job("llm", status={"phase": "Queued", "attempt": 1, "admittedTime": CREATED})
    result = plan([restarted])
    assert result.statuses["research/llm"][0]["phase"] == "Admitted"
    assert result.first_admissions == {}


def test_jobs_left_waiting_make_the_queue_length():
    running = make_job("big", status={"phase": "Running", "placement": PLACED}, nodes=2)
    jobs = [running, make_job("fits", nodes=2), make_job("too-big-now", nodes=3), make_job("also", nodes=3)]
    result = plan(jobs)
    assert result.queued == 2
    assert set(result.first_admissions) == {"research/fits"}


def test_tenant_gpus_count_placed_and_newly_admitted_work_against_each_quota():
    running = make_job("big", status={"phase": "Running", "placement": PLACED})
    result = plan([running, make_job("new", namespace="vision", nodes=1)])
    assert result.tenant_gpus == {
        ("research", H100): TenantGpus(quota=32, in_use=16),
        ("vision", H100): TenantGpus(quota=16, in_use=8),
        ("vision", "NVIDIA-L40S"): TenantGpus(quota=4, in_use=0),
    }


def test_an_idle_factory_reports_every_quota_with_nothing_in_use():
    result = plan([])
    assert result.queued == 0
    assert {key: gpus.in_use for key, gpus in result.tenant_gpus.items()} == {
        ("research", H100): 0,
        ("vision", H100): 0,
        ("vision", "NVIDIA-L40S"): 0,
    }


def test_a_tick_admits_at_most_its_limit_and_says_the_queue_can_go_on_at_once():
    jobs = [make_job(f"j{i}", nodes=1) for i in range(4)]
    nodes = [make_node(f"de-1-h100-{i}") for i in range(4)]
    config = TrainingConfig(admissions_per_tick=3)
    result = plan_training(factory(), jobs, {}, nodes, [], {}, now=NOW, config=config)
    assert [result.statuses[f"research/j{i}"][0]["phase"] for i in range(4)] == ["Admitted"] * 3 + ["Queued"]
    assert len(result.create) == 3
    assert result.capped
    assert not plan_training(factory(), jobs, {}, nodes, [], {}, now=NOW, config=TrainingConfig()).capped
