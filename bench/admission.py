"""Admission throughput (pure): decisions per second for a deep queue on a large factory, against a
plain FIFO first-fit gang admission as the baseline, in the same run.

Usage: python bench/admission.py [--jobs 1000] [--nodes 500] [--json out.json]
"""

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import report

from aifactory_operator.reconcile.admission import NodeSlot, Request, admit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_nodes(count: int) -> list[NodeSlot]:
    # NVL domains of 2 nodes, racks of 8 nodes; a third of the GPUs already in use.
    rng = random.Random(1)
    return [
        NodeSlot(f"n{i}", "h100", rng.choice([0, 8, 8]), {"nvlinkDomain": f"d{i // 2}", "rack": f"r{i // 8}"})
        for i in range(count)
    ]


def make_jobs(count: int) -> list[Request]:
    rng = random.Random(2)
    return [
        Request(
            key=f"j{i}",
            tenant=f"t{i % 10}",
            pool="h100",
            product="H100",
            nodes=rng.choice([1, 1, 2, 4, 8]),
            gpus_per_node=rng.choice([4, 8, 8]),
            priority=rng.randint(0, 5),
            created=f"{i:06d}",
            waiting_since=NOW,
            topology_mode=rng.choice(["none", "preferred", "required"]),
            topology_level=rng.choice(["rack", "nvlinkDomain"]),
        )
        for i in range(count)
    ]


def fifo_first_fit(jobs: list[Request], nodes: list[NodeSlot]) -> int:
    """The baseline: creation order, first nodes with room, no topology, no quota."""
    free = {n.name: n.free for n in nodes}
    admitted = 0
    for job in sorted(jobs, key=lambda j: j.created):
        chosen = [n for n, f in free.items() if f >= job.gpus_per_node][: job.nodes]
        if len(chosen) == job.nodes:
            for name in chosen:
                free[name] -= job.gpus_per_node
            admitted += 1
    return admitted


def measure(fn, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def run(job_count: int, node_count: int) -> dict:
    jobs, nodes = make_jobs(job_count), make_nodes(node_count)
    quota = {(f"t{i}", "H100"): 10_000 for i in range(10)}
    decision = admit(jobs, nodes, quota, now=NOW, starvation_seconds=300)
    ours = measure(lambda: admit(jobs, nodes, quota, now=NOW, starvation_seconds=300), 5)
    baseline = measure(lambda: fifo_first_fit(jobs, nodes), 5)
    return {
        "queued_jobs": job_count,
        "nodes": node_count,
        "admitted_in_one_decision": len(decision.admitted),
        "decision_seconds": round(ours, 4),
        "job_decisions_per_second": round(job_count / ours),
        "baseline_fifo_first_fit_seconds": round(baseline, 4),
        "ratio_to_baseline": round(ours / baseline, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    return report(run(args.jobs, args.nodes), args.json)


if __name__ == "__main__":
    sys.exit(main())
