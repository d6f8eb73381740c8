"""Gang admission through the operator on the real control plane, with a queue deeper than the
factory: admission decisions per second, the wait from creation to admission and the queue length,
against kube-scheduler binding the same jobs as plain batch/v1 Jobs, in the same run.

Both sides get the same bounded window (--window seconds from the first creation): one client
creates the jobs as fast as it can until all exist or the window ends, and only decisions made
inside the window count. The baseline runs first, with the operator stopped.

Usage: python bench/admission_e2e.py [--jobs 1000] [--nodes 32] [--window 120] [--json out.json]
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    create_factory,
    create_namespace,
    delete_and_wait,
    factory_body,
    is_training_loop_running,
    report,
    start_cluster,
    start_operator,
    wait,
)
from timeline import RESOLUTION_SECONDS, job_decisions, pod_decisions, summarize, trainingjob_decisions
from workload import Gang, construct_plain_job, construct_trainingjob, make_admission_mix

from aifactory_operator.api.v1alpha1.aifactory import NodePool
from aifactory_operator.constants import API_VERSION
from aifactory_operator.kube.client import Kube

METRICS_PORT = 18190
POOL = "h100"
PRODUCT = "NVIDIA-H100-80GB-HBM3"
# Stamps have one-second resolution: this much after the window, its last decisions are written.
GRACE_SECONDS = 2


def admission_factory(name: str, namespace: str, nodes: int) -> dict[str, Any]:
    """One pool of 8-GPU nodes and one tenant whose quota covers the whole pool."""
    pool = {"name": POOL, "gpuProduct": PRODUCT, "gpusPerNode": 8, "nodes": nodes, "region": "de-fra"}
    tenant = {
        "name": "bench",
        "namespaces": [namespace],
        "clearance": "internal",
        "gpuQuota": [{"product": PRODUCT, "gpus": nodes * 8}],
    }
    return factory_body(name, "de-fra", pools=[pool], tenants=[tenant])


def create_in_window(kube: Kube, bodies: list[dict[str, Any]], window: float) -> dict[str, Any]:
    """Creates the bodies one after the other until all exist or the window ends, then waits out
    the window, so that every decision inside it has happened when the caller looks."""
    started = time.monotonic()
    created = 0
    for body in bodies:
        if time.monotonic() - started >= window:
            break
        kube.apply(body)
        created += 1
    seconds = time.monotonic() - started
    time.sleep(max(started + window + GRACE_SECONDS - time.monotonic(), 0))
    return {"created": created, "creations_per_second": round(created / seconds, 1)}


def measure_plain(
    kube: Kube, gangs: list[Gang], namespace: str, pool: NodePool, factory: str, window: float
) -> dict[str, Any]:
    """kube-scheduler alone: each gang as a plain Job; decisions are pod bindings."""
    create_namespace(kube, namespace)
    bodies = [construct_plain_job(g, namespace, pool, factory) for g in gangs]
    creation = create_in_window(kube, bodies, window)
    jobs = kube.list("batch/v1", "Job", namespace=namespace)
    pods = kube.list("v1", "Pod", namespace=namespace)
    return {
        **creation,
        "pod_bindings": summarize(pod_decisions(pods), window),
        "jobs_with_every_pod_bound": summarize(job_decisions(jobs, pods), window),
    }


def measure_operator(kube: Kube, gangs: list[Gang], namespace: str, window: float) -> dict[str, Any]:
    """The operator: each gang as a TrainingJob; decisions are admissions (status.admittedTime)."""
    bodies = [construct_trainingjob(g, namespace, POOL) for g in gangs]
    creation = create_in_window(kube, bodies, window)
    trainingjobs = kube.list(API_VERSION, "TrainingJob", namespace=namespace)
    return {**creation, "admissions": summarize(trainingjob_decisions(trainingjobs), window)}


def run(jobs: int, nodes: int, window: float) -> dict[str, Any]:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name, namespace, plain = f"abench-{stamp}", f"abench-{stamp}", f"aplain-{stamp}"
    gangs = make_admission_mix(jobs)
    operator = start_operator(layout, "operator-admission-bench.log", METRICS_PORT)
    try:
        factory = create_factory(kube, admission_factory(name, namespace, nodes))
        # The baseline has the machine to itself: kube-scheduler alone, no operator on the CPUs.
        operator.stop()
        baseline = measure_plain(kube, gangs, plain, factory.spec.node_pools[0], name, window)
        delete_and_wait(kube, "v1", "Namespace", plain)
        operator.start()
        wait(lambda: is_training_loop_running(METRICS_PORT, name), "the operator's training loop")
        ours = measure_operator(kube, gangs, namespace, window)
        delete_and_wait(kube, API_VERSION, "AIFactory", name)
        delete_and_wait(kube, "v1", "Namespace", namespace)
    finally:
        operator.stop()
    return {
        "jobs": jobs,
        "nodes": nodes,
        "gpus": nodes * 8,
        "workers_requested": sum(g.nodes for g in gangs),
        "window_seconds": window,
        "measured": "decisions within window_seconds of the first creation; rates over first creation"
        " to last decision in the window; waits and queue lengths from API timestamps",
        "timestamp_resolution_seconds": RESOLUTION_SECONDS,
        "operator": ours,
        "baseline_kube_scheduler_plain_jobs": baseline,
        "ratio_gang_decisions_per_second_operator_to_baseline": ratio(
            ours["admissions"]["decisions_per_second"],
            baseline["jobs_with_every_pod_bound"]["decisions_per_second"],
        ),
    }


def ratio(ours: float, baseline: float) -> float | None:
    return round(ours / baseline, 2) if baseline else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--window", type=float, default=120, help="seconds measured on each side")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    return report(run(args.jobs, args.nodes, args.window), args.json)


if __name__ == "__main__":
    sys.exit(main())
