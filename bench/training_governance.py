"""Shared-capacity governance (issue 22), the decision layer on its own: the operator's real
admission (admit() with a QuotaBook and fair sharing) driven tick by tick over a simulated factory,
with the same seeded workload for every variant, in the same run.

- utilisation: two tenants whose demand comes in bursts that do not overlap fully, each with half
  the factory as its nominal share: GPU-time used over GPU-time offered with hard quotas
  (borrowingLimit 0) and with borrowing (each may borrow the other's idle share);
- fairness: both tenants saturate the queue, fair sharing weighted 2:1: each tenant's GPU-time share
  next to its weight's share, and the same without fair sharing (oldest first).

Not measured here yet: preemption (time-to-start of urgent jobs, work lost), which is not built.

Usage: python bench/training_governance.py [--nodes 32] [--ticks 600] [--seed 1] [--json out.json]
"""

import argparse
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common import report

from aifactory_operator.reconcile.admission import Fairness, NodeSlot, Request, admit
from aifactory_operator.reconcile.quota_book import QuotaBook, Share

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCT, GPUS_PER_NODE = "H100", 8
TENANTS = ("research", "citizen")


@dataclass(frozen=True)
class Arrival:
    tick: int
    tenant: str
    nodes: int
    duration: int  # ticks


def bursty_workload(nodes: int, ticks: int, seed: int) -> list[Arrival]:
    """Each tenant alternates busy and quiet spells (60-120 ticks); while busy it submits jobs of
    1-4 nodes lasting 10-40 ticks at a rate that would keep the whole factory busy (Little's law:
    nodes / (2.5 nodes x 25 ticks) per tick), twice its share."""
    rng = random.Random(seed)
    arrivals = []
    for index, tenant in enumerate(TENANTS):
        tick, busy = 0, index == 0
        while tick < ticks:
            spell = rng.randint(60, 120)
            if busy:
                for t in range(tick, min(tick + spell, ticks)):
                    if rng.random() < nodes / 2.5 / 25:
                        arrivals.append(Arrival(t, tenant, rng.randint(1, 4), rng.randint(10, 40)))
            tick, busy = tick + spell, not busy
    return sorted(arrivals, key=lambda a: (a.tick, a.tenant))


def saturated_workload(nodes: int, ticks: int, seed: int) -> list[Arrival]:
    """Both tenants queue far more than the factory holds: research its whole backlog first, then
    citizen a tick later (oldest first would then serve research alone)."""
    rng = random.Random(seed)
    return [
        Arrival(index, tenant, rng.randint(1, 2), rng.randint(5, 20))
        for index, tenant in enumerate(TENANTS)
        for _ in range(ticks * nodes // 15)
    ]


def simulate(
    arrivals: list[Arrival],
    nodes: int,
    ticks: int,
    shares: dict[str, Share],
    weights: dict[str, float] | None = None,
) -> dict[str, float]:
    """GPU-ticks used per tenant over `ticks`; each tick: finished jobs free their nodes and quota,
    then one admission decision over the whole queue."""
    free = {f"n{i:03}": GPUS_PER_NODE for i in range(nodes)}
    running: list[tuple[int, str, list[str], int]] = []  # (end tick, tenant, nodes, gpus)
    queue: dict[str, tuple[Request, Arrival]] = {}
    used = dict.fromkeys(TENANTS, 0.0)
    pending = list(arrivals)
    for tick in range(ticks):
        for end, tenant, placed, gpus in [r for r in running if r[0] <= tick]:
            running.remove((end, tenant, placed, gpus))
            for name in placed:
                free[name] += GPUS_PER_NODE
        while pending and pending[0].tick <= tick:
            a = pending.pop(0)
            key = f"{a.tenant}-{len(queue)}-{a.tick}-{len(pending)}"
            request = Request(
                key, a.tenant, "h100", PRODUCT, a.nodes, GPUS_PER_NODE, created=f"{a.tick:06}{key}"
            )
            queue[key] = (request, a)
        book = QuotaBook({(t, PRODUCT): s for t, s in shares.items()})
        for _, tenant, _, gpus in running:
            book.take((tenant, PRODUCT), gpus)
        fairness = None
        if weights is not None:
            total = sum(s.nominal for s in shares.values())
            fairness = Fairness(weights, dict(book.used), {PRODUCT: total})
        slots = [NodeSlot(name, "h100", gpus) for name, gpus in free.items()]
        requests = [r for r, _ in queue.values()]
        decision = admit(requests, slots, book, now=NOW, starvation_seconds=10**9, fairness=fairness)
        for key, grant in decision.admitted.items():
            request, arrival = queue.pop(key)
            for name in grant.nodes:
                free[name] -= GPUS_PER_NODE
            running.append((tick + arrival.duration, request.tenant, grant.nodes, request.gpus))
        for _, tenant, _, gpus in running:
            used[tenant] += gpus
    return used


def run(nodes: int, ticks: int, seed: int) -> dict:
    capacity = nodes * GPUS_PER_NODE * ticks
    half = nodes * GPUS_PER_NODE // 2
    bursty = bursty_workload(nodes, ticks, seed)
    hard = simulate(bursty, nodes, ticks, {t: Share(half) for t in TENANTS})
    borrowing = simulate(bursty, nodes, ticks, {t: Share(half, borrowing_limit=half) for t in TENANTS})
    saturated = saturated_workload(nodes, ticks, seed)
    weights = {"research": 2.0, "citizen": 1.0}
    generous = {t: Share(half, borrowing_limit=half) for t in TENANTS}
    fair = simulate(saturated, nodes, ticks, generous, weights)
    oldest_first = simulate(saturated, nodes, ticks, generous)

    def utilisation(used: dict[str, float]) -> float:
        return round(sum(used.values()) / capacity, 3)

    def share(used: dict[str, float], tenant: str) -> float:
        return round(used[tenant] / max(sum(used.values()), 1), 3)

    return {
        "nodes": nodes,
        "gpus": nodes * GPUS_PER_NODE,
        "ticks": ticks,
        "seed": seed,
        "bursty_jobs": len(bursty),
        "utilisation_hard_quota": utilisation(hard),
        "utilisation_with_borrowing": utilisation(borrowing),
        "utilisation_points_gained": round(100 * (utilisation(borrowing) - utilisation(hard)), 1),
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
