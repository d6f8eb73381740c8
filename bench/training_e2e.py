"""Time from creating N TrainingJobs to all their pods Running through the operator, against the
same Jobs and Services created directly by one client (no admission), and against the same gang
Jobs admitted by Kueue (kueue_peer.py; --no-kueue skips it), in the same run; plus each
controller's API writes per job, CPU seconds and peak memory.

Each run ends with the gang audit (bench/gang_audit.py): stuck_gangs, double_booked_nodes and
placement_mismatches must all be 0, and a wait for the pods gives up after --give-up-per-job seconds
per job; either makes the run exit non-zero once its JSON is written.

With --tenants N the jobs go round-robin to N tenants, a namespace each, sharing the pool's GPUs
equally: Kueue then has a ClusterQueue per tenant and admits a head of each per scheduling cycle.

Usage: python bench/training_e2e.py [--jobs 200] [--nodes 100] [--seed 1] [--give-up-per-job 0.3]
       [--tenants 1] [--no-kueue] [--json out.json]
"""

import argparse
import random
import sys
import time
from pathlib import Path

from common import (
    GIVE_UP_MIN_SECONDS,
    GIVE_UP_SECONDS_PER_JOB,
    OPERATOR_AGENTS,
    audit_figures,
    audit_offset,
    factory_body,
    give_up_seconds,
    is_ready,
    operator_gc_seconds,
    operator_writes,
    report,
    requests_by_verb,
    run_interruptible,
    start_cluster,
    wait,
    wait_until,
)
from kueue_config import kueue_job, with_namespaces
from kueue_peer import kueue_peer
from kueue_peer import version as kueue_version

from aifactory_operator.api.v1alpha1 import AIFactory, TrainingJob
from aifactory_operator.api.v1alpha1.aifactory import NodePool
from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.devcluster.layout import Layout
from aifactory_operator.kube.client import Kube
from aifactory_operator.launcher import OperatorProcess
from aifactory_operator.reconcile.training_objects import construct_job, construct_service, needs_service

METRICS_PORT = 18091
KUEUE_PORT_BASE = 18095
KUEUE_AGENTS = ("kueue",)
KUEUE_PATIENCE = 5
WRITE_VERBS = ("create", "update", "patch", "delete")


def training_factory(name: str, namespaces: list[str], nodes: int) -> dict:
    """One pool; a tenant per namespace, the pool's GPUs shared equally (rounded up), in one cohort
    (Kueue: a ClusterQueue per tenant, so its scheduling cycle has a head per tenant)."""
    pool = {
        "name": "h100",
        "gpuProduct": "NVIDIA-H100-80GB-HBM3",
        "gpusPerNode": 8,
        "nodes": nodes,
        "region": "de-fra",
    }
    share = -(-nodes * 8 // len(namespaces))
    tenants = [
        {
            "name": "bench" if len(namespaces) == 1 else f"bench-{i}",
            "namespaces": [namespace],
            "clearance": "internal",
            "gpuQuota": [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": share}],
        }
        for i, namespace in enumerate(namespaces)
    ]
    return factory_body(name, "de-fra", pools=[pool], tenants=tenants)


# Mixed gang sizes (nodes, GPUs per node), cycled: 1.5 GPUs and 1.25 pods per job on average, so
# 1,000 jobs take 73% of 256 eight-GPU nodes. The plain Jobs of the baseline need that slack: with
# 92% taken (4-GPU jobs in the mix), kube-scheduler's spreading left 30 pods that fit nowhere.
SIZES = [(1, 1), (1, 2), (2, 1), (1, 1), (1, 1), (1, 2), (2, 1), (1, 1)]


def gang_sizes(jobs: int, seed: int) -> list[tuple[int, int]]:
    """The cycled mix in an order drawn from `seed`: every seed asks for the same GPUs and pods,
    so runs stay comparable, and admits in another order (issue 20's race hid in one order)."""
    sizes = [SIZES[i % len(SIZES)] for i in range(jobs)]
    random.Random(seed).shuffle(sizes)
    return sizes


def training_body(name: str, namespace: str, size: tuple[int, int]) -> dict:
    nodes, gpus = size
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"sim.aifactory.dev/duration": "600s"},
        },
        "spec": {
            "image": "registry.factory.internal/t:1",
            "nodes": nodes,
            "gpusPerNode": gpus,
            "pool": "h100",
        },
    }


def running_pods(kube: Kube, namespaces: list[str]) -> int:
    return sum(
        p.get("status", {}).get("phase") == "Running"
        for namespace in namespaces
        for p in kube.list("v1", "Pod", namespace=namespace)
    )


def wait_running(kube: Kube, namespaces: list[str], count: int, give_up: float) -> dict:
    """Empty once `count` pods run; what was awaited and how far it got if that took `give_up` s."""
    if wait_until(lambda: running_pods(kube, namespaces) >= count, give_up):
        return {}
    return {
        "gave_up_waiting_for": f"{count} running pods in {', '.join(namespaces)}",
        "running_pods_when_given_up": running_pods(kube, namespaces),
    }


def create_namespaces(kube: Kube, namespaces: list[str]) -> None:
    for namespace in namespaces:
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def delete_namespaces(kube: Kube, namespaces: list[str]) -> None:
    for namespace in namespaces:
        kube.delete("v1", "Namespace", namespace)
    wait(lambda: all(kube.get("v1", "Namespace", n) is None for n in namespaces), "the namespaces gone")


def plain_jobs(
    sizes: list[tuple[int, int]], namespaces: list[str], pool: NodePool, factory: str
) -> list[dict]:
    """What a client would write: the pool's selector and tolerations, no node pinning, no owner;
    job i in namespace i mod their count (a tenant each)."""
    objects = []
    for i, size in enumerate(sizes):
        body = training_body(f"job-{i}", namespaces[i % len(namespaces)], size)
        body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
        model = TrainingJob.model_validate(body)
        job = construct_job(model, pool, factory, [], 0)
        job["spec"]["template"]["spec"]["affinity"].pop("nodeAffinity")
        for obj in ([construct_service(model)] if needs_service(model) else []) + [job]:
            obj["metadata"].pop("ownerReferences")
            objects.append(obj)
    return objects


def measure_baseline(
    kube: Kube,
    sizes: list[tuple[int, int]],
    namespaces: list[str],
    pool: NodePool,
    factory: str,
    give_up: float,
) -> dict:
    """The same Services and Jobs, created directly, placed by kube-scheduler alone."""
    create_namespaces(kube, namespaces)
    time.sleep(2)
    started = time.monotonic()
    for obj in plain_jobs(sizes, namespaces, pool, factory):
        kube.apply(obj)
    created = time.monotonic() - started
    gave_up = wait_running(kube, namespaces, sum(n for n, _ in sizes), give_up)
    seconds = time.monotonic() - started
    # The baseline's pods must be gone before the operator is timed, or it pays for their deletion.
    delete_namespaces(kube, namespaces)
    return {"seconds": seconds, "created": created, **gave_up}


def measure_kueue(
    layout: Layout,
    kube: Kube,
    factory: AIFactory,
    sizes: list[tuple[int, int]],
    namespaces: list[str],
    give_up: float,
) -> dict:
    """The same Services and gang Jobs, admitted by Kueue (kueue_peer.py) in a ClusterQueue per
    tenant with its quota, placed by its topology-aware scheduling (rack preferred, as our default)."""
    create_namespaces(kube, namespaces)
    ours = [n for t in factory.spec.tenants for n in t.namespaces]
    view = with_namespaces(factory, dict(zip(ours, namespaces, strict=True)))
    pool = factory.spec.node_pools[0]
    with kueue_peer(layout.kubeconfig, layout.root / "kueue", kube, view, KUEUE_PORT_BASE) as kueue:
        time.sleep(2)
        cpu_before, audit_from = kueue.cpu_seconds(), audit_offset(layout)
        started = time.monotonic()
        for obj in plain_jobs(sizes, namespaces, pool, factory.name):
            kube.apply(kueue_job(obj, 0, "preferred", "rack") if obj["kind"] == "Job" else obj)
        created = time.monotonic() - started
        # Five times the operator's budget: Kueue admits one workload per ClusterQueue per
        # scheduling cycle, so a single tenant's deep queue takes it longer, and the figure is
        # worth more than a give-up.
        gave_up = wait_running(kube, namespaces, sum(n for n, _ in sizes), KUEUE_PATIENCE * give_up)
        seconds = time.monotonic() - started
        cpu, rss = kueue.cpu_seconds() - cpu_before, kueue.peak_rss_kib()
        by_verb = requests_by_verb(layout, audit_from, KUEUE_AGENTS)
    return {
        "seconds": seconds,
        "created": created,
        "cpu_seconds": round(cpu, 1),
        "peak_rss_mib": round(rss / 1024, 1),
        "version": kueue_version(),
        "writes_per_job": round(sum(by_verb.get(v, 0) for v in WRITE_VERBS) / len(sizes), 2),
        "by_verb": {v: round(n / len(sizes), 2) for v, n in sorted(by_verb.items())},
        **gave_up,
    }


def measure_operator(
    layout: Layout,
    kube: Kube,
    operator: OperatorProcess,
    sizes: list[tuple[int, int]],
    namespaces: list[str],
    give_up: float,
) -> dict:
    """The TrainingJobs through the operator, with what it cost it."""
    jobs = len(sizes)
    writes_before, gc_before = operator_writes(METRICS_PORT), operator_gc_seconds(METRICS_PORT)
    audit_from, cpu_before = audit_offset(layout), operator.cpu_seconds()
    started = time.monotonic()
    for i, size in enumerate(sizes):
        kube.apply(training_body(f"job-{i}", namespaces[i % len(namespaces)], size))
    created = time.monotonic() - started
    gave_up = wait_running(kube, namespaces, sum(n for n, _ in sizes), give_up)
    seconds = time.monotonic() - started
    writes = operator_writes(METRICS_PORT) - writes_before
    by_verb = requests_by_verb(layout, audit_from, OPERATOR_AGENTS)
    return {
        "seconds": seconds,
        "created": created,
        "writes_per_trainingjob": round(writes / jobs, 2),
        "peak_rss_mib": round(operator.peak_rss_kib() / 1024, 1),
        "cpu_seconds": round(operator.cpu_seconds() - cpu_before, 1),
        "gc_cpu_seconds": round(operator_gc_seconds(METRICS_PORT) - gc_before, 1),
        "by_verb": {v: round(n / jobs, 2) for v, n in sorted(by_verb.items())},
        **gave_up,
    }


def peer_figures(kueue: dict, ours: dict) -> dict:
    """Kueue beside the operator, from the same run: its timings None when either side gave up."""
    done = "gave_up_waiting_for" not in ours and "gave_up_waiting_for" not in kueue

    def timed(value: float, digits: int) -> float | None:
        return round(value, digits) if done else None

    return {
        "kueue_version": kueue["version"],
        "kueue_seconds_to_all_running": timed(kueue["seconds"], 1),
        "ratio_operator_to_kueue": timed(ours["seconds"] / kueue["seconds"], 2),
        "kueue_client_seconds_creating_jobs_and_services": round(kueue["created"], 1),
        "kueue_writes_per_job": kueue["writes_per_job"],
        "kueue_api_requests_per_job_by_verb": kueue["by_verb"],
        "kueue_cpu_seconds": kueue["cpu_seconds"],
        "kueue_peak_rss_mib": kueue["peak_rss_mib"],
        "ratio_operator_cpu_to_kueue": round(ours["cpu_seconds"] / max(kueue["cpu_seconds"], 0.1), 2),
        **(
            {"kueue_gave_up_waiting_for": kueue["gave_up_waiting_for"]}
            if not done and "gave_up_waiting_for" in kueue
            else {}
        ),
    }


def figures(baseline: dict, ours: dict) -> dict:
    """The result's figures, under the names BENCHMARKS.md has always shown; the timings are None
    when the operator's side gave up (the baseline's giving up ends the run before)."""
    done = "gave_up_waiting_for" not in ours

    def timed(value: float, digits: int) -> float | None:
        return round(value, digits) if done else None

    return {
        "operator_seconds_to_all_running": timed(ours["seconds"], 1),
        "baseline_direct_jobs_seconds_to_all_running": timed(baseline["seconds"], 1),
        "ratio_operator_to_baseline": timed(ours["seconds"] / baseline["seconds"], 2),
        # The client creates one object at a time, so create latency (our webhooks) is part of both.
        "operator_client_seconds_creating_trainingjobs": round(ours["created"], 1),
        "baseline_client_seconds_creating_jobs_and_services": round(baseline["created"], 1),
        "throughput_ratio_baseline_over_operator": timed(baseline["seconds"] / ours["seconds"], 2),
        "operator_writes_per_trainingjob": ours["writes_per_trainingjob"],
        "operator_peak_rss_mib": ours["peak_rss_mib"],
        "operator_cpu_seconds": ours["cpu_seconds"],
        "operator_gc_cpu_seconds": ours["gc_cpu_seconds"],
        "api_requests_per_trainingjob_by_verb": ours["by_verb"],
    }


def run(jobs: int, nodes: int, seed: int, give_up: float, kueue: bool = True, tenants: int = 1) -> dict:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name = f"tbench-{stamp}"

    def spaces(prefix: str) -> list[str]:
        return [f"{prefix}-{stamp}"] if tenants == 1 else [f"{prefix}-{stamp}-{i}" for i in range(tenants)]

    namespaces, direct, queued = spaces("tbench"), spaces("tdirect"), spaces("tkueue")
    sizes = gang_sizes(jobs, seed)
    result: dict = {"jobs": jobs, "nodes": nodes, "seed": seed, "give_up_seconds": give_up}
    if tenants > 1:
        result["tenants"] = tenants
    operator = OperatorProcess(
        layout.kubeconfig, layout.logs / "operator-bench.log", verbose=False, metrics_port=METRICS_PORT
    )
    operator.start()
    try:
        kube.apply(training_factory(name, namespaces, nodes))
        wait(lambda: is_ready(kube.get(API_VERSION, "AIFactory", name) or {}), "the factory")
        pool = AIFactory.model_validate(kube.get(API_VERSION, "AIFactory", name)).spec.node_pools[0]
        baseline = measure_baseline(kube, sizes, direct, pool, name, give_up)
        if "gave_up_waiting_for" in baseline:
            return result | {"gave_up_waiting_for": baseline["gave_up_waiting_for"]}
        factory = AIFactory.model_validate(kube.get(API_VERSION, "AIFactory", name))
        peer = measure_kueue(layout, kube, factory, sizes, queued, give_up) if kueue else None
        ours = measure_operator(layout, kube, operator, sizes, namespaces, give_up)
        # Before the factory goes: at the end of the run, or at the moment it gave up.
        audit = audit_figures(kube, namespaces, f"{LABEL_FACTORY}={name}")
        kube.delete(API_VERSION, "AIFactory", name)
    finally:
        operator.stop()
    gave_up = {k: v for k, v in ours.items() if k in ("gave_up_waiting_for", "running_pods_when_given_up")}
    peers = peer_figures(peer, ours) if peer else {}
    return result | figures(baseline, ours) | peers | audit | gave_up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1, help="the order the gangs are created in")
    parser.add_argument(
        "--give-up-per-job",
        type=float,
        default=GIVE_UP_SECONDS_PER_JOB,
        help=f"seconds per job to wait for all pods Running before reporting (at least {GIVE_UP_MIN_SECONDS:.0f})",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-kueue", action="store_true", help="skip the Kueue runner (kueue_peer.py)")
    parser.add_argument("--tenants", type=int, default=1, help="tenants sharing the pool, a namespace each")
    args = parser.parse_args()
    give_up = give_up_seconds(args.jobs, args.give_up_per_job)
    result = run(args.jobs, args.nodes, args.seed, give_up, kueue=not args.no_kueue, tenants=args.tenants)
    return report(result, args.json)


if __name__ == "__main__":
    sys.exit(run_interruptible(main))
