"""A tick writes every change of phase at once but only the stalest few queue refreshes, so that a
deep queue does not cost one write per waiting job per tick."""

from datetime import UTC, datetime

from aifactory_operator.api.v1alpha1 import TrainingJob
from aifactory_operator.handlers import training
from aifactory_operator.reconcile.conditions import Outcome, construct_conditions
from aifactory_operator.reconcile.status_writes import WriteBudget
from aifactory_operator.reconcile.training import TrainingPlan


class Recorder:
    """Stands in for the API client: the pure part under test only decides which patches to send."""

    def __init__(self) -> None:
        self.patched: list[tuple[str, dict]] = []
        self.events: list[tuple[str, str]] = []

    def patch_status(self, api_version, kind, name, namespace, patch) -> None:
        self.patched.append((name, patch))

    def apply(self, obj) -> None:
        if obj.get("fail"):
            raise RuntimeError(obj["metadata"]["name"])
        self.patched.append((obj["metadata"]["name"], obj))

    def delete(self, api_version, kind, name, namespace) -> None:
        self.patched.append((name, {}))

    def record_event(self, involved, reason, message, *, warning=False) -> None:
        self.events.append((involved["metadata"]["name"], reason))


WAITING = Outcome.progressing("Queued", "waiting for GPUs")
EARLIER = datetime(2026, 1, 1, tzinfo=UTC)


def queued(name: str, position: int) -> TrainingJob:
    """A job that has waited since before this tick, with the conditions a waiting job carries."""
    conditions = construct_conditions(WAITING, [], generation=1, now=EARLIER)
    return TrainingJob.model_validate(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name, "namespace": "research", "uid": name, "generation": 1},
            "spec": {"image": "registry/t:1", "pool": "h100", "nodes": 1, "gpusPerNode": 8},
            "status": {
                "phase": "Queued",
                "queuePosition": position,
                "observedGeneration": 1,
                "conditions": conditions,
            },
        }
    )


def new(name: str, created: str) -> TrainingJob:
    """A job just created: no status yet."""
    return TrainingJob.model_validate(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name, "namespace": "research", "uid": name, "creationTimestamp": created},
            "spec": {"image": "registry/t:1", "pool": "h100", "nodes": 1, "gpusPerNode": 8},
        }
    )


def tick(
    jobs: list[TrainingJob],
    statuses: dict,
    refreshed: dict,
    monkeypatch,
    limit: int,
    entries: int = 200,
    budget: int = 1000,
    minimum: int = 0,
    creates: int = 0,
) -> list[str]:
    monkeypatch.setattr(training, "BUDGET", WriteBudget(budget, minimum, entries, limit))
    kube = Recorder()
    plan = TrainingPlan(statuses=statuses, apply=[{"metadata": {"name": f"job-{i}"}} for i in range(creates)])
    training.execute_training(kube, plan, jobs, [], refreshed)  # type: ignore[arg-type]
    return [name for name, _ in kube.patched]


def test_only_the_stalest_queue_refreshes_are_written_each_tick(monkeypatch):
    jobs = [queued(f"j{i}", i + 1) for i in range(5)]
    moved = {f"research/j{i}": ({"phase": "Queued", "queuePosition": i}, WAITING) for i in range(5)}
    refreshed: dict[str, float] = {}
    first = tick(jobs, moved, refreshed, monkeypatch, limit=2)
    second = tick(jobs, moved, refreshed, monkeypatch, limit=2)
    third = tick(jobs, moved, refreshed, monkeypatch, limit=2)
    # The stored statuses stay behind (nothing re-reads them here), so every job keeps wanting a
    # refresh: two a tick, never-refreshed ones first, then the one refreshed longest ago.
    assert [len(first), len(second), len(third)] == [2, 2, 2]
    assert set(first + second) | {third[0]} == {f"j{i}" for i in range(5)}
    assert third[1] in first


def test_an_admission_is_written_at_once_whatever_the_limit(monkeypatch):
    jobs = [queued("head", 1), queued("tail", 2)]
    statuses = {
        "research/head": (
            {"phase": "Admitted", "queuePosition": None},
            Outcome.progressing("Admitted", "go"),
        ),
        "research/tail": ({"phase": "Queued", "queuePosition": 1}, WAITING),
    }
    assert tick(jobs, statuses, {}, monkeypatch, limit=0) == ["head"]


def test_only_the_oldest_new_jobs_get_their_first_queued_status_each_tick(monkeypatch):
    jobs = [new(f"j{i}", f"2026-01-01T00:00:0{9 - i}Z") for i in range(4)]
    statuses = {f"research/j{i}": ({"phase": "Queued", "queuePosition": i + 1}, WAITING) for i in range(4)}
    assert tick(jobs, statuses, {}, monkeypatch, limit=0, entries=2) == ["j3", "j2"]


def test_a_new_job_admitted_at_once_is_written_whatever_the_limit(monkeypatch):
    statuses = {"research/j": ({"phase": "Admitted"}, Outcome.progressing("Admitted", "go"))}
    assert tick([new("j", "2026-01-01T00:00:00Z")], statuses, {}, monkeypatch, limit=0, entries=0) == ["j"]


def test_jobs_that_are_gone_are_forgotten(monkeypatch):
    refreshed = {"research/gone": 1.0}
    tick([queued("j", 1)], {}, refreshed, monkeypatch, limit=5)
    assert refreshed == {}


def test_one_failed_write_does_not_stop_the_others_and_fails_the_tick(monkeypatch):
    kube = Recorder()
    objects = [{"metadata": {"name": f"o{i}"}, "fail": i == 1} for i in range(4)]
    plan = TrainingPlan(apply=objects)
    try:
        training.execute_training(kube, plan, [], [], {})  # type: ignore[arg-type]
    except RuntimeError as error:
        assert str(error) == "o1"
    else:
        raise AssertionError("the failed write must fail the tick")
    assert sorted(name for name, _ in kube.patched) == ["o0", "o2", "o3"]


def test_queue_reports_get_what_the_tick_budget_leaves_after_its_decisions(monkeypatch):
    jobs = [new(f"n{i}", f"2026-01-01T00:00:0{i}Z") for i in range(5)] + [
        queued(f"q{i}", i) for i in range(5)
    ]
    statuses = {f"research/n{i}": ({"phase": "Queued", "queuePosition": i}, WAITING) for i in range(5)}
    statuses |= {f"research/q{i}": ({"phase": "Queued", "queuePosition": i + 5}, WAITING) for i in range(5)}
    written = tick(jobs, statuses, {}, monkeypatch, limit=5, budget=7, creates=3)
    # Three creates leave four writes: the oldest two new jobs' first statuses and their Queued
    # Events, no refresh.
    assert sorted(written) == ["job-0", "job-1", "job-2", "n0", "n1"]


def test_a_tick_busy_with_decisions_still_writes_the_minimum_of_reports(monkeypatch):
    jobs = [new(f"n{i}", f"2026-01-01T00:00:0{i}Z") for i in range(3)] + [queued("q", 1)]
    statuses = {f"research/n{i}": ({"phase": "Queued", "queuePosition": i + 2}, WAITING) for i in range(3)}
    statuses["research/q"] = ({"phase": "Queued", "queuePosition": 5}, WAITING)
    written = tick(jobs, statuses, {}, monkeypatch, limit=5, budget=2, minimum=7, creates=3)
    # Seven writes: three first statuses with their Queued Events, and one refresh (no Event).
    assert sorted(w for w in written if not w.startswith("job-")) == ["n0", "n1", "n2", "q"]


def test_a_new_job_entering_the_queue_is_told_once_however_many_ticks_replan_it(monkeypatch):
    job = new("j", "2026-01-01T00:00:00Z")
    statuses = {"research/j": ({"phase": "Queued", "queuePosition": 1}, WAITING)}
    told: dict = {}
    # The stored status stays behind, as a lagging watch leaves it: every tick plans the entry again.
    events = [tick_events([job], statuses, told, monkeypatch) for _ in range(3)]
    assert events == [[("j", "Queued")], [], []]


def tick_events(jobs, statuses, told, monkeypatch) -> list[tuple[str, str]]:
    monkeypatch.setattr(training, "BUDGET", WriteBudget(tick_writes=100))
    kube = Recorder()
    training.execute_training(kube, TrainingPlan(statuses=statuses), jobs, [], {}, told=told)  # type: ignore[arg-type]
    return kube.events


def test_a_status_a_delete_waits_for_goes_first_and_reports_after_the_creates(monkeypatch):
    """Phase 1 holds only what phase 2 waits for (the attempt left behind before its Job goes);
    a report nothing waits for (here a change of queue position) goes after the creates."""
    monkeypatch.setattr(training, "BUDGET", WriteBudget(1000, 0, 200, 10))
    jobs = [queued("old", 1), queued("done", 2)]
    statuses = {
        "research/old": ({"phase": "Queued", "attempt": 1}, WAITING),
        "research/done": ({"phase": "Queued", "queuePosition": 1}, WAITING),
    }
    plan = TrainingPlan(statuses=statuses, apply=[{"metadata": {"name": "svc"}}])
    plan.delete = [("research", "old-0")]
    plan.delete_after = {("research", "old-0"): "research/old"}
    kube = Recorder()
    training.execute_training(kube, plan, jobs, [], {})  # type: ignore[arg-type]
    order = [name for name, _ in kube.patched]
    assert order.index("old") < order.index("old-0"), "the attempt is left behind before its Job goes"
    assert order.index("svc") < order.index("done"), "a report waits for the tick's creates"
    assert order.index("old-0") < order.index("done")
