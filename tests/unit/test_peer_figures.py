"""The figures the three runners of the peer benchmarks are compared on (bench/timeline.py,
bench/placement.py, bench/kueue_config.py): Kueue's gang decision is its Workload's admission, a
gang is stuck half placed only when it stays so, and Kueue gets the tenants' rules for its own
namespaces."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from kueue_config import with_namespaces
from placement import STUCK_SAMPLES, PodView, Tally
from timeline import parse_time, workload_decisions

from aifactory_operator.api.v1alpha1 import AIFactory


def job(name: str, uid: str, workers: int, created: str) -> dict:
    return {
        "metadata": {"name": name, "uid": uid, "creationTimestamp": created},
        "spec": {"parallelism": workers},
    }


def workload(owner_uid: str, conditions: list[dict]) -> dict:
    return {
        "metadata": {"ownerReferences": [{"kind": "Job", "uid": owner_uid}]},
        "status": {"conditions": conditions},
    }


def test_kueue_decides_a_gang_when_its_workload_is_admitted_not_when_quota_is_reserved():
    jobs = [job("a", "u-a", 4, "2026-12-03T10:00:00Z"), job("b", "u-b", 2, "2026-12-03T10:00:01Z")]
    workloads = [
        workload(
            "u-a",
            [
                {"type": "QuotaReserved", "status": "True", "lastTransitionTime": "2026-12-03T10:00:03Z"},
                {"type": "Admitted", "status": "True", "lastTransitionTime": "2026-12-03T10:00:05Z"},
            ],
        ),
        workload(
            "u-b", [{"type": "QuotaReserved", "status": "True", "lastTransitionTime": "2026-12-03T10:00:04Z"}]
        ),
    ]
    a, b = workload_decisions(jobs, workloads)
    assert (a.decided, a.workers) == (parse_time("2026-12-03T10:00:05Z"), 4)
    assert b.decided is None, "quota reserved but not admitted is no decision"
    assert workload_decisions([job("c", "u-c", 1, "2026-12-03T10:00:00Z")], [])[0].decided is None


def pods(running: int, pending: int) -> list[PodView]:
    return [PodView(f"g-{i}", "g", "Running", f"n{i}", 8) for i in range(running)] + [
        PodView(f"g-p{i}", "g", "Pending", "", 8) for i in range(pending)
    ]


def test_a_gang_bound_a_moment_apart_is_not_stuck_one_that_stays_half_placed_is():
    tally = Tally()
    tally.add(pods(1, 1))
    tally.add(pods(2, 0))
    assert (tally.partial_max, tally.stuck) == (1, set())
    for _ in range(STUCK_SAMPLES - 1):
        tally.add(pods(1, 1))
    assert tally.stuck == set(), "one sample short"
    tally.add(pods(1, 1))
    assert tally.stuck == {"g"}
    tally.add(pods(2, 0))
    assert tally.stuck == {"g"}, "once stuck, counted for the run"


def test_kueue_gets_each_tenants_rules_for_the_namespaces_its_runner_works_in():
    factory = AIFactory.model_validate(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "AIFactory",
            "metadata": {"name": "f"},
            "spec": {
                "sovereignty": {"jurisdiction": "DE", "regions": ["de-fra"]},
                "tenants": [
                    {"name": "a", "namespaces": ["a1", "a2"], "clearance": "internal"},
                    {"name": "b", "namespaces": ["b1"], "clearance": "internal"},
                ],
            },
        }
    )
    view = with_namespaces(factory, {"a1": "kueue-a1", "b1": "kueue-b1"})
    assert [t.namespaces for t in view.spec.tenants] == [["kueue-a1"], ["kueue-b1"]]
    assert [t.namespaces for t in factory.spec.tenants] == [["a1", "a2"], ["b1"]], "the factory is unchanged"
