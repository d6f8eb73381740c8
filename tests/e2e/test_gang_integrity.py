"""Gang integrity under a burst (issue 20): every gang of a burst that asks for two and a half times
the factory's GPUs runs and finishes, and at no moment is a gang stuck Admitted, a node promised to
more pods than it holds, or a Job pinned to other nodes than its TrainingJob's status names."""

import math
import random
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from factories import make_factory, make_tenant

from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.kube.client import Kube
from conftest import REPO, unique, wait_for

sys.path.insert(0, str(REPO / "bench"))

from gang_audit import GangAudit, read_gang_audit
from workload import Gang, construct_trainingjob

PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPUS_PER_NODE = 8
# Demand over capacity: gangs queue, and later ones are admitted onto nodes earlier ones leave.
DEMAND_OVER_CAPACITY = 2.5
# A worker may find its node still held for a moment by one that just finished (kube-scheduler's
# view lags); it is stuck only if unschedulable for longer.
STUCK_AFTER = timedelta(seconds=15)
RUN_SECONDS = 150


def make_burst(jobs: int, seed: int) -> list[Gang]:
    """Gangs of 1 to 4 nodes with 2, 4 or 8 GPUs each, running 2 to 5 simulated seconds."""
    rng = random.Random(seed)
    return [
        Gang(f"gang-{i}", rng.randint(1, 4), rng.choice([2, 4, 8]), rng.randint(2, 5)) for i in range(jobs)
    ]


def nodes_for(gangs: list[Gang]) -> int:
    """Nodes whose GPUs are DEMAND_OVER_CAPACITY times fewer than the burst asks for (at least the
    largest gang's)."""
    demand = sum(g.nodes * g.gpus_per_node for g in gangs)
    return max(4, math.ceil(demand / (GPUS_PER_NODE * DEMAND_OVER_CAPACITY)))


@pytest.fixture
def gang_factory(kube: Kube, kubectl, operator, request):
    """A factory of one H100 pool sized for the burst, one tenant whose quota is the whole pool."""
    nodes = request.param
    name, namespace = unique("gangs"), unique("tg")
    pool = {
        "name": "h100",
        "gpuProduct": PRODUCT,
        "gpusPerNode": GPUS_PER_NODE,
        "nodes": nodes,
        "region": "de-fra",
    }
    tenant = make_tenant("g", namespace, gpuQuota=[{"product": PRODUCT, "gpus": nodes * GPUS_PER_NODE}])
    kube.apply(make_factory(name, pools=[pool], tenants=[tenant]))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    yield name, namespace
    for obj in kube.list(API_VERSION, "TrainingJob", namespace=namespace):
        kube.delete(API_VERSION, "TrainingJob", obj["metadata"]["name"], namespace)
    wait_for(lambda: not kube.list("v1", "Pod", namespace=namespace), "the pods to go")
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    kube.delete("v1", "Namespace", namespace)


# (jobs, seed): the factory gets the nodes that make the burst 2.5 times its GPUs.
BURSTS = [(24, 1), (60, 2)]


@pytest.mark.parametrize(
    ("jobs", "seed", "gang_factory"),
    [(jobs, seed, nodes_for(make_burst(jobs, seed))) for jobs, seed in BURSTS],
    ids=[f"{jobs}-jobs-seed-{seed}" for jobs, seed in BURSTS],
    indirect=["gang_factory"],
)
def test_a_burst_beyond_capacity_runs_every_gang_without_double_booking(kube, gang_factory, jobs, seed):
    factory, namespace = gang_factory
    for gang in make_burst(jobs, seed):
        kube.apply(construct_trainingjob(gang, namespace, "h100"))
    audits, queued = 0, False
    deadline = time.monotonic() + RUN_SECONDS
    while not all_succeeded(statuses := phases(kube, namespace), jobs):
        assert time.monotonic() < deadline, f"not every gang finished in {RUN_SECONDS}s: {count(statuses)}"
        audit = audit_now(kube, namespace, factory)
        assert audit.is_clean(), f"after {audits} clean audits, {count(statuses)}: {audit.summary()}"
        audits += 1
        queued = queued or "Queued" in statuses.values()
        time.sleep(1)
    assert queued, "the burst asks for more GPUs than the factory has, so some gang must have queued"
    assert audits >= 3, f"audited only {audits} times during the run"
    never_ran = [
        obj["metadata"]["name"]
        for obj in kube.list(API_VERSION, "TrainingJob", namespace=namespace)
        if not obj["status"].get("startTime")
    ]
    assert never_ran == [], f"gangs that never had every worker Running: {never_ran}"


def audit_now(kube: Kube, namespace: str, factory: str) -> GangAudit:
    return read_gang_audit(
        kube,
        [namespace],
        node_selector=f"{LABEL_FACTORY}={factory}",
        now=datetime.now(UTC),
        grace=STUCK_AFTER,
    )


def phases(kube: Kube, namespace: str) -> dict[str, str]:
    return {
        obj["metadata"]["name"]: (obj.get("status") or {}).get("phase", "")
        for obj in kube.list(API_VERSION, "TrainingJob", namespace=namespace)
    }


def all_succeeded(statuses: dict[str, str], jobs: int) -> bool:
    return len(statuses) == jobs and all(p == "Succeeded" for p in statuses.values())


def count(statuses: dict[str, str]) -> str:
    """`Queued=3 Running=5 Succeeded=16`, for a failure message."""
    tally: dict[str, int] = {}
    for phase in statuses.values():
        tally[phase or "none"] = tally.get(phase or "none", 0) + 1
    return " ".join(f"{phase}={n}" for phase, n in sorted(tally.items()))
