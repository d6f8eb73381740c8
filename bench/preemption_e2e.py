"""High-priority time to start with preemption, on the real control plane: a pool full of
low-priority gangs that checkpoint through their grace period, then urgent gangs that fit only if
some of them stop. The same gangs go through three runners in the same run, one after the other on
the same pool:

- the operator: TrainingJobs with priority classes, the factory preempting LowerPriority within
  the tenant (minRuntimeSeconds 0);
- Kueue (kueue_peer.py): the same gang Jobs with WorkloadPriorityClasses of the same values, its
  ClusterQueue preempting LowerPriority within itself (from the same factory spec);
- kube-scheduler alone: the same Jobs with the PriorityClass on their pods, so that it preempts
  pod by pod.

Every runner's workers get the same grace period (--grace) and use all of it, as trainers writing
a checkpoint would (sim.aifactory.dev/checkpoint-on-stop), so the floor of any time to start is
that grace period. Reported per runner: each urgent gang's seconds from its creation to all its
workers Running (p50 and max), the seconds until every urgent gang ran, and the GPUs of the
low-priority workers stopped, against the GPUs the urgent gangs needed (more is over-preemption).

Usage: python bench/preemption_e2e.py [--nodes 32] [--urgent 6] [--grace 10] [--no-kueue]
       [--json out.json]
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
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
from kueue_config import kueue_job, with_namespaces
from kueue_peer import kueue_peer
from kueue_peer import version as kueue_version
from timeline import percentile
from workload import Gang, construct_plain_job, construct_trainingjob

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.constants import API_VERSION, GPU_RESOURCE, LABEL_TRAININGJOB
from aifactory_operator.kube.client import Kube

METRICS_PORT = 18192
KUEUE_PORT_BASE = 18197
POOL = "h100"
PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPUS_PER_NODE = 8
LOW, URGENT = ("bench-low", 10), ("bench-urgent", 1000)
CHECKPOINT = {"sim.aifactory.dev/checkpoint-on-stop": "true"}
HOUR = 3600
Bodies = Callable[[list[Gang], tuple[str, int]], list[dict[str, Any]]]


def preemption_factory(name: str, namespace: str, nodes: int, grace: int) -> dict[str, Any]:
    """One pool and one tenant owning all of it, preempting lower priorities at once."""
    pool = {
        "name": POOL,
        "gpuProduct": PRODUCT,
        "gpusPerNode": GPUS_PER_NODE,
        "nodes": nodes,
        "region": "de-fra",
    }
    tenant = {
        "name": "bench",
        "namespaces": [namespace],
        "clearance": "internal",
        "gpuQuota": [{"product": PRODUCT, "gpus": nodes * GPUS_PER_NODE}],
        "priorityClasses": [LOW[0], URGENT[0]],
    }
    body = factory_body(name, "de-fra", pools=[pool], tenants=[tenant])
    body["spec"]["scheduling"] = {
        "preemption": {"withinTenant": "LowerPriority", "reclaim": "Never"},
        "minRuntimeSeconds": 0,
        "gracePeriodSeconds": grace,
    }
    return body


def low_gangs(nodes: int) -> list[Gang]:
    """Gangs of 2 and 1 whole nodes that fill the pool exactly, running for an hour."""
    sizes = [2] * (nodes // 4) + [1] * (nodes - 2 * (nodes // 4))
    return [Gang(f"low-{i}", n, GPUS_PER_NODE, HOUR) for i, n in enumerate(sizes)]


def urgent_gangs(count: int, nodes: int) -> list[Gang]:
    """Urgent gangs of 1, 2 and 4 whole nodes, together at most half the pool."""
    gangs, used = [], 0
    for i in range(count):
        size = (1, 2, 4)[i % 3]
        if used + size > nodes // 2:
            break
        gangs.append(Gang(f"urgent-{i}", size, GPUS_PER_NODE, HOUR))
        used += size
    return gangs


def with_checkpoints(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"].setdefault("annotations", {}).update(CHECKPOINT)
    return body


def trainingjobs(namespace: str) -> Bodies:
    def bodies(gangs: list[Gang], priority: tuple[str, int]) -> list[dict[str, Any]]:
        out = []
        for g in gangs:
            body = with_checkpoints(construct_trainingjob(g, namespace, POOL))
            body["spec"]["priorityClassName"] = priority[0]
            out.append(body)
        return out

    return bodies


def gang_jobs(namespace: str, factory: AIFactory, grace: int, kueue: bool) -> Bodies:
    """The Jobs our operator would render for the gangs: for Kueue in its queue with the priority
    as a WorkloadPriorityClass, for kube-scheduler with the PriorityClass on the pods."""
    pool = factory.spec.node_pools[0]

    def bodies(gangs: list[Gang], priority: tuple[str, int]) -> list[dict[str, Any]]:
        out = []
        for g in gangs:
            job = construct_plain_job(g, namespace, pool, factory.name)
            template = job["spec"]["template"]
            template["metadata"]["annotations"].update(CHECKPOINT)
            template["spec"]["terminationGracePeriodSeconds"] = grace
            if kueue:
                out.append(kueue_job(job, priority[1], "preferred", "rack"))
            else:
                template["spec"]["priorityClassName"] = priority[0]
                out.append(job)
        return out

    return bodies


def running_workers(kube: Kube, namespace: str) -> dict[str, dict[str, int]]:
    """Gang -> running worker (pod uid) -> its GPUs, of the pods not being deleted."""
    gangs: dict[str, dict[str, int]] = {}
    for pod in kube.list("v1", "Pod", namespace=namespace):
        meta = pod["metadata"]
        if (pod.get("status") or {}).get("phase") != "Running" or meta.get("deletionTimestamp"):
            continue
        gpus = sum(
            int(c.get("resources", {}).get("requests", {}).get(GPU_RESOURCE, 0))
            for c in pod["spec"]["containers"]
        )
        gangs.setdefault((meta.get("labels") or {}).get(LABEL_TRAININGJOB, ""), {})[meta["uid"]] = gpus
    return gangs


def measure(
    kube: Kube, namespace: str, bodies: Bodies, low: list[Gang], urgent: list[Gang], give_up: float
) -> dict[str, Any]:
    """Fills the pool with the low gangs, then creates the urgent ones and times each to Running."""
    for body in bodies(low, LOW):
        kube.apply(body)
    low_workers = sum(g.nodes for g in low)
    wait(lambda: sum(map(len, running_workers(kube, namespace).values())) >= low_workers, "the low gangs")
    filled = running_workers(kube, namespace)
    started = time.monotonic()
    created: dict[str, float] = {}
    for gang, body in zip(urgent, bodies(urgent, URGENT), strict=True):
        kube.apply(body)
        created[gang.name] = time.monotonic()
    ran: dict[str, float] = {}
    sizes = {g.name: g.nodes for g in urgent}
    while len(ran) < len(urgent) and time.monotonic() - started < give_up:
        now = running_workers(kube, namespace)
        at = time.monotonic()
        for name, size in sizes.items():
            if name not in ran and len(now.get(name, {})) >= size:
                ran[name] = at - created[name]
        time.sleep(0.25)
    now = running_workers(kube, namespace)
    stopped = sum(
        gpus for gang, pods in filled.items() for uid, gpus in pods.items() if uid not in now.get(gang, {})
    )
    waits = sorted(ran.values())
    return {
        "urgent_gangs_running": len(ran),
        "time_to_start_p50_seconds": round(percentile(waits, 0.5), 1) if waits else None,
        "time_to_start_max_seconds": round(waits[-1], 1) if waits else None,
        "seconds_until_every_urgent_gang_ran": (
            round(max(created[n] + s for n, s in ran.items()) - started, 1)
            if len(ran) == len(urgent)
            else None
        ),
        "low_priority_gpus_stopped": stopped,
        "urgent_gpus_needed": sum(g.nodes * g.gpus_per_node for g in urgent),
        **({} if len(ran) == len(urgent) else {"gave_up_waiting_for": f"urgent gangs in {namespace}"}),
    }


def create_priority_classes(kube: Kube) -> None:
    for name, value in (LOW, URGENT):
        kube.apply(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "preemptionPolicy": "PreemptLowerPriority",
                "description": "a priority of the preemption benchmark",
            }
        )


def run(nodes: int, urgent_count: int, grace: int, kueue: bool = True) -> dict[str, Any]:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name, namespace = f"pbench-{stamp}", f"pbench-{stamp}"
    plain, queued = f"pplain-{stamp}", f"pkueue-{stamp}"
    low, urgent = low_gangs(nodes), urgent_gangs(urgent_count, nodes)
    give_up = 20 * grace + 120
    create_priority_classes(kube)
    operator = start_operator(layout, "operator-preemption-bench.log", METRICS_PORT)
    results: dict[str, Any] = {}
    try:
        factory = create_factory(kube, preemption_factory(name, namespace, nodes, grace))
        operator.stop()  # each peer has the pool to itself
        create_namespace(kube, plain)
        results["baseline_kube_scheduler_plain_jobs"] = measure(
            kube, plain, gang_jobs(plain, factory, grace, kueue=False), low, urgent, give_up
        )
        delete_and_wait(kube, "v1", "Namespace", plain)
        if kueue:
            create_namespace(kube, queued)
            view = with_namespaces(factory, {namespace: queued})
            with kueue_peer(
                layout.kubeconfig, layout.root / "kueue", kube, view, KUEUE_PORT_BASE, [LOW[1], URGENT[1]]
            ):
                results["kueue"] = measure(
                    kube, queued, gang_jobs(queued, factory, grace, kueue=True), low, urgent, give_up
                )
        operator.start()
        wait(lambda: is_training_loop_running(METRICS_PORT, name), "the operator's training loop")
        results["operator"] = measure(kube, namespace, trainingjobs(namespace), low, urgent, give_up)
        delete_and_wait(kube, API_VERSION, "AIFactory", name)
        delete_and_wait(kube, "v1", "Namespace", namespace)
    finally:
        operator.stop()
    return {
        "nodes": nodes,
        "gpus": nodes * GPUS_PER_NODE,
        "grace_period_seconds": grace,
        "low_gangs": len(low),
        "urgent_gangs": len(urgent),
        **results,
        **({"kueue_version": kueue_version()} if kueue else {}),
        **ratios(results),
        **gave_up(results),
    }


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    ours, out = results["operator"], {}
    for peer, key in (("kueue", "kueue"), ("baseline_kube_scheduler_plain_jobs", "kube_scheduler")):
        theirs = results.get(peer, {}).get("seconds_until_every_urgent_gang_ran")
        mine = ours.get("seconds_until_every_urgent_gang_ran")
        out[f"ratio_seconds_until_every_urgent_gang_ran_operator_to_{key}"] = (
            round(mine / theirs, 2) if mine and theirs else None
        )
    return out


def gave_up(results: dict[str, Any]) -> dict[str, Any]:
    """Only the operator giving up fails the run; a peer that gives up is a figure."""
    return (
        {"gave_up_waiting_for": results["operator"]["gave_up_waiting_for"]}
        if "gave_up_waiting_for" in results["operator"]
        else {}
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--urgent", type=int, default=6, help="urgent gangs (1, 2 and 4 nodes in turn)")
    parser.add_argument("--grace", type=int, default=10, help="every worker's grace period, all of it used")
    parser.add_argument("--no-kueue", action="store_true", help="skip the Kueue runner (kueue_peer.py)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    return report(run(args.nodes, args.urgent, args.grace, kueue=not args.no_kueue), args.json)


if __name__ == "__main__":
    sys.exit(run_interruptible(main))
