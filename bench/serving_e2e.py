"""Time from applying N ModelEndpoints to all Ready through the operator, against the same
Deployments and Services created directly by one client, in the same run; plus API writes per
endpoint.

Usage: python bench/serving_e2e.py [--endpoints 50] [--json out.json]
"""

import argparse
import sys
import time
from pathlib import Path

from common import (
    OPERATOR_AGENTS,
    audit_offset,
    dataset_body,
    factory_body,
    is_ready,
    operator_writes,
    report,
    requests_by_verb,
    run_interruptible,
    start_cluster,
    wait,
)

from aifactory_operator.api.v1alpha1 import AIFactory, Dataset, ModelEndpoint
from aifactory_operator.constants import API_VERSION
from aifactory_operator.launcher import OperatorProcess
from aifactory_operator.reconcile.serving_objects import construct_deployment, construct_service

METRICS_PORT = 18092


def serving_factory(name: str, namespace: str, nodes: int) -> dict:
    pool = {"name": "l40s", "gpuProduct": "NVIDIA-L40S", "gpusPerNode": 4, "nodes": nodes, "region": "de-ber"}
    tenant = {
        "name": "serve",
        "namespaces": [namespace],
        "clearance": "internal",
        "gpuQuota": [{"product": "NVIDIA-L40S", "gpus": nodes * 4}],
    }
    storage = [
        {
            "name": "models",
            "static": {"nfsServer": "nfs", "path": "/m"},
            "region": "de-ber",
            "capacity": "10Ti",
        }
    ]
    return factory_body(name, "de-ber", pools=[pool], tenants=[tenant], storage=storage)


def endpoint_body(name: str, namespace: str) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "weights",
            "runtime": {"image": "registry.factory.internal/vllm:0.6"},
            "gpusPerReplica": 1,
            "replicas": {"min": 1, "max": 2},
            "pool": "l40s",
        },
    }


def run(count: int) -> dict:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name, namespace, direct = f"sbench-{stamp}", f"sbench-{stamp}", f"sdirect-{stamp}"
    nodes = max(count // 2, 4)
    operator = OperatorProcess(
        layout.kubeconfig, layout.logs / "operator-bench.log", verbose=False, metrics_port=METRICS_PORT
    )
    operator.start()
    try:
        kube.apply(serving_factory(name, namespace, nodes))
        wait(lambda: is_ready(kube.get(API_VERSION, "AIFactory", name) or {}), "the factory")
        dataset = dataset_body("weights", namespace, "models", purpose="model")
        kube.apply(dataset)
        wait(
            lambda: is_ready(kube.get(API_VERSION, "Dataset", "weights", namespace) or {}),
            "the model dataset",
        )

        # Baseline: the same Deployments and Services, created directly.
        factory = AIFactory.model_validate(kube.get(API_VERSION, "AIFactory", name))
        model = Dataset.model_validate(kube.get(API_VERSION, "Dataset", "weights", namespace))
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": direct}})
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "dataset-weights", "namespace": direct},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "",
                    "resources": {"requests": {"storage": "1Gi"}},
                    "volumeName": "",
                },
            }
        )
        time.sleep(2)
        started = time.monotonic()
        for i in range(count):
            body = endpoint_body(f"ep-{i}", direct)
            body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
            endpoint = ModelEndpoint.model_validate(body)
            deployment = construct_deployment(endpoint, factory.spec.node_pools[0], name, model, 1, True)
            # The direct baseline mounts nothing: its claim could not bind in another namespace.
            deployment["spec"]["template"]["spec"]["volumes"] = []
            deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = []
            for obj in (deployment, construct_service(endpoint)):
                obj["metadata"].pop("ownerReferences")
                kube.apply(obj)
        wait(
            lambda: (
                sum(
                    int(d.get("status", {}).get("readyReplicas") or 0) >= 1
                    for d in kube.list("apps/v1", "Deployment", namespace=direct)
                )
                >= count
            ),
            "the direct deployments",
        )
        baseline = time.monotonic() - started
        kube.delete("v1", "Namespace", direct)

        writes_before = operator_writes(METRICS_PORT)
        audit_from, cpu_before = audit_offset(layout), operator.cpu_seconds()
        started = time.monotonic()
        for i in range(count):
            kube.apply(endpoint_body(f"ep-{i}", namespace))
        wait(
            lambda: (
                sum(is_ready(e) for e in kube.list(API_VERSION, "ModelEndpoint", namespace=namespace))
                >= count
            ),
            "the endpoints",
        )
        seconds = time.monotonic() - started
        writes = operator_writes(METRICS_PORT) - writes_before
        by_verb = requests_by_verb(layout, audit_from, OPERATOR_AGENTS)
        cpu = operator.cpu_seconds() - cpu_before
        rss = operator.peak_rss_kib()
        kube.delete(API_VERSION, "AIFactory", name)
    finally:
        operator.stop()
    return {
        "endpoints": count,
        "operator_seconds_to_all_ready": round(seconds, 1),
        "baseline_direct_deployments_seconds": round(baseline, 1),
        "ratio_operator_to_baseline": round(seconds / baseline, 2),
        "operator_writes_per_endpoint": round(writes / count, 2),
        "operator_peak_rss_mib": round(rss / 1024, 1),
        "operator_cpu_seconds": round(cpu, 1),
        "api_requests_per_modelendpoint_by_verb": {
            v: round(n / count, 2) for v, n in sorted(by_verb.items())
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    return report(run(args.endpoints), args.json)


if __name__ == "__main__":
    sys.exit(run_interruptible(main))
