"""How long a factory of N simulated GPU nodes takes to become Ready through the operator, against
a baseline that creates the same nodes directly with one client, in the same run; then how long
M TrainingJobs take to all run on it, and the operator's memory at that size.

With jobs, the run ends with the gang audit (bench/gang_audit.py): stuck_gangs, double_booked_nodes
and placement_mismatches must be 0, and the wait for the jobs gives up after --give-up-per-job
seconds per job; either makes the run exit non-zero once its JSON is written.

Usage: python bench/factory_scale.py [--nodes 1000] [--jobs 0] [--give-up-per-job 0.2] [--json out.json]
"""

import argparse
import re
import sys
import time
import urllib.request
from pathlib import Path

from common import (
    GIVE_UP_MIN_SECONDS,
    audit_figures,
    create_all,
    factory_body,
    give_up_seconds,
    operator_gc_seconds,
    operator_writes,
    report,
    run_interruptible,
    start_cluster,
    wait_until,
)
from kubernetes import client as k8s

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.constants import API_VERSION, GROUP, LABEL_FACTORY, VERSION
from aifactory_operator.kube.client import Kube
from aifactory_operator.launcher import OperatorProcess
from aifactory_operator.reconcile.nodepools import desired_kwok_nodes, is_node_ready

WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
METRICS_PORT = 18090
# 10,000 nodes are Ready in ~4 min on 2 CPUs; the margin is for slower or busier machines.
READY_TIMEOUT = 2400


def scale_factory(name: str, nodes: int, namespace: str | None = None) -> dict:
    pool = {
        "name": "h100",
        "gpuProduct": "NVIDIA-H100-80GB-HBM3",
        "gpusPerNode": 8,
        "nodes": nodes,
        "region": "de-fra",
        "topology": {"nodesPerNvlinkDomain": 8, "nvlinkDomainsPerRack": 4},
    }
    tenants = [
        {
            "name": "scale",
            "namespaces": [namespace],
            "clearance": "internal",
            "gpuQuota": [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": nodes * 8}],
        }
    ]
    return factory_body(name, "de-fra", pools=[pool], tenants=tenants if namespace else None)


def scale_job(name: str, namespace: str) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        # Long enough to still be running when the last job starts (KWOK ends pods without it).
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"sim.aifactory.dev/duration": "3600s"},
        },
        "spec": {"image": "registry.factory.internal/t:1", "nodes": 1, "gpusPerNode": 4, "pool": "h100"},
    }


def running_jobs(kube: Kube, namespace: str) -> int:
    """Counted from the server's table view (the printer columns): decoding 10,000 whole
    TrainingJobs every poll took most of a CPU on the machine being measured."""
    table = k8s.CustomObjectsApi(kube.api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingjobs", _headers={"Accept": TABLE}
    )
    phase = [c["name"] for c in table["columnDefinitions"]].index("Phase")
    return sum(row["cells"][phase] == "Running" for row in table["rows"])


# 10,000 jobs all run ~17 minutes after the first create on 2 CPUs; the default gives up at 33.
GIVE_UP_SECONDS_PER_JOB = 0.2


def run_jobs(kube: Kube, kubeconfig: Path, namespace: str, jobs: int, give_up: float) -> dict:
    """Seconds from the first create (CLIENTS clients in parallel) to every job Running (polled
    every 5 s: listing them all is not free for the API server either); or, after `give_up`
    seconds, how many ran."""
    started = time.monotonic()
    create_all(kubeconfig, [scale_job(f"job-{i}", namespace) for i in range(jobs)])
    if wait_until(lambda: running_jobs(kube, namespace) >= jobs, give_up, interval=5):
        return {"trainingjobs_seconds_to_all_running": round(time.monotonic() - started, 1)}
    return {
        "trainingjobs_seconds_to_all_running": None,
        "gave_up_waiting_for": f"{jobs} running TrainingJobs in {namespace}",
        "running_trainingjobs_when_given_up": running_jobs(kube, namespace),
    }


def node_writes(layout) -> int:
    """Writes to nodes (not nodes/status, which KWOK writes) counted by kube-apiserver."""
    token = (layout.pki / "admin.token").read_text().strip()
    import ssl

    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    request = urllib.request.Request(
        f"{layout.apiserver_url}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    text = urllib.request.urlopen(request, context=context).read().decode()
    total = 0
    for line in text.splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="nodes"' in line
            and 'subresource=""' in line
        ):
            verb = re.search(r'verb="([A-Z]+)"', line)
            if verb and verb.group(1) in WRITE_VERBS:
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def wait_ready_nodes(kube: Kube, selector: str, count: int, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = kube.list("v1", "Node", label_selector=selector)
        if sum(is_node_ready(n) for n in nodes) >= count:
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {count} ready nodes ({selector})")


def run(nodes: int, jobs: int, give_up: float) -> dict:
    layout, kube = start_cluster()

    # Baseline: the same nodes, created directly by one client with the same server-side apply.
    baseline_name = f"baseline-{int(time.time())}"
    body = scale_factory(baseline_name, nodes)
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    model = AIFactory.model_validate(body)
    baseline_writes_before = node_writes(layout)
    started = time.monotonic()
    for node in desired_kwok_nodes(model):
        node["metadata"].pop("ownerReferences")
        kube.apply(node)
    wait_ready_nodes(kube, f"{LABEL_FACTORY}={baseline_name}", nodes)
    baseline_seconds = time.monotonic() - started
    baseline_writes = node_writes(layout) - baseline_writes_before
    for node in kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={baseline_name}"):
        kube.delete("v1", "Node", node["metadata"]["name"])

    operator = OperatorProcess(
        layout.kubeconfig, layout.logs / "operator-bench.log", verbose=False, metrics_port=METRICS_PORT
    )
    operator.start()
    try:
        time.sleep(3)
        name = f"scale-{int(time.time())}"
        writes_before = node_writes(layout)
        started = time.monotonic()
        kube.apply(scale_factory(name, nodes, name if jobs else None))
        while True:
            factory = kube.get(API_VERSION, "AIFactory", name) or {}
            conditions = factory.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                break
            if time.monotonic() - started > READY_TIMEOUT:
                raise SystemExit("timed out waiting for the factory to become Ready")
            time.sleep(0.5)
        operator_seconds = time.monotonic() - started
        writes = node_writes(layout) - writes_before
        own_writes = operator_writes(METRICS_PORT)
        rss_at_ready = operator.peak_rss_kib()
        ran = run_jobs(kube, layout.kubeconfig, name, jobs, give_up) if jobs else {}
        # At the end of the run, or at the moment it gave up.
        audit = audit_figures(kube, [name], f"{LABEL_FACTORY}={name}") if jobs else {}
        rss = operator.peak_rss_kib()
        cpu, gc_seconds = operator.cpu_seconds(), operator_gc_seconds(METRICS_PORT)
        kube.delete(API_VERSION, "AIFactory", name)
    finally:
        operator.stop()
    return {
        "nodes": nodes,
        "operator_seconds_to_ready": round(operator_seconds, 1),
        "baseline_seconds_to_ready": round(baseline_seconds, 1),
        "ratio_operator_to_baseline": round(operator_seconds / baseline_seconds, 2),
        "operator_writes_per_node": round(own_writes / nodes, 2),
        "apiserver_node_writes_per_node": round(writes / nodes, 2),
        "apiserver_node_writes_per_node_baseline": round(baseline_writes / nodes, 2),
        "operator_peak_rss_mib_at_ready": round(rss_at_ready / 1024, 1),
        "trainingjobs": jobs,
        "trainingjobs_seconds_to_all_running": 0.0,
        **ran,
        "operator_peak_rss_mib": round(rss / 1024, 1),
        "operator_cpu_seconds": round(cpu, 1),
        "operator_gc_cpu_seconds": round(gc_seconds, 1),
        **audit,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument(
        "--give-up-per-job",
        type=float,
        default=GIVE_UP_SECONDS_PER_JOB,
        help=f"seconds per job to wait for all Running before reporting (at least {GIVE_UP_MIN_SECONDS:.0f})",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    give_up = give_up_seconds(args.jobs, args.give_up_per_job)
    return report(run(args.nodes, args.jobs, give_up), args.json)


if __name__ == "__main__":
    sys.exit(run_interruptible(main))
