"""bench/gang_audit.py finds gangs stuck Admitted, nodes promised twice and Jobs pinned elsewhere
than their status says, from objects as the API server lists them (issue 20)."""

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aifactory_operator.api.v1alpha1 import TrainingJob
from aifactory_operator.reconcile.training_objects import construct_job
from builders import make_factory, make_pool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from gang_audit import audit_gangs

NS = "research"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POOL = make_factory(pools=[make_pool(nodes=4)]).spec.node_pools[0]


def make_trainingjob(
    name: str, *, phase: str = "Running", nodes: list[str] | None = None, gpus: int = 8, attempt: int = 0
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "attempt": attempt,
        "admittedTime": stamp(NOW - timedelta(minutes=1)),
    }
    if nodes:
        status["placement"] = {"pool": "h100", "nodes": nodes}
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {
            "image": "registry.factory.internal/t:1",
            "nodes": len(nodes or [""]),
            "gpusPerNode": gpus,
            "pool": "h100",
        },
        "status": status,
    }


def make_job(trainingjob: dict[str, Any], nodes: list[str], *, condition: str = "") -> dict[str, Any]:
    """The operator's own Job for the TrainingJob's current attempt, pinned to `nodes`."""
    model = TrainingJob.model_validate(trainingjob)
    job = construct_job(model, POOL, "de-1", nodes, model.status.attempt if model.status else 0)
    if condition:
        job["status"] = {"conditions": [{"type": condition, "status": "True"}]}
    return job


def make_pod(
    job: dict[str, Any], node: str = "", *, phase: str = "Running", unschedulable: bool = False
) -> dict:
    """One worker of `job`, bound to `node` unless empty."""
    template = job["spec"]["template"]
    conditions = []
    if unschedulable:
        reason = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        conditions.append({**reason, "lastTransitionTime": stamp(NOW - timedelta(minutes=1))})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{job['metadata']['name']}-{node}", "namespace": NS, **template["metadata"]},
        "spec": {**template["spec"], **({"nodeName": node} if node else {})},
        "status": {"phase": phase, "conditions": conditions},
    }


def make_node(name: str, *, gpus: int = 8, cpu: str = "64", memory: str = "512Gi") -> dict[str, Any]:
    resources = {"cpu": cpu, "memory": memory, "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"allocatable": resources},
    }


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


NODES = [make_node(f"h100-{i}") for i in range(4)]


def test_gangs_running_on_the_nodes_their_status_names_are_clean():
    a = make_trainingjob("a", nodes=["h100-0", "h100-1"])
    b = make_trainingjob("b", nodes=["h100-2"], gpus=4)
    jobs = [make_job(a, ["h100-0", "h100-1"]), make_job(b, ["h100-2"])]
    pods = [make_pod(jobs[0], "h100-0"), make_pod(jobs[0], "h100-1"), make_pod(jobs[1], "h100-2")]
    audit = audit_gangs([a, b], jobs, pods, NODES)
    assert audit.is_clean() and audit.counts() == {
        "stuck_gangs": 0,
        "double_booked_nodes": 0,
        "placement_mismatches": 0,
    }


def test_two_gangs_pinned_to_one_eight_gpu_node_with_eight_each_double_book_it():
    a = make_trainingjob("a", nodes=["h100-1"])
    b = make_trainingjob("b", phase="Admitted", nodes=["h100-1"])
    jobs = [make_job(a, ["h100-1"]), make_job(b, ["h100-1"])]
    audit = audit_gangs([a, b], jobs, [make_pod(jobs[0], "h100-1")], NODES)
    assert audit.double_booked_nodes == 1
    assert audit.double_booked[0].startswith("h100-1: ")
    assert "nvidia.com/gpu 16/8" in audit.double_booked[0]


def test_two_admitted_gangs_whose_workers_are_not_bound_yet_already_double_book_their_node():
    a = make_trainingjob("a", phase="Admitted", nodes=["h100-1"])
    b = make_trainingjob("b", phase="Admitted", nodes=["h100-1"])
    jobs = [make_job(a, ["h100-1"]), make_job(b, ["h100-1"])]
    assert audit_gangs([a, b], jobs, [], NODES).double_booked_nodes == 1


def test_gangs_within_the_gpus_but_over_the_cpus_of_a_node_double_book_it():
    a = make_trainingjob("a", nodes=["h100-0"], gpus=4)
    b = make_trainingjob("b", nodes=["h100-0"], gpus=4)
    jobs = [make_job(a, ["h100-0"]), make_job(b, ["h100-0"])]
    pods = [make_pod(job, "h100-0") for job in jobs]
    small = [make_node("h100-0", cpu="40")]  # each worker asks 0.9 x 4/8 of 64 CPUs: 28
    audit = audit_gangs([a, b], jobs, pods, small)
    assert audit.double_booked == ("h100-0: cpu 56/40",)


def test_a_job_pinned_to_other_nodes_than_its_status_names_is_a_placement_mismatch():
    a = make_trainingjob("a", phase="Admitted", nodes=["h100-0"])
    jobs = [make_job(a, ["h100-1"])]
    assert audit_gangs([a], jobs, [], NODES).mismatched == ("research/a",)


def test_only_the_current_attempts_job_is_compared_with_the_status():
    a = make_trainingjob("a", nodes=["h100-2"], attempt=1)
    old = make_job(make_trainingjob("a", nodes=["h100-0"]), ["h100-0"], condition="Failed")
    jobs = [old, make_job(a, ["h100-2"])]
    assert audit_gangs([a], jobs, [make_pod(jobs[1], "h100-2")], NODES).is_clean()


def test_an_admitted_gang_with_an_unschedulable_worker_is_stuck():
    a = make_trainingjob("a", nodes=["h100-0"])
    b = make_trainingjob("b", phase="Admitted", nodes=["h100-0"])
    jobs = [make_job(a, ["h100-0"]), make_job(b, ["h100-0"])]
    pods = [make_pod(jobs[0], "h100-0"), make_pod(jobs[1], phase="Pending", unschedulable=True)]
    assert audit_gangs([a, b], jobs, pods, NODES).stuck == ("research/b",)


def test_an_admitted_gang_whose_status_names_nodes_and_has_no_job_is_stuck():
    a = make_trainingjob("a", phase="Admitted", nodes=["h100-0"])
    assert audit_gangs([a], [], [], NODES).stuck == ("research/a",)


def test_a_stuck_gang_younger_than_the_grace_is_not_counted_yet():
    a = make_trainingjob("a", phase="Admitted", nodes=["h100-0"])
    assert audit_gangs([a], [], [], NODES, now=NOW, grace=timedelta(minutes=2)).is_clean()
    assert audit_gangs([a], [], [], NODES, now=NOW, grace=timedelta(seconds=30)).stuck_gangs == 1


def test_an_admitted_gang_whose_workers_wait_for_the_scheduler_and_a_queued_gang_are_not_stuck():
    a = make_trainingjob("a", phase="Admitted", nodes=["h100-0"])
    queued = make_trainingjob("q", phase="Queued")
    jobs = [make_job(a, ["h100-0"])]
    assert audit_gangs([a, queued], jobs, [make_pod(jobs[0], phase="Pending")], NODES).is_clean()


def test_finished_pods_and_jobs_hold_nothing():
    done = make_trainingjob("done", phase="Succeeded")
    failing = make_trainingjob("failing", nodes=["h100-1"])
    a = make_trainingjob("a", nodes=["h100-0", "h100-1"])
    jobs = [
        make_job(done, ["h100-0"], condition="Complete"),
        make_job(failing, ["h100-1"], condition="FailureTarget"),
        make_job(a, ["h100-0", "h100-1"]),
    ]
    pods = [
        make_pod(jobs[0], "h100-0", phase="Succeeded"),
        make_pod(jobs[2], "h100-0"),
        make_pod(jobs[2], "h100-1"),
    ]
    assert audit_gangs([done, failing, a], jobs, pods, NODES).is_clean()


def test_a_worker_that_finished_on_its_node_no_longer_reserves_it():
    a = make_trainingjob("a", nodes=["h100-0", "h100-1"])
    b = make_trainingjob("b", nodes=["h100-0"])
    jobs = [make_job(a, ["h100-0", "h100-1"]), make_job(b, ["h100-0"])]
    pods = [
        make_pod(jobs[0], "h100-0", phase="Succeeded"),
        make_pod(jobs[0], "h100-1"),
        make_pod(jobs[1], "h100-0"),
    ]
    assert audit_gangs([a, b], jobs, pods, NODES).is_clean()


def test_the_summary_names_what_is_wrong_and_at_most_ten_of_each():
    gangs = [make_trainingjob(f"g{i:02}", phase="Admitted", nodes=["h100-0"]) for i in range(12)]
    audit = audit_gangs(gangs, [], [], NODES)
    assert audit.stuck_gangs == 12 and len(audit.names()["stuck_gangs"]) == 10
    assert audit.summary().startswith(
        "stuck_gangs=12 double_booked_nodes=0 placement_mismatches=0; stuck_gangs: research/g00"
    )
