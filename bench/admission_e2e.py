"""Gang admission through the operator on the real control plane, with a queue deeper than the
factory: admission decisions per second, the wait from creation to admission and the queue length,
against kube-scheduler binding the same jobs as plain batch/v1 Jobs, and against Kueue admitting
the same gang Jobs (kueue_peer.py; --no-kueue skips it), in the same run.

Both sides get the same bounded window (--window seconds from the first creation): one client
creates the jobs as fast as it can until all exist or the window ends, and only decisions made
inside the window count. The baseline runs first, with the operator stopped.

With --deep-queue every job exists before anything decides: the TrainingJobs are created (CLIENTS
clients in parallel) while the operator is stopped and its webhooks are removed (it puts them back
when it starts), the plain Jobs while kube-scheduler is stopped (their pods wait, created by the Job
controller), Kueue's suspended Jobs while Kueue is stopped. The window then starts when the
operator, kube-scheduler or Kueue starts, and waits count from that moment: decisions per second
with the whole queue in front of the decider. Kueue's decision is its Workload's admission; like
the operator's, it comes before the pods are bound.

At the end of the operator's window the gang audit (bench/gang_audit.py) reports stuck_gangs,
double_booked_nodes and placement_mismatches; any that is not 0 makes the run exit non-zero once its
JSON is written.

Usage: python bench/admission_e2e.py [--jobs 1000] [--nodes 32] [--window 120] [--deep-queue]
       [--seed 1] [--no-kueue] [--json out.json]
"""

import argparse
import contextlib
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    audit_figures,
    create_all,
    create_factory,
    create_namespace,
    delete_and_wait,
    factory_body,
    is_training_loop_running,
    report,
    run_interruptible,
    start_cluster,
    start_operator,
    wait,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kueue_config import kueue_job, with_namespaces
from kueue_peer import kueue_peer
from kueue_peer import version as kueue_version
from timeline import (
    RESOLUTION_SECONDS,
    Decided,
    job_decisions,
    pod_decisions,
    summarize,
    trainingjob_decisions,
    workload_decisions,
)
from workload import Gang, construct_plain_job, construct_trainingjob, make_admission_mix

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.api.v1alpha1.aifactory import NodePool
from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.devcluster.cluster import start_component, stop_component
from aifactory_operator.devcluster.layout import Layout, find_repo_root
from aifactory_operator.kube.client import Kube
from aifactory_operator.launcher import OperatorProcess
from aifactory_operator.reconcile.webhook_objects import AUDIT_TAP_NAME, VALIDATING_NAME

METRICS_PORT = 18190
KUEUE_PORT_BASE = 18195
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


def delete_at_once(kube: Kube, namespace: str) -> None:
    """Every Job and Pod of the namespace in collection deletes of 200, pods without grace:
    deleting thousands of pods one by one through the namespace controller takes longer than the
    benchmark. A collection delete that outlasts kube-apiserver's deadline goes on there; the
    loop then looks again."""
    batch, core = k8s.BatchV1Api(kube.api_client), k8s.CoreV1Api(kube.api_client)
    while kube.list("batch/v1", "Job", namespace=namespace):
        with contextlib.suppress(ApiException):
            batch.delete_collection_namespaced_job(namespace, propagation_policy="Orphan", limit=200)
    while kube.list("v1", "Pod", namespace=namespace):
        with contextlib.suppress(ApiException):
            core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0, limit=200)


def seen_from(items: list[Decided], start: datetime) -> list[Decided]:
    """Waits counted from when the decider started, for items queued before it."""
    return [replace(i, created=max(i.created, start)) for i in items]


def whole_seconds_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def measure_plain_deep(
    layout: Layout, kube: Kube, gangs: list[Gang], namespace: str, pool: NodePool, factory: str, window: float
) -> dict[str, Any]:
    """kube-scheduler started in front of every plain Job's pods, created while it was stopped."""
    repo = find_repo_root(Path.cwd())
    create_namespace(kube, namespace)
    stop_component(layout, "kube-scheduler")
    try:
        creation = create_all(
            layout.kubeconfig, [construct_plain_job(g, namespace, pool, factory) for g in gangs]
        )
        pods = sum(g.nodes for g in gangs)
        wait(lambda: len(kube.list("v1", "Pod", namespace=namespace)) >= pods, f"{pods} pending pods")
    finally:
        start = whole_seconds_now()
        start_component(repo, layout, "kube-scheduler")
    time.sleep(window + GRACE_SECONDS)
    jobs = kube.list("batch/v1", "Job", namespace=namespace)
    pods_now = kube.list("v1", "Pod", namespace=namespace)
    return {
        **creation,
        "pod_bindings": summarize(seen_from(pod_decisions(pods_now), start), window),
        "jobs_with_every_pod_bound": summarize(seen_from(job_decisions(jobs, pods_now), start), window),
    }


def measure_operator_deep(
    layout: Layout, kube: Kube, operator: OperatorProcess, gangs: list[Gang], namespace: str, window: float
) -> dict[str, Any]:
    """The operator started in front of every TrainingJob, created while it was stopped."""
    operator.stop()
    for kind, name in (
        ("ValidatingWebhookConfiguration", VALIDATING_NAME),
        ("MutatingWebhookConfiguration", AUDIT_TAP_NAME),
    ):
        kube.delete("admissionregistration.k8s.io/v1", kind, name)
    creation = create_all(layout.kubeconfig, [construct_trainingjob(g, namespace, POOL) for g in gangs])
    start = whole_seconds_now()
    operator.start()
    time.sleep(window + GRACE_SECONDS)
    trainingjobs = kube.list(API_VERSION, "TrainingJob", namespace=namespace)
    return {
        **creation,
        "admissions": summarize(seen_from(trainingjob_decisions(trainingjobs), start), window),
    }


def kueue_decisions(kube: Kube, namespace: str) -> list[Decided]:
    jobs = kube.list("batch/v1", "Job", namespace=namespace)
    return workload_decisions(jobs, kube.list("kueue.x-k8s.io/v1beta2", "Workload", namespace=namespace))


def measure_kueue(
    layout: Layout,
    kube: Kube,
    factory: AIFactory,
    gangs: list[Gang],
    namespace: str,
    window: float,
    deep: bool,
) -> dict[str, Any]:
    """Kueue: each gang as the suspended Job it admits; decisions are Workload admissions. Deep:
    every Job queued while Kueue is stopped, the window from its start."""
    create_namespace(kube, namespace)
    pool = factory.spec.node_pools[0]
    view = with_namespaces(factory, {factory.spec.tenants[0].namespaces[0]: namespace})
    bodies = [kueue_job(construct_plain_job(g, namespace, pool, factory.name), 0) for g in gangs]
    with kueue_peer(
        layout.kubeconfig, layout.root / "kueue", kube, view, KUEUE_PORT_BASE, launch=not deep
    ) as kueue:
        if deep:
            creation = create_all(layout.kubeconfig, bodies)
            start = whole_seconds_now()
            kueue.launch()
            cpu_before = kueue.cpu_seconds()
            time.sleep(window + GRACE_SECONDS)
            decisions = seen_from(kueue_decisions(kube, namespace), start)
        else:
            cpu_before = kueue.cpu_seconds()
            creation = create_in_window(kube, bodies, window)
            decisions = kueue_decisions(kube, namespace)
        cpu, rss = kueue.cpu_seconds() - cpu_before, kueue.peak_rss_kib()
        delete_at_once(kube, namespace)
    return {
        **creation,
        "version": kueue_version(),
        "admissions": summarize(decisions, window),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_mib": round(rss / 1024, 1),
    }


def run(
    jobs: int, nodes: int, window: float, deep_queue: bool = False, seed: int = 1, kueue: bool = True
) -> dict[str, Any]:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name, namespace, plain = f"abench-{stamp}", f"abench-{stamp}", f"aplain-{stamp}"
    queued = f"akueue-{stamp}"
    gangs = make_admission_mix(jobs, seed)
    operator = start_operator(layout, "operator-admission-bench.log", METRICS_PORT)
    try:
        factory = create_factory(kube, admission_factory(name, namespace, nodes))
        # The baseline has the machine to itself: kube-scheduler alone, no operator on the CPUs.
        operator.stop()
        pool = factory.spec.node_pools[0]
        if deep_queue:
            baseline = measure_plain_deep(layout, kube, gangs, plain, pool, name, window)
        else:
            baseline = measure_plain(kube, gangs, plain, pool, name, window)
        print(json.dumps({"baseline": baseline}), file=sys.stderr, flush=True)
        if deep_queue:
            delete_at_once(kube, plain)
        delete_and_wait(kube, "v1", "Namespace", plain)
        peer = measure_kueue(layout, kube, factory, gangs, queued, window, deep_queue) if kueue else None
        if peer:
            print(json.dumps({"kueue": peer}), file=sys.stderr, flush=True)
        operator.start()
        wait(lambda: is_training_loop_running(METRICS_PORT, name), "the operator's training loop")
        if deep_queue:
            ours = measure_operator_deep(layout, kube, operator, gangs, namespace, window)
        else:
            ours = measure_operator(kube, gangs, namespace, window)
        print(json.dumps({"operator": ours}), file=sys.stderr, flush=True)
        # At the end of the window, while gangs still finish and others are admitted in their place.
        audit = audit_figures(kube, [namespace], f"{LABEL_FACTORY}={name}")
        delete_and_wait(kube, API_VERSION, "AIFactory", name)
        delete_and_wait(kube, "v1", "Namespace", namespace)
    finally:
        operator.stop()
    return {
        "jobs": jobs,
        "nodes": nodes,
        "seed": seed,
        "gpus": nodes * 8,
        "workers_requested": sum(g.nodes for g in gangs),
        "window_seconds": window,
        "deep_queue": deep_queue,
        "measured": (
            "every job created before the decider started; decisions within window_seconds of its"
            " start; waits from its start"
            if deep_queue
            else "decisions within window_seconds of the first creation; rates over first creation"
            " to last decision in the window; waits and queue lengths from API timestamps"
        ),
        "timestamp_resolution_seconds": RESOLUTION_SECONDS,
        "operator": ours,
        "baseline_kube_scheduler_plain_jobs": baseline,
        "ratio_gang_decisions_per_second_operator_to_baseline": ratio(
            ours["admissions"]["decisions_per_second"],
            baseline["jobs_with_every_pod_bound"]["decisions_per_second"],
        ),
        **(peer_figures(peer, ours) if peer else {}),
        **audit,
    }


def peer_figures(peer: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    return {
        "kueue": peer,
        "ratio_gang_decisions_per_second_operator_to_kueue": ratio(
            ours["admissions"]["decisions_per_second"], peer["admissions"]["decisions_per_second"]
        ),
        "ratio_workers_per_second_operator_to_kueue": ratio(
            ours["admissions"]["workers_per_second"], peer["admissions"]["workers_per_second"]
        ),
    }


def ratio(ours: float, baseline: float) -> float | None:
    return round(ours / baseline, 2) if baseline else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--window", type=float, default=120, help="seconds measured on each side")
    parser.add_argument("--deep-queue", action="store_true", help="create every job before deciding")
    parser.add_argument("--seed", type=int, default=1, help="draws the mix of gangs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-kueue", action="store_true", help="skip the Kueue runner (kueue_peer.py)")
    args = parser.parse_args()
    result = run(args.jobs, args.nodes, args.window, args.deep_queue, args.seed, kueue=not args.no_kueue)
    return report(result, args.json)


if __name__ == "__main__":
    sys.exit(run_interruptible(main))
