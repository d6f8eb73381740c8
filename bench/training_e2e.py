"""Time from creating N TrainingJobs to all their pods Running through the operator, against the
same Jobs and Services created directly by one client (no admission), in the same run; plus the
operator's API writes per TrainingJob.

Usage: python bench/training_e2e.py [--jobs 200] [--nodes 100] [--json out.json]
"""

import argparse
import sys
import time
from pathlib import Path

from common import (
    OPERATOR_AGENTS,
    audit_offset,
    factory_body,
    is_ready,
    operator_gc_seconds,
    operator_writes,
    report,
    requests_by_verb,
    run_interruptible,
    start_cluster,
    wait,
)

from aifactory_operator.api.v1alpha1 import AIFactory, TrainingJob
from aifactory_operator.constants import API_VERSION
from aifactory_operator.kube.client import Kube
from aifactory_operator.launcher import OperatorProcess
from aifactory_operator.reconcile.training_objects import construct_job, construct_service, needs_service

METRICS_PORT = 18091


def training_factory(name: str, namespace: str, nodes: int) -> dict:
    pool = {
        "name": "h100",
        "gpuProduct": "NVIDIA-H100-80GB-HBM3",
        "gpusPerNode": 8,
        "nodes": nodes,
        "region": "de-fra",
    }
    tenant = {
        "name": "bench",
        "namespaces": [namespace],
        "clearance": "internal",
        "gpuQuota": [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": nodes * 8}],
    }
    return factory_body(name, "de-fra", pools=[pool], tenants=[tenant])


# Mixed gang sizes (nodes, GPUs per node), cycled: 1.5 GPUs and 1.25 pods per job on average, so
# 1,000 jobs take 73% of 256 eight-GPU nodes. The plain Jobs of the baseline need that slack: with
# 92% taken (4-GPU jobs in the mix), kube-scheduler's spreading left 30 pods that fit nowhere.
SIZES = [(1, 1), (1, 2), (2, 1), (1, 1), (1, 1), (1, 2), (2, 1), (1, 1)]


def pods_of(jobs: int) -> int:
    return sum(SIZES[i % len(SIZES)][0] for i in range(jobs))


def training_body(name: str, namespace: str, index: int) -> dict:
    nodes, gpus = SIZES[index % len(SIZES)]
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


def running_pods(kube: Kube, namespace: str) -> int:
    return sum(
        p.get("status", {}).get("phase") == "Running" for p in kube.list("v1", "Pod", namespace=namespace)
    )


def wait_running(kube: Kube, namespace: str, count: int) -> None:
    wait(lambda: running_pods(kube, namespace) >= count, f"{count} running pods in {namespace}")


def run(jobs: int, nodes: int) -> dict:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name, namespace, direct_ns = f"tbench-{stamp}", f"tbench-{stamp}", f"tdirect-{stamp}"
    operator = OperatorProcess(
        layout.kubeconfig, layout.logs / "operator-bench.log", verbose=False, metrics_port=METRICS_PORT
    )
    operator.start()
    try:
        kube.apply(training_factory(name, namespace, nodes))
        wait(lambda: is_ready(kube.get(API_VERSION, "AIFactory", name) or {}), "the factory")
        factory = AIFactory.model_validate(kube.get(API_VERSION, "AIFactory", name))
        pool = factory.spec.node_pools[0]

        # Baseline: the same Services and Jobs, created directly, placed by kube-scheduler alone.
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": direct_ns}})
        time.sleep(2)
        started = time.monotonic()
        for i in range(jobs):
            body = training_body(f"job-{i}", direct_ns, i)
            body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
            model = TrainingJob.model_validate(body)
            # What a client would write: the pool's selector and tolerations, no node pinning.
            job = construct_job(model, pool, name, [], 0)
            job["spec"]["template"]["spec"]["affinity"].pop("nodeAffinity")
            for obj in ([construct_service(model)] if needs_service(model) else []) + [job]:
                obj["metadata"].pop("ownerReferences")
                kube.apply(obj)
        baseline_created = time.monotonic() - started
        wait_running(kube, direct_ns, pods_of(jobs))
        baseline_seconds = time.monotonic() - started
        # The baseline's pods must be gone before the operator is timed, or it pays for their deletion.
        kube.delete("v1", "Namespace", direct_ns)
        wait(lambda: kube.get("v1", "Namespace", direct_ns) is None, "the baseline namespace gone")

        writes_before, gc_before = operator_writes(METRICS_PORT), operator_gc_seconds(METRICS_PORT)
        audit_from, cpu_before = audit_offset(layout), operator.cpu_seconds()
        started = time.monotonic()
        for i in range(jobs):
            kube.apply(training_body(f"job-{i}", namespace, i))
        operator_created = time.monotonic() - started
        wait_running(kube, namespace, pods_of(jobs))
        operator_seconds = time.monotonic() - started
        writes = operator_writes(METRICS_PORT) - writes_before
        gc_seconds = operator_gc_seconds(METRICS_PORT) - gc_before
        by_verb = requests_by_verb(layout, audit_from, OPERATOR_AGENTS)
        cpu = operator.cpu_seconds() - cpu_before
        rss = operator.peak_rss_kib()
        kube.delete(API_VERSION, "AIFactory", name)
    finally:
        operator.stop()
    return {
        "jobs": jobs,
        "nodes": nodes,
        "operator_seconds_to_all_running": round(operator_seconds, 1),
        "baseline_direct_jobs_seconds_to_all_running": round(baseline_seconds, 1),
        "ratio_operator_to_baseline": round(operator_seconds / baseline_seconds, 2),
        # The client creates one object at a time, so create latency (our webhooks) is part of both.
        "operator_client_seconds_creating_trainingjobs": round(operator_created, 1),
        "baseline_client_seconds_creating_jobs_and_services": round(baseline_created, 1),
        "throughput_ratio_baseline_over_operator": round(baseline_seconds / operator_seconds, 2),
        "operator_writes_per_trainingjob": round(writes / jobs, 2),
        "operator_peak_rss_mib": round(rss / 1024, 1),
        "operator_cpu_seconds": round(cpu, 1),
        "operator_gc_cpu_seconds": round(gc_seconds, 1),
        "api_requests_per_trainingjob_by_verb": {v: round(n / jobs, 2) for v, n in sorted(by_verb.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    return report(run(args.jobs, args.nodes), args.json)


if __name__ == "__main__":
    sys.exit(run_interruptible(main))
