"""The training loop's protocol under lagging views, failed and lost writes, duplicate ticks and
restarts: a hypothesis rule-based state machine drives the real tick code (handlers.training.
tick_once) against a simulated cluster (gang_world.py) and checks after every step that

- no node is double-booked: the live gang Jobs pinned to it never hold more than it has;
- no attempt is decided twice: every status and Job of one attempt names one node set;
- no stored status names other nodes than its attempt's Job pins;

and, once the faults stop, that every gang finishes (none is left stuck).
"""

import contextlib

import pytest
from gang_world import KINDS, World, observed_from
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.handlers import training
from aifactory_operator.handlers.training import LoopMemory, tick_once
from aifactory_operator.reconcile import gang_protocol
from aifactory_operator.reconcile import training as reconcile_training
from aifactory_operator.reconcile.preemption import Policy
from aifactory_operator.reconcile.quota_book import QuotaBook
from aifactory_operator.reconcile.training import TrainingConfig
from builders import make_factory_body, make_node, make_pool, make_tenant

CONFIG = TrainingConfig(starvation_seconds=60, backoff_seconds=5, unschedulable_grace_seconds=15)
STEPS = 50  # per example; x EXAMPLES below is the number of steps a run of `make test` takes
EXAMPLES = 60
MIN_STEPS = 2000
H100 = "NVIDIA-H100-80GB-HBM3"


def factory(nodes: int):
    """research's share is all but two nodes; it may borrow one node's worth, which the idle
    lender lends (lendingLimit 8), so it may never hold more than all but one node."""
    research = make_tenant(
        "research", gpuQuota=[{"product": H100, "gpus": 8 * (nodes - 2), "borrowingLimit": 8}]
    )
    lender = make_tenant("lender", gpuQuota=[{"product": H100, "gpus": 16, "lendingLimit": 8}])
    body = make_factory_body(pools=[make_pool(nodes=nodes)], tenants=[research, lender])
    # Urgent jobs preempt research's lower-priority gangs: stopped gangs must free their nodes
    # before anything else is decided there, and every gang must still finish.
    body["spec"]["scheduling"] = {"preemption": {"withinTenant": "LowerPriority", "reclaim": "Any"}}
    return AIFactory.model_validate(body)


def research_may_hold(nodes: int) -> int:
    return 8 * (nodes - 1)


class GangProtocol(RuleBasedStateMachine):
    """One factory of a few 8-GPU nodes; the rules are what the world and the operator may do."""

    steps = 0  # over every example of a run: the run must take at least MIN_STEPS
    finished = 0  # gangs that succeeded, so a run that never admits anything cannot pass
    preempted = 0  # gangs stopped for an urgent one, so the run is known to have tried it

    @initialize(nodes=st.integers(3, 5))
    def start(self, nodes: int) -> None:
        self.factory = factory(nodes)
        self.may_hold = research_may_hold(nodes)
        self.world = World([make_node(f"de-1-h100-{i}") for i in range(nodes)])
        self.memory = LoopMemory()
        self.submitted = 0
        self.world.snapshot()

    @rule(
        nodes=st.integers(1, 3),
        gpus=st.sampled_from([2, 4, 8]),
        duration=st.integers(1, 4),
        priority=st.sampled_from([0, 0, 1, 5]),
    )
    def submit(self, nodes: int, gpus: int, duration: int, priority: int = 0) -> None:
        if nodes <= len(self.world.nodes) and nodes * gpus <= self.may_hold and self.submitted < 12:
            self.world.submit(f"job-{self.submitted}", nodes, gpus, duration, priority=priority)
            self.submitted += 1
            self.world.snapshot()

    @rule(ticks=st.integers(1, 2))
    def tick(self, ticks: int) -> None:
        """The operator's tick; twice in a row is a duplicate event over an unchanged view."""
        for _ in range(ticks):
            self._tick()

    @rule()
    def advance(self) -> None:
        self.world.advance()
        self.world.snapshot()

    @rule(kind=st.sampled_from(KINDS), lag=st.integers(0, 4))
    def lag(self, kind: str, lag: int) -> None:
        """An informer falls behind (or catches up): its view is `lag` snapshots old."""
        self.world.lags[kind] = lag

    @rule(fault=st.sampled_from(["before", "after"]))
    def break_next_write(self, fault: str) -> None:
        self.world.fault = fault

    @rule()
    def restart(self) -> None:
        """The operator restarts: its memory is gone and its informers list afresh."""
        self.memory = LoopMemory()
        self.world.catch_up()

    @precondition(lambda self: bool(self.world.jobs))
    @rule(data=st.data())
    def fail_a_worker(self, data: st.DataObject) -> None:
        self.world.failing.add(data.draw(st.sampled_from(sorted(self.world.jobs))))

    @precondition(lambda self: self.world.nodes)
    @rule(data=st.data())
    def foreign_pod(self, data: st.DataObject) -> None:
        """A pod nobody admitted takes a node's GPUs (the ledger sees it only once it is bound)."""
        node = data.draw(st.sampled_from([n["metadata"]["name"] for n in self.world.nodes]))
        name = f"foreign-{self.world.step}-{node}"
        self.world.pods[name] = {
            "metadata": {
                "name": name,
                "namespace": "other",
                "labels": {"job-name": "", "aifactory.dev/trainingjob": ""},
            },
            "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"nvidia.com/gpu": "4"}}}]},
            "status": {"phase": "Running", "started": self.world.step},
        }
        self.world.durations[""] = 3

    @precondition(lambda self: self.world.nodes)
    @rule(data=st.data())
    def refuse_on_a_node(self, data: st.DataObject) -> None:
        """A node's kubelet refuses pods for a reason no view shows (until the faults stop)."""
        self.world.refusing.add(data.draw(st.sampled_from([n["metadata"]["name"] for n in self.world.nodes])))

    def _tick(self) -> None:
        # A failed write fails the tick; the next one starts from what exists.
        with contextlib.suppress(Exception):
            tick_once(self.world, self.factory, self.memory, observed_from(self.world), self.world.now)  # type: ignore[arg-type]
        self.world.snapshot()

    @invariant()
    def count(self) -> None:
        GangProtocol.steps += 1

    @invariant()
    def never_double_booked(self) -> None:
        assert self.world.double_booked() == [], self._story()

    @invariant()
    def each_attempt_decided_once(self) -> None:
        assert self.world.decided_twice() == [], self._story()

    @invariant()
    def within_share_and_borrowing(self) -> None:
        """Whatever the views show, the tenant's live gangs never hold more than its share plus
        what it may borrow (a stale view that hid a hold would admit past it)."""
        held = sum(amounts.get("nvidia.com/gpu", 0) for amounts in self.world.gang_reservations().values())
        assert held // 1000 <= self.may_hold, f"research holds {held // 1000} GPUs\n{self._story()}"

    @invariant()
    def statuses_follow_their_jobs(self) -> None:
        assert self.world.mismatches() == [], self._story()

    def teardown(self) -> None:
        """Faults stop and views catch up: every gang must then finish, none left stuck."""
        if not hasattr(self, "world"):
            return
        self.world.fault, self.world.failing, self.world.refusing = "", set(), set()
        self.world.catch_up()
        for _ in range(120):
            if all(_finished(t) for t in self.world.trainingjobs.values()):
                break
            self._tick()
            self.world.advance()
            self.world.snapshot()
        stuck = {
            n: (t.get("status") or {}).get("phase")
            for n, t in self.world.trainingjobs.items()
            if not _finished(t)
        }
        GangProtocol.finished += sum(1 for t in self.world.trainingjobs.values() if _finished(t))
        GangProtocol.preempted += sum(1 for event in self.world.events if event[1] == "Preempted")
        assert stuck == {}, f"gangs left stuck: {stuck}\n{self._story()}"

    def _story(self) -> str:
        statuses = {n: (t.get("status") or {}) for n, t in self.world.trainingjobs.items()}
        return f"decisions={self.world.decisions} statuses={ {n: (s.get('phase'), s.get('attempt'), (s.get('placement') or {}).get('nodes')) for n, s in statuses.items()} }"


def _finished(body: dict) -> bool:
    return (body.get("status") or {}).get("phase") in ("Succeeded", "Failed")


PROTOCOL = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
    database=None,  # the same examples on every run and machine, none replayed from a past run
)


@pytest.fixture(autouse=True)
def loop_config(monkeypatch):
    """The loop's knobs as this test means them, whatever the environment the module was imported in."""
    monkeypatch.setattr(training, "CONFIG", CONFIG)


def test_the_protocol_holds_its_invariants_under_lag_faults_and_restarts():
    GangProtocol.steps = GangProtocol.finished = GangProtocol.preempted = 0
    run_state_machine_as_test(GangProtocol, settings=PROTOCOL)
    assert GangProtocol.steps >= MIN_STEPS, f"only {GangProtocol.steps} steps ran"
    assert GangProtocol.finished >= EXAMPLES, f"only {GangProtocol.finished} gangs finished"
    assert GangProtocol.preempted > 0, "no gang was ever preempted"
    print(
        f"{GangProtocol.steps} steps, {GangProtocol.finished} gangs finished,"
        f" {GangProtocol.preempted} preempted"
    )


def test_the_state_machine_catches_a_loop_that_ignores_the_borrowing_limits(monkeypatch):
    """A test of the test: admission that lets a tenant take anything it asks for is caught."""
    monkeypatch.setattr(QuotaBook, "room", lambda self, key, borrow=True: 10**6)
    # Without preemption stopping gangs, the unlimited tenant fills the nodes sooner.
    monkeypatch.setattr(reconcile_training, "preemption_policy", lambda factory: Policy())
    with pytest.raises(AssertionError, match="research holds"):
        unshrunk = settings(PROTOCOL, max_examples=60, phases=[Phase.generate], report_multiple_bugs=False)
        run_state_machine_as_test(GangProtocol, settings=unshrunk)


def test_the_state_machine_catches_a_loop_that_decides_twice(monkeypatch):
    """A test of the test: the loop of issue 20 read only its status (no Job, no memory of its own
    decisions) and so, behind a lagging status, decided the same attempt again."""

    def forgetful(job, status, observed, memory, key):
        return gang_protocol.AttemptView(status.attempt, None, False, None, False)

    monkeypatch.setattr(training_module(), "view_attempt", forgetful)
    # ...and, as its apply did, took a Job that already existed for a success.
    monkeypatch.setattr(training, "adopt_existing_job", lambda kube, creation, protocol: None)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            GangProtocol, settings=settings(PROTOCOL, max_examples=60, phases=[Phase.generate])
        )


def training_module():
    from aifactory_operator.reconcile import training as reconcile_training

    return reconcile_training


def test_a_running_gang_holds_its_node_while_the_pods_view_lags_the_jobs_view():
    """Found by the machine in CI: a gang Running by its Job's view, its pod not yet bound in a
    lagging pods view, must still hold its node, or a second gang is pinned onto the same GPUs."""
    machine = GangProtocol()
    machine.start(nodes=2)
    machine.submit(nodes=1, gpus=8, duration=1)
    machine.tick(ticks=1)
    machine.advance()
    machine.lag(kind="pods", lag=2)
    machine.submit(nodes=1, gpus=2, duration=1)
    machine.tick(ticks=1)
    machine.never_double_booked()
    machine.teardown()
