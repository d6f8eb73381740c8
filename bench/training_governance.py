"""Shared-capacity governance (issue 22), the decision layer on its own: the operator's real
admission (admit() with a QuotaBook and fair sharing) and its real victim choice
(plan_preemptions()) driven tick by tick over a simulated factory, with the same seeded workload
for every variant, in the same run. A tick is 10 s; a stopped gang holds its nodes for the grace
period (3 ticks) while it checkpoints, as the loop holds them until the pods are gone.

- utilisation: research always has more work queued than its share; citizen-services submits in
  bursts (busy and quiet spells of 60-120 ticks) at its share's rate. GPU-time used over GPU-time
  offered with hard quotas (borrowingLimit 0), with borrowing, and with borrowing and reclaim;
  next to each, how long citizen's jobs waited to start (the lender's cost of lending);
- urgent jobs: research's queue is full of priority-10 jobs; every 30 ticks a priority-1000 job
  arrives. Its time to start (p50/p99, seconds) without preemption and with withinTenant
  preemption, and the GPU-seconds of work the victims lose: resuming from the last checkpoint
  (every 5 ticks) against starting over;
- fairness: both tenants saturate the queue, fair sharing weighted 2:1: each tenant's GPU-time
  share next to its weight's share, and the same without fair sharing (oldest first).

Usage: python bench/training_governance.py [--nodes 32] [--ticks 600] [--seed 1] [--json out.json]
"""

import argparse
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import report

from aifactory_operator.reconcile.admission import Fairness, NodeSlot, Request, admit, queue_order
from aifactory_operator.reconcile.preemption import Gang, Policy, may_preempt, plan_preemptions
from aifactory_operator.reconcile.quota_book import QuotaBook, Share

START = datetime(2026, 1, 1, tzinfo=UTC)
TICK_SECONDS = 10
GRACE_TICKS = 3
CHECKPOINT_TICKS = 5
PRODUCT, GPUS_PER_NODE, GPU = "H100", 8, "nvidia.com/gpu"
TENANTS = ("research", "citizen")
NO_PREEMPTION = Policy()


@dataclass(frozen=True)
class Arrival:
    tick: int
    tenant: str
    nodes: int
    duration: int  # ticks of work
    priority: int = 0


@dataclass
class Run:
    key: str
    arrival: Arrival
    nodes: list[str]
    admitted: int  # tick
    done: int = 0  # ticks of work done, checkpointed or not
    kept: int = 0  # ticks of work kept from earlier attempts (the last checkpoint)


@dataclass
class Outcome:
    used: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TENANTS, 0.0))
    waits: dict[str, list[int]] = field(default_factory=dict)  # ticks to first start, by kind
    started: set[str] = field(default_factory=set)
    lost_gpu_ticks: int = 0
    preemptions: int = 0


def _time(tick: int) -> datetime:
    return START + timedelta(seconds=tick * TICK_SECONDS)


def simulate(
    arrivals: list[Arrival],
    nodes: int,
    ticks: int,
    shares: dict[str, Share],
    weights: dict[str, float] | None = None,
    policy: Policy = NO_PREEMPTION,
    checkpoints: bool = True,
) -> Outcome:
    """Each tick: finished work frees its nodes; stopped gangs free theirs once the grace period is
    over; then one admission decision over the whole queue, and the preemptions it allows."""
    free = {f"n{i:03}": GPUS_PER_NODE for i in range(nodes)}
    running: dict[str, Run] = {}
    stopping: list[tuple[int, list[str]]] = []  # (tick the nodes free, nodes)
    queue: dict[str, tuple[Arrival, int]] = {}  # key -> (arrival, work kept)
    outcome, pending = Outcome(), list(arrivals)
    for tick in range(ticks):
        for key, run in list(running.items()):
            if run.kept + run.done >= run.arrival.duration:
                del running[key]
                for name in run.nodes:
                    free[name] += GPUS_PER_NODE
        for when, names in [s for s in stopping if s[0] <= tick]:
            stopping.remove((when, names))
            for name in names:
                free[name] += GPUS_PER_NODE
        while pending and pending[0].tick <= tick:
            a = pending.pop(0)
            queue[f"{a.tenant}-{a.tick:05}-{len(pending):05}"] = (a, 0)
        book = QuotaBook({(t, PRODUCT): s for t, s in shares.items()})
        for run in running.values():
            book.take((run.arrival.tenant, PRODUCT), run.arrival.nodes * GPUS_PER_NODE)
        requests = [_request(key, a) for key, (a, _) in queue.items()]
        fairness = None
        if weights is not None:
            total = sum(s.nominal for s in shares.values())
            fairness = Fairness(weights, dict(book.used), {PRODUCT: total})
        slots = [NodeSlot(name, "pool", gpus) for name, gpus in free.items()]
        decision = admit(requests, slots, book, now=_time(tick), starvation_seconds=10**9, fairness=fairness)
        for key, grant in decision.admitted.items():
            arrival, kept = queue.pop(key)
            if key not in outcome.started:
                kind = "urgent" if arrival.priority >= 1000 else arrival.tenant
                outcome.waits.setdefault(kind, []).append(tick - arrival.tick)
                outcome.started.add(key)
            for name in grant.nodes:
                free[name] -= GPUS_PER_NODE
            running[key] = Run(key, arrival, grant.nodes, tick, kept=kept)
            book.take((arrival.tenant, PRODUCT), arrival.nodes * GPUS_PER_NODE)
        if policy.enabled:
            _preempt(
                tick, decision, requests, running, stopping, free, queue, book, policy, checkpoints, outcome
            )
        for run in running.values():
            run.done += 1
            outcome.used[run.arrival.tenant] += run.arrival.nodes * GPUS_PER_NODE
    return outcome


def _request(key: str, a: Arrival) -> Request:
    created = f"{a.tick:06}{key}"
    return Request(key, a.tenant, "pool", PRODUCT, a.nodes, GPUS_PER_NODE, a.priority, created=created)


def _preempt(tick, decision, requests, running, stopping, free, queue, book, policy, checkpoints, outcome):
    """The loop's preemption step: the head of the queue, the running gangs, what is releasing."""
    blocked = [r for r in queue_order(requests) if decision.causes.get(r.key) in ("quota", "capacity")]
    gangs = [
        Gang(k, r.arrival.tenant, PRODUCT, "pool", r.arrival.priority, tuple(r.nodes), GPUS_PER_NODE,
             admitted=_time(r.admitted))
        for k, r in running.items()
    ]  # fmt: skip
    releasing: dict[str, dict[str, int]] = {}
    for _, names in stopping:
        for name in names:
            releasing.setdefault(name, {GPU: 0})[GPU] += GPUS_PER_NODE * 1000
    slots = [NodeSlot(name, "pool", gpus) for name, gpus in free.items()]
    waiting = may_preempt(blocked, gangs, book, policy)[:16]
    plan = plan_preemptions(waiting, gangs, slots, releasing, book, policy, _time(tick))
    for preemption in plan.preemptions:
        for victim, _ in preemption.victims:
            run = running.pop(victim.key)
            progress = run.kept + run.done
            kept = progress // CHECKPOINT_TICKS * CHECKPOINT_TICKS if checkpoints else 0
            outcome.lost_gpu_ticks += (progress - kept) * run.arrival.nodes * GPUS_PER_NODE
            outcome.preemptions += 1
            stopping.append((tick + GRACE_TICKS, run.nodes))
            queue[victim.key] = (run.arrival, kept)


def one_saturated_one_bursty(nodes: int, ticks: int, seed: int) -> list[Arrival]:
    """research: a backlog of four times the factory, from tick 0; citizen: bursts at its share's
    rate (Little's law: half the nodes / (2.5 nodes x 25 ticks) per tick), quiet between."""
    rng = random.Random(seed)
    research = [
        Arrival(0, "research", rng.randint(1, 4), rng.randint(10, 40)) for _ in range(ticks * nodes // 15)
    ]
    citizen, tick, busy = [], 0, False
    while tick < ticks:
        spell = rng.randint(60, 120)
        if busy:
            for t in range(tick, min(tick + spell, ticks)):
                if rng.random() < nodes / 2 / 2.5 / 25:
                    citizen.append(Arrival(t, "citizen", rng.randint(1, 4), rng.randint(10, 40)))
        tick, busy = tick + spell, not busy
    return sorted(research + citizen, key=lambda a: (a.tick, a.tenant))


def urgent_workload(nodes: int, ticks: int, seed: int) -> list[Arrival]:
    """research alone: a deep queue of priority-10 training runs of 17-67 minutes, and a
    priority-1000 job of 1-2 nodes every 30 ticks."""
    rng = random.Random(seed)
    backlog = [
        Arrival(0, "research", rng.randint(1, 4), rng.randint(100, 400), 10)
        for _ in range(ticks * nodes // 100)
    ]
    urgent = [
        Arrival(t, "research", rng.randint(1, 2), rng.randint(5, 15), 1000) for t in range(15, ticks, 30)
    ]
    return sorted(backlog + urgent, key=lambda a: (a.tick, a.tenant))


def saturated_workload(nodes: int, ticks: int, seed: int) -> list[Arrival]:
    """Both tenants queue far more than the factory holds: research its whole backlog first, then
    citizen a tick later (oldest first would then serve research alone)."""
    rng = random.Random(seed)
    return [
        Arrival(index, tenant, rng.randint(1, 2), rng.randint(5, 20))
        for index, tenant in enumerate(TENANTS)
        for _ in range(ticks * nodes // 15)
    ]


def seconds(waits: list[int], q: float) -> float:
    if not waits:
        return 0.0
    ordered = sorted(waits)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * TICK_SECONDS)


def run(nodes: int, ticks: int, seed: int) -> dict:
    capacity = nodes * GPUS_PER_NODE * ticks
    half = nodes * GPUS_PER_NODE // 2

    def utilisation(outcome: Outcome) -> float:
        return round(sum(outcome.used.values()) / capacity, 3)

    def share(outcome: Outcome, tenant: str) -> float:
        return round(outcome.used[tenant] / max(sum(outcome.used.values()), 1), 3)

    mixed = one_saturated_one_bursty(nodes, ticks, seed)
    hard = simulate(mixed, nodes, ticks, {t: Share(half) for t in TENANTS})
    lending = {t: Share(half, borrowing_limit=half) for t in TENANTS}
    borrowing = simulate(mixed, nodes, ticks, lending)
    reclaim = simulate(mixed, nodes, ticks, lending, policy=Policy(reclaim="Any"))

    urgent = urgent_workload(nodes, ticks, seed)
    alone = {"research": Share(nodes * GPUS_PER_NODE), "citizen": Share(0)}
    within = Policy(within_tenant="LowerPriority")
    waiting = simulate(urgent, nodes, ticks, alone)
    preempting = simulate(urgent, nodes, ticks, alone, policy=within)
    from_scratch = simulate(urgent, nodes, ticks, alone, policy=within, checkpoints=False)

    saturated = saturated_workload(nodes, ticks, seed)
    weights = {"research": 2.0, "citizen": 1.0}
    # The factory's GPUs are the platform team's share, all of it lent; the two tenants borrow it.
    pooled = {"platform": Share(2 * half)} | {t: Share(0, borrowing_limit=2 * half) for t in TENANTS}
    fair = simulate(saturated, nodes, ticks, pooled, weights)
    oldest_first = simulate(saturated, nodes, ticks, pooled)
    return {
        "nodes": nodes,
        "gpus": nodes * GPUS_PER_NODE,
        "ticks": ticks,
        "tick_seconds": TICK_SECONDS,
        "grace_period_seconds": GRACE_TICKS * TICK_SECONDS,
        "seed": seed,
        "utilisation_hard_quota": utilisation(hard),
        "utilisation_with_borrowing": utilisation(borrowing),
        "utilisation_with_borrowing_and_reclaim": utilisation(reclaim),
        "utilisation_points_gained_borrowing": round(100 * (utilisation(borrowing) - utilisation(hard)), 1),
        "utilisation_points_gained_borrowing_and_reclaim": round(
            100 * (utilisation(reclaim) - utilisation(hard)), 1
        ),
        "lender_wait_p50_s_hard_quota": seconds(hard.waits.get("citizen", []), 0.5),
        "lender_wait_p99_s_hard_quota": seconds(hard.waits.get("citizen", []), 0.99),
        "lender_wait_p50_s_borrowing": seconds(borrowing.waits.get("citizen", []), 0.5),
        "lender_wait_p99_s_borrowing": seconds(borrowing.waits.get("citizen", []), 0.99),
        "lender_wait_p50_s_borrowing_and_reclaim": seconds(reclaim.waits.get("citizen", []), 0.5),
        "lender_wait_p99_s_borrowing_and_reclaim": seconds(reclaim.waits.get("citizen", []), 0.99),
        "reclaim_preemptions": reclaim.preemptions,
        "urgent_jobs": len(preempting.waits.get("urgent", [])),
        "urgent_start_p50_s_without_preemption": seconds(waiting.waits.get("urgent", []), 0.5),
        "urgent_start_p99_s_without_preemption": seconds(waiting.waits.get("urgent", []), 0.99),
        "urgent_start_p50_s_with_preemption": seconds(preempting.waits.get("urgent", []), 0.5),
        "urgent_start_p99_s_with_preemption": seconds(preempting.waits.get("urgent", []), 0.99),
        "urgent_start_p99_bound_s": float((GRACE_TICKS + 1) * TICK_SECONDS),
        "preemptions": preempting.preemptions,
        "gpu_seconds_lost_with_checkpoints": preempting.lost_gpu_ticks * TICK_SECONDS,
        "gpu_seconds_lost_starting_over": from_scratch.lost_gpu_ticks * TICK_SECONDS,
        "utilisation_urgent_without_preemption": utilisation(waiting),
        "utilisation_urgent_with_preemption": utilisation(preempting),
        "fair_weights": weights,
        "fair_share_research": share(fair, "research"),
        "fair_share_citizen": share(fair, "citizen"),
        "weight_share_research": round(weights["research"] / sum(weights.values()), 3),
        "oldest_first_share_research": share(oldest_first, "research"),
        "utilisation_fair_sharing": utilisation(fair),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--ticks", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    return report(run(args.nodes, args.ticks, args.seed), args.json)


if __name__ == "__main__":
    sys.exit(main())
