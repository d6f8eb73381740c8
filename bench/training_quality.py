"""Placement quality under a saturated queue: GPU utilisation, gangs kept within one NVLink domain
or rack, and gangs stuck half-placed, through the operator against the same jobs as plain
batch/v1 Jobs placed by kube-scheduler alone, and as gang Jobs admitted by Kueue with its
topology-aware scheduling (kueue_peer.py; --no-kueue skips it), one after the other on the same
pool in the same run.

The queue (--jobs gangs of --seconds each, a third each with required, preferred and no topology)
holds more work than the pool runs in the window. Pods are sampled about once a second for
--window seconds from the moment every job exists. The baseline runs first and Kueue second, with
the operator stopped.

Usage: python bench/training_quality.py [--jobs 200] [--nodes 64] [--window 120] [--seconds 30]
       [--no-kueue] [--json out.json]
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
    run_interruptible,
    start_cluster,
    start_operator,
    wait,
)
from kueue_config import kueue_job, with_namespaces
from kueue_peer import kueue_peer
from kueue_peer import version as kueue_version
from placement import STUCK_SAMPLES, Tally, completed_gangs, placed_whole, single_domain_share, view_pod
from workload import Gang, construct_plain_job, construct_trainingjob, make_topology_mix

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.constants import API_VERSION, LABEL_FACTORY, LABEL_NVLINK_DOMAIN, LABEL_RACK
from aifactory_operator.kube.client import Kube

METRICS_PORT = 18191
KUEUE_PORT_BASE = 18196
POOL = "h100"
PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPUS_PER_NODE = 8
NODES_PER_NVLINK_DOMAIN = 4
NVLINK_DOMAINS_PER_RACK = 2
LEVEL_LABELS = {"nvlinkDomain": LABEL_NVLINK_DOMAIN, "rack": LABEL_RACK}


def quality_factory(name: str, namespace: str, nodes: int) -> dict[str, Any]:
    """One pool in NVLink domains and racks, and one tenant whose quota covers the whole pool."""
    pool = {
        "name": POOL,
        "gpuProduct": PRODUCT,
        "gpusPerNode": GPUS_PER_NODE,
        "nodes": nodes,
        "region": "de-fra",
        "topology": {
            "nodesPerNvlinkDomain": NODES_PER_NVLINK_DOMAIN,
            "nvlinkDomainsPerRack": NVLINK_DOMAINS_PER_RACK,
        },
    }
    tenant = {
        "name": "bench",
        "namespaces": [namespace],
        "clearance": "internal",
        "gpuQuota": [{"product": PRODUCT, "gpus": nodes * GPUS_PER_NODE}],
    }
    return factory_body(name, "de-fra", pools=[pool], tenants=[tenant])


def pool_node_labels(kube: Kube, factory: str) -> dict[str, dict[str, str]]:
    return {
        n["metadata"]["name"]: n["metadata"].get("labels") or {}
        for n in kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={factory}")
    }


def observe(kube: Kube, bodies: list[dict[str, Any]], namespace: str, window: float) -> Tally:
    """Creates every job, then samples the namespace's pods about once a second for the window."""
    for body in bodies:
        kube.apply(body)
    tally = Tally()
    started = time.monotonic()
    while time.monotonic() - started < window:
        tally.add([view_pod(p) for p in kube.list("v1", "Pod", namespace=namespace)])
        time.sleep(max(started + tally.samples - time.monotonic(), 0))
    return tally


def figures(
    tally: Tally, gangs: list[Gang], node_labels: dict[str, dict[str, str]], gpus: int
) -> dict[str, Any]:
    """The quality figures of one run. Topology shares count gangs of more than one node whose
    every worker was seen running; a one-node gang is always in one domain."""
    sizes = {g.name: g.nodes for g in gangs}
    by_name = {g.name: g for g in gangs}
    placed = {k: v for k, v in placed_whole(tally, sizes).items() if sizes[k] > 1}
    required = {k: v for k, v in placed.items() if by_name[k].mode == "required"}
    preferred = {k: v for k, v in placed.items() if by_name[k].mode == "preferred"}
    return {
        "samples": tally.samples,
        "gpu_utilisation": share(tally.gpus_running, gpus * tally.samples),
        # A worker whose gang is half placed holds its GPUs but cannot train (no rendezvous); KWOK
        # still runs it to completion, so the raw figure above flatters half-placed gangs.
        "gpu_utilisation_without_half_placed_gangs": share(tally.gpus_running_whole, gpus * tally.samples),
        "gangs_completed": completed_gangs(tally.last, sizes),
        "multi_node_gangs_placed": len(placed),
        "required_gangs_placed": len(required),
        "required_gangs_in_one_domain_of_their_level": single_domain_share(
            required, node_labels, {k: LEVEL_LABELS[by_name[k].level] for k in required}
        ),
        "preferred_gangs_placed": len(preferred),
        "preferred_gangs_in_one_domain_of_their_level": single_domain_share(
            preferred, node_labels, {k: LEVEL_LABELS[by_name[k].level] for k in preferred}
        ),
        "multi_node_gangs_in_one_nvlink_domain": single_domain_share(
            placed, node_labels, dict.fromkeys(placed, LABEL_NVLINK_DOMAIN)
        ),
        "multi_node_gangs_in_one_rack": single_domain_share(
            placed, node_labels, dict.fromkeys(placed, LABEL_RACK)
        ),
        "partial_gangs_max": tally.partial_max,
        f"gangs_half_placed_for_{STUCK_SAMPLES}_samples": len(tally.stuck),
        "partial_gangs_at_end": tally.partial_last,
        "instants_with_partial_gangs": tally.instants_with_partial,
    }


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def observe_kueue(
    kube: Kube,
    factory: AIFactory,
    gangs: list[Gang],
    namespace: str,
    window: float,
    kubeconfig: Any,
    workdir: Any,
) -> Tally:
    """The gangs as suspended Jobs in Kueue's queue for the tenant, with their topology requirement
    as its pod-set annotations, sampled like the others."""
    create_namespace(kube, namespace)
    pool = factory.spec.node_pools[0]
    view = with_namespaces(factory, {factory.spec.tenants[0].namespaces[0]: namespace})
    bodies = [
        kueue_job(construct_plain_job(g, namespace, pool, factory.name), 0, g.mode, g.level) for g in gangs
    ]
    with kueue_peer(kubeconfig, workdir, kube, view, KUEUE_PORT_BASE):
        return observe(kube, bodies, namespace, window)


def run(jobs: int, nodes: int, window: float, seconds: int, kueue: bool = True) -> dict[str, Any]:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name, namespace, plain = f"qbench-{stamp}", f"qbench-{stamp}", f"qplain-{stamp}"
    queued = f"qkueue-{stamp}"
    gangs = make_topology_mix(
        jobs,
        seconds,
        domain_nodes=NODES_PER_NVLINK_DOMAIN,
        rack_nodes=NODES_PER_NVLINK_DOMAIN * NVLINK_DOMAINS_PER_RACK,
    )
    operator = start_operator(layout, "operator-quality-bench.log", METRICS_PORT)
    try:
        factory = create_factory(kube, quality_factory(name, namespace, nodes))
        pool, labels = factory.spec.node_pools[0], pool_node_labels(kube, name)
        # The baseline has the pool to itself: kube-scheduler alone, no operator admitting anything.
        operator.stop()
        create_namespace(kube, plain)
        baseline = observe(kube, [construct_plain_job(g, plain, pool, name) for g in gangs], plain, window)
        delete_and_wait(kube, "v1", "Namespace", plain)
        peer = (
            observe_kueue(kube, factory, gangs, queued, window, layout.kubeconfig, layout.root / "kueue")
            if kueue
            else None
        )
        operator.start()
        wait(lambda: is_training_loop_running(METRICS_PORT, name), "the operator's training loop")
        ours = observe(kube, [construct_trainingjob(g, namespace, POOL) for g in gangs], namespace, window)
        delete_and_wait(kube, API_VERSION, "AIFactory", name)
        delete_and_wait(kube, "v1", "Namespace", namespace)
    finally:
        operator.stop()
    gpus = nodes * GPUS_PER_NODE
    return {
        "jobs": jobs,
        "nodes": nodes,
        "gpus": gpus,
        "window_seconds": window,
        "job_seconds": seconds,
        "queued_gpu_seconds_per_available": round(
            sum(g.nodes * g.gpus_per_node * g.seconds for g in gangs) / (gpus * window), 2
        ),
        "topology": {
            "nodes_per_nvlink_domain": NODES_PER_NVLINK_DOMAIN,
            "nvlink_domains_per_rack": NVLINK_DOMAINS_PER_RACK,
            "required_gangs": sum(g.mode == "required" for g in gangs),
            "preferred_gangs": sum(g.mode == "preferred" for g in gangs),
        },
        "operator": figures(ours, gangs, labels, gpus),
        "baseline_kube_scheduler_plain_jobs": figures(baseline, gangs, labels, gpus),
        **({"kueue": figures(peer, gangs, labels, gpus), "kueue_version": kueue_version()} if peer else {}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--window", type=float, default=120, help="seconds sampled on each side")
    parser.add_argument("--seconds", type=int, default=30, help="how long each job runs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-kueue", action="store_true", help="skip the Kueue runner (kueue_peer.py)")
    args = parser.parse_args()
    return report(run(args.jobs, args.nodes, args.window, args.seconds, kueue=not args.no_kueue), args.json)


if __name__ == "__main__":
    sys.exit(run_interruptible(main))
