"""The invariant monitor's repairs, told as stories on the simulated cluster (gang_world.py)
driven by the real tick: what breaks, what the operator counts and tells, and that the gang then
runs without spending a restart. The pure checks are tested on their own first."""

from datetime import UTC, datetime, timedelta

import pytest
from gang_world import World, observed_from
from prometheus_client import REGISTRY

from aifactory_operator.handlers import training
from aifactory_operator.handlers.training import LoopMemory, tick_once
from aifactory_operator.reconcile.gang_invariants import (
    OVERCOMMITTED,
    UNSCHEDULABLE,
    check_overcommit,
    check_unschedulable,
)
from aifactory_operator.reconcile.gang_views import UnschedulablePod
from aifactory_operator.reconcile.ledger import GangHold, construct_ledger
from aifactory_operator.reconcile.nodepools import PodOnNode
from aifactory_operator.reconcile.training import TrainingConfig
from builders import make_factory, make_node, make_pool, make_tenant

GRACE = 15
CONFIG = TrainingConfig(starvation_seconds=60, backoff_seconds=5, unschedulable_grace_seconds=GRACE)
GPU = "nvidia.com/gpu"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def loop_config(monkeypatch):
    monkeypatch.setattr(training, "CONFIG", CONFIG)


def hold(key: str, node: str, admitted: str, gpus: int = 8) -> GangHold:
    return GangHold(key, 0, (node,), ((GPU, gpus * 1000),), admitted)


# -- the pure checks ---------------------------------------------------------------------------


def test_an_overcommitted_node_withdraws_the_latest_admitted_unstarted_gangs_until_it_fits():
    holds = [
        hold("ns/early", "n0", "2026-01-01T00:00:00Z", 4),
        hold("ns/late", "n0", "2026-01-01T00:01:00Z", 4),
    ]
    foreign = PodOnNode("other", "p", "n0", 4, requests=((GPU, 4000),))
    ledger = construct_ledger({"n0": {GPU: 8000}}, [foreign], holds)
    breaches = check_overcommit(ledger, holds, [foreign], {"ns/early", "ns/late"})
    assert [(b.invariant, b.key, b.withdraw) for b in breaches] == [(OVERCOMMITTED, "ns/late", True)]
    assert ledger.overcommitted() == {}


def test_a_gang_that_started_on_the_node_or_is_not_admitted_is_not_withdrawn():
    holds = [
        hold("ns/started", "n0", "2026-01-01T00:01:00Z"),
        hold("ns/queued", "n0", "2026-01-01T00:02:00Z"),
    ]
    worker = PodOnNode(
        "ns", "started-0", "n0", 8, training_job="ns/started", attempt="0", requests=((GPU, 8000),)
    )
    foreign = PodOnNode("other", "p", "n0", 8, requests=((GPU, 8000),))
    ledger = construct_ledger({"n0": {GPU: 8000}}, [worker, foreign], holds)
    assert check_overcommit(ledger, holds, [worker, foreign], {"ns/started"}) == []


def test_a_node_that_fits_has_no_breach():
    holds = [hold("ns/a", "n0", "t", 4)]
    ledger = construct_ledger({"n0": {GPU: 8000}}, [], holds)
    assert check_overcommit(ledger, holds, [], {"ns/a"}) == []


@pytest.mark.parametrize(("waited", "breached"), [(GRACE - 1, False), (GRACE, True), (10 * GRACE, True)])
def test_a_worker_is_unschedulable_too_long_only_from_the_grace_on(waited, breached):
    since = (NOW - timedelta(seconds=waited)).isoformat()
    pods = {"ns/a": [UnschedulablePod("a-0-0", "0", since, "Insufficient nvidia.com/gpu")]}
    breaches = check_unschedulable({"ns/a": 0}, pods, NOW, GRACE)
    assert [(b.invariant, b.key) for b in breaches] == ([(UNSCHEDULABLE, "ns/a")] if breached else [])


def test_an_unschedulable_pod_of_another_attempt_is_not_this_attempts_breach():
    since = (NOW - timedelta(seconds=10 * GRACE)).isoformat()
    pods = {"ns/a": [UnschedulablePod("a-0-0", "0", since, "Insufficient nvidia.com/gpu")]}
    assert check_unschedulable({"ns/a": 1}, pods, NOW, GRACE) == []


# -- the stories on the simulated cluster ------------------------------------------------------


class Story:
    """One factory, its nodes, and the operator's loop ticking over fresh views."""

    def __init__(self, nodes: int) -> None:
        quota = [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 8 * nodes}]
        self.factory = make_factory(
            pools=[make_pool(nodes=nodes)], tenants=[make_tenant("research", gpuQuota=quota)]
        )
        self.world = World([make_node(f"de-1-h100-{i}") for i in range(nodes)])
        self.memory = LoopMemory()
        self.world.snapshot()

    def tick(self) -> None:
        self.world.snapshot()
        tick_once(self.world, self.factory, self.memory, observed_from(self.world), self.world.now)  # type: ignore[arg-type]
        self.world.snapshot()

    def advance(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            self.world.advance()

    def status(self, name: str) -> dict:
        return self.world.trainingjobs[name].get("status") or {}

    def run_until_finished(self, name: str, rounds: int = 30) -> dict:
        for _ in range(rounds):
            if self.status(name).get("phase") in ("Succeeded", "Failed"):
                break
            self.tick()
            self.advance()
        return self.status(name)


def violations(invariant: str) -> float:
    return (
        REGISTRY.get_sample_value("aifactory_admission_invariant_violations_total", {"invariant": invariant})
        or 0.0
    )


def test_a_pod_that_takes_an_admitted_gangs_gpus_first_gets_the_gang_withdrawn_and_rerun_for_free():
    story = Story(nodes=1)
    story.world.submit("job-0", nodes=1, gpus=8, duration=2)
    story.tick()
    assert story.status("job-0")["phase"] == "Admitted" and "job-0-0" in story.world.jobs
    before = violations(OVERCOMMITTED)
    story.world.pods["intruder"] = {  # bound by hand before the gang's worker is even created
        "metadata": {
            "name": "intruder",
            "namespace": "other",
            "labels": {"job-name": "", "aifactory.dev/trainingjob": ""},
        },
        "spec": {"nodeName": "de-1-h100-0", "containers": [{"resources": {"requests": {GPU: "8"}}}]},
        "status": {"phase": "Running", "started": story.world.step},
    }
    story.world.durations[""] = 2
    story.tick()

    status = story.status("job-0")
    assert (status["phase"], status["attempt"], status["withdrawals"], status.get("restarts", 0)) == (
        "Queued",
        1,
        1,
        0,
    )
    assert "job-0-0" not in story.world.jobs
    assert violations(OVERCOMMITTED) == before + 1
    [(name, _reason, message, warning)] = [e for e in story.world.events if e[1] == "AdmissionRepaired"]
    assert (name, warning) == ("job-0", True)
    assert message.startswith("node-overcommitted: node de-1-h100-0 was over-committed (nvidia.com/gpu)")

    finished = story.run_until_finished("job-0")
    assert (finished["phase"], finished["attempt"], finished.get("restarts", 0)) == ("Succeeded", 1, 0)
    assert story.world.double_booked() == []


def test_a_gang_unschedulable_past_the_grace_is_withdrawn_and_kept_off_that_node_for_a_while():
    story = Story(nodes=2)
    story.world.refusing.add("de-1-h100-0")  # its kubelet refuses pods; no view says why
    story.world.submit("job-0", nodes=1, gpus=8, duration=2)
    story.tick()
    assert story.status("job-0")["placement"]["nodes"] == ["de-1-h100-0"]  # best fit, by name
    before = violations(UNSCHEDULABLE)
    story.advance(GRACE // 5 + 1)  # the worker waits unschedulable past the grace
    story.tick()

    status = story.status("job-0")  # withdrawn and, in the same tick, admitted again elsewhere
    assert (status["phase"], status["attempt"], status["withdrawals"]) == ("Admitted", 1, 1)
    assert status["placement"]["nodes"] == ["de-1-h100-1"], "not straight back onto the refusing node"
    assert violations(UNSCHEDULABLE) == before + 1
    assert set(story.memory.protocol.quarantined) == {"de-1-h100-0"}

    finished = story.run_until_finished("job-0")
    assert (finished["phase"], finished["attempt"], finished.get("restarts", 0)) == ("Succeeded", 1, 0)


def test_a_quarantine_ends_after_the_grace_so_a_healed_node_is_offered_again():
    story = Story(nodes=1)
    story.world.refusing.add("de-1-h100-0")
    story.world.submit("job-0", nodes=1, gpus=8, duration=1)
    story.tick()
    story.advance(GRACE // 5 + 1)
    story.tick()
    assert story.status("job-0")["phase"] == "Queued"
    story.world.refusing.clear()  # the node heals
    finished = story.run_until_finished("job-0")
    assert (finished["phase"], finished["attempt"], finished["withdrawals"]) == ("Succeeded", 1, 1)
    assert story.memory.protocol.quarantined == {}
