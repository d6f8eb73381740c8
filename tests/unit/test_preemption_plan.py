"""Preemption inside the training loop's plan (pure): the victim's status, Job and Events, the
preemptor's wait while the victim's pods stop, and priority classes."""

from datetime import UTC, datetime

from aifactory_operator.api.v1alpha1 import AIFactory, TrainingJob
from aifactory_operator.reconcile.gang_protocol import ProtocolMemory
from aifactory_operator.reconcile.lifecycle_events import construct_lifecycle_events
from aifactory_operator.reconcile.nodepools import PodOnNode
from aifactory_operator.reconcile.training import BatchJob, TrainingConfig, plan_training
from builders import make_factory_body, make_node, make_pool, make_tenant

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
H100 = "NVIDIA-H100-80GB-HBM3"
NODES = [f"de-1-h100-{i}" for i in range(2)]


def factory(min_runtime: int = 0, **preemption: str) -> AIFactory:
    body = make_factory_body(
        pools=[make_pool(nodes=2)],
        tenants=[
            make_tenant("research", gpuQuota=[{"product": H100, "gpus": 8, "borrowingLimit": 8}],
                        priorityClasses=["urgent"]),
            make_tenant("citizen", gpuQuota=[{"product": H100, "gpus": 8}]),
        ],
    )  # fmt: skip
    body["spec"]["scheduling"] = {
        "preemption": preemption,
        "minRuntimeSeconds": min_runtime,
        "gracePeriodSeconds": 90,
    }
    return AIFactory.model_validate(body)


def job(name: str, namespace: str = "research", status=None, **spec) -> TrainingJob:
    return TrainingJob.model_validate(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{name}",
                "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {"image": "registry/t:1", "pool": "h100", "nodes": 1, "gpusPerNode": 8, **spec},
            "status": status or {},
        }
    )


def running(
    name: str, node: str, namespace: str = "research", admitted: str = "11:00", **spec
) -> tuple[TrainingJob, list, list]:
    status = {
        "phase": "Running",
        "placement": {"pool": "h100", "nodes": [node]},
        "admittedTime": f"2026-01-01T{admitted}:00Z",
    }
    pods = [PodOnNode(namespace, f"{name}-0-0", node, 8, training_job=f"{namespace}/{name}", attempt="0")]
    return job(name, namespace, status, **spec), [BatchJob(f"{name}-0", nodes=(node,), ready=1)], pods


def plan(factory_, jobs, batch, pods, classes=None, memory=None):
    return plan_training(
        factory_,
        jobs,
        batch,
        [make_node(n) for n in NODES],
        pods,
        {},
        now=NOW,
        config=TrainingConfig(),
        priority_classes=classes or {},
        memory=memory,
    )


def test_an_urgent_job_preempts_a_lower_priority_gang_of_its_tenant_which_resumes_later():
    low, low_jobs, low_pods = running("low", NODES[0], priority=1)
    other, other_jobs, other_pods = running("other", NODES[1], namespace="citizen", priority=0)
    urgent = job("urgent", priority=10)
    result = plan(
        factory(withinTenant="LowerPriority"),
        [low, other, urgent],
        {"research/low": low_jobs, "citizen/other": other_jobs},
        low_pods + other_pods,
    )
    status, _ = result.statuses["research/low"]
    assert (status["phase"], status["attempt"], status["preemptions"]) == ("Queued", 1, 1)
    assert status.get("restarts", 0) == 0, "a preemption does not spend maxRestarts"
    assert status["reason"] == "preempted by research/urgent (priority 10 over 1) of the same tenant"
    assert result.delete == [("research", "low-0")]
    assert result.delete_after[("research", "low-0")] == "research/low", "the status is written first"
    assert result.statuses["research/urgent"][0]["reason"].startswith("preempting research/low (8 ")
    assert "citizen/other" not in {v.key for p in result.preemptions for v, _ in p.victims}
    [event] = construct_lifecycle_events("TrainingJob", low.status.to_wire(), status)
    assert event.reason == "Preempted" and "resume from its checkpoint" in event.message


def test_while_the_victims_pods_stop_the_preemptor_waits_and_nothing_more_is_stopped():
    # The tick after: low is Queued on attempt 1, its attempt-0 pod still terminating on node 0.
    low = job("low", status={"phase": "Queued", "attempt": 1, "preemptions": 1}, priority=1)
    _, _, low_pods = running("low", NODES[0], priority=1)
    mid, mid_jobs, mid_pods = running("mid", NODES[1], priority=2)
    result = plan(
        factory(withinTenant="LowerPriority"),
        [low, mid, job("urgent", priority=10)],
        {"research/mid": mid_jobs},
        low_pods + mid_pods,
    )
    assert result.preemptions == [] and result.delete == []
    assert "releasing" in result.statuses["research/urgent"][0]["reason"]


def test_a_stale_view_of_the_victim_neither_hides_its_release_nor_costs_another_gang():
    """Found on the control plane: the tick after a preemption, the watch still showed the victim
    Running, so its quota looked held and a second gang was stopped for the same job."""
    low, low_jobs, low_pods = running("low", NODES[0], priority=1)  # as the lagging view shows it
    mid, mid_jobs, mid_pods = running("mid", NODES[1], priority=2)
    memory = ProtocolMemory(written={"research/low": 1})  # the loop wrote its preemption already
    result = plan(
        factory(withinTenant="LowerPriority"),
        [low, mid, job("urgent", priority=10)],
        {"research/low": low_jobs, "research/mid": mid_jobs},
        low_pods + mid_pods,
        memory=memory,
    )
    assert result.preemptions == []
    assert "releasing" in result.statuses["research/urgent"][0]["reason"]


def test_a_lender_reclaims_what_it_lent_and_the_borrower_cannot_borrow_it_back():
    borrowed, borrowed_jobs, borrowed_pods = running("second", NODES[1], admitted="11:30", priority=5)
    own, own_jobs, own_pods = running("first", NODES[0], priority=5)
    lender = job("mine", namespace="citizen")
    result = plan(
        factory(reclaim="Any"),
        [own, borrowed, lender],
        {"research/first": own_jobs, "research/second": borrowed_jobs},
        own_pods + borrowed_pods,
    )
    [preemption] = result.preemptions
    [(victim, rule)] = preemption.victims
    assert rule == "Reclaim" and victim.key == "research/second", "the younger of research's gangs"
    reason = result.statuses["research/second"][0]["reason"]
    assert reason == (
        f"preempted by citizen/mine (tenant 'citizen') to reclaim 8 {H100} GPUs it lent to tenant 'research'"
    )
    # Next tick, the victim's pods are gone: the lender's queued job keeps its share from being lent.
    second = job("second", status={"phase": "Queued", "attempt": 1, "preemptions": 1}, priority=5)
    after = plan(factory(reclaim="Any"), [own, second, lender], {"research/first": own_jobs}, own_pods)
    assert after.statuses["citizen/mine"][0]["phase"] == "Admitted"
    assert after.statuses["research/second"][0]["phase"] == "Queued"


def test_a_non_preemptible_job_is_never_a_victim_and_never_borrows():
    pinned, pinned_jobs, pinned_pods = running("pinned", NODES[0], priority=0, preemptible=False)
    result = plan(
        factory(withinTenant="LowerPriority"),
        [pinned, job("urgent", priority=10, nodes=2)],
        {"research/pinned": pinned_jobs},
        pinned_pods,
    )
    assert result.preemptions == []
    # research's share is 8 and it may borrow 8, but not for a job that may not be preempted.
    refused = plan(factory(), [job("big", nodes=2, preemptible=False)], {}, [])
    status, _ = refused.statuses["research/big"]
    assert status["phase"] == "Refused" and "may hold 8" in status["reason"]


def test_the_grace_period_is_the_workers_termination_grace_period():
    result = plan(factory(), [job("fresh")], {}, [])
    [creation] = result.create
    assert creation.obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 90


def test_a_priority_class_gives_the_priority_and_must_be_the_tenants_and_exist():
    low, low_jobs, low_pods = running("low", NODES[0], priority=500)
    other, other_jobs, other_pods = running("low2", NODES[1], priority=500)
    urgent = job("urgent", priority=0, priorityClassName="urgent")
    jobs = [low, other, urgent]
    batch = {"research/low": low_jobs, "research/low2": other_jobs}
    result = plan(factory(withinTenant="LowerPriority"), jobs, batch, low_pods + other_pods, {"urgent": 1000})
    assert [p.preemptor.priority for p in result.preemptions] == [1000]
    missing = plan(factory(), [urgent], {}, [], {})
    assert missing.statuses["research/urgent"][0]["reason"] == "there is no PriorityClass 'urgent'"
    foreign = job("x", namespace="citizen", priorityClassName="urgent")
    status = plan(factory(), [foreign], {}, [], {"urgent": 1000}).statuses["citizen/x"][0]
    assert status["phase"] == "Refused" and "not one tenant 'citizen' may use (none)" in status["reason"]


def test_min_runtime_protects_a_young_gang():
    low, low_jobs, low_pods = running("low", NODES[0], priority=1)
    mid, mid_jobs, mid_pods = running("mid", NODES[1], priority=1)
    result = plan(
        factory(min_runtime=7200, withinTenant="LowerPriority"),
        [low, mid, job("urgent", priority=10)],
        {"research/low": low_jobs, "research/mid": mid_jobs},
        low_pods + mid_pods,
    )
    assert result.preemptions == [], "both were admitted an hour ago, less than the two required"
