"""Admission latency of the sovereignty layers, measured in one run.

1. The operator's webhook alone: N AdmissionReviews (a pod mounting a dataset claim) POSTed straight
   to its HTTPS endpoint, as kube-apiserver sends them.
2. Through kube-apiserver: N server-side dry-run creates of that pod in a tenant namespace (placement
   by the MutatingAdmissionPolicy where served and the placement webhook, admission policies, audit
   tap and validating webhook) against the same pod in a plain namespace (none of them).
"""

import argparse
import base64
import json
import ssl
import statistics
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from common import dataset_body, factory_body, is_ready, report, run_interruptible, start_cluster, wait

from aifactory_operator.constants import API_VERSION, LABEL_JURISDICTION, LABEL_POOL, OPERATOR_NAMESPACE
from aifactory_operator.kube.client import Kube
from aifactory_operator.launcher import OperatorProcess


def reader_pod(namespace: str) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "registry.factory.internal/app:1",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader", "namespace": namespace},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "dataset-census"}}],
        },
    }


def review(pod: dict[str, Any]) -> bytes:
    request = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": pod["metadata"]["namespace"],
        "operation": "CREATE",
        "userInfo": {"username": "bench", "groups": ["system:authenticated"]},
        "object": pod,
        "dryRun": True,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
    }


def time_webhook(kube: Kube, webhook: str, pod: dict[str, Any], count: int) -> list[float]:
    secret = kube.get("v1", "Secret", "aifactory-webhook-tls", OPERATOR_NAMESPACE) or {}
    context = ssl.create_default_context(cadata=base64.b64decode(secret["data"]["ca.crt"]).decode())
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        request = urllib.request.Request(
            f"{webhook}/mounts-pods", data=review(pod), headers={"Content-Type": "application/json"}
        )
        answer = json.loads(urllib.request.urlopen(request, context=context).read())
        samples.append(time.perf_counter() - started)
        assert answer["response"]["allowed"], answer
    return samples


def time_dry_runs(kube: Kube, pod: dict[str, Any], count: int) -> list[float]:
    pods = kube.resource("v1", "Pod")
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        pods.create(body=pod, namespace=pod["metadata"]["namespace"], dry_run="All")
        samples.append(time.perf_counter() - started)
    return samples


def run(count: int) -> dict[str, Any]:
    layout, kube = start_cluster()
    stamp = int(time.time())
    name, tenant, plain = f"whbench-{stamp}", f"whbench-{stamp}", f"whplain-{stamp}"
    webhook = f"https://127.0.0.1:{layout.ports.webhook}"
    operator = OperatorProcess(layout.kubeconfig, layout.logs / "operator-bench.log", verbose=False)
    operator.start()
    try:
        storage = [
            {
                "name": "nfs",
                "static": {"nfsServer": "nfs", "path": "/x"},
                "region": "de-fra",
                "capacity": "1Ti",
            }
        ]
        # A pool the tenant holds quota for: admission places the reader pod there (the create path
        # now includes the placement mutation).
        pools = [{"name": "h100", "gpuProduct": "NVIDIA-H100-80GB-HBM3", "region": "de-fra"}]
        quota = [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 8}]
        tenants = [{"name": "t", "namespaces": [tenant], "clearance": "confidential", "gpuQuota": quota}]
        factory = factory_body(name, "de-fra", pools=pools, tenants=tenants, storage=storage)
        kube.apply(factory)
        wait(lambda: is_ready(kube.get(API_VERSION, "AIFactory", name) or {}), "the factory", 120)
        dataset = dataset_body("census", tenant, "nfs")
        wait(lambda: kube.get("v1", "Namespace", tenant), "the tenant namespace", 60)
        kube.apply(dataset)
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plain}})
        time.sleep(3)
        warm = 20
        time_webhook(kube, webhook, reader_pod(tenant), warm)
        direct = time_webhook(kube, webhook, reader_pod(tenant), count)
        time_dry_runs(kube, reader_pod(tenant), warm)
        guarded = time_dry_runs(kube, reader_pod(tenant), count)
        # The same pod naming its placement, as the operator's own pods do: no mutation.
        placed = reader_pod(tenant)
        placed["spec"]["nodeSelector"] = {LABEL_JURISDICTION: "DE", LABEL_POOL: "h100"}
        time_dry_runs(kube, placed, warm)
        guarded_placed = time_dry_runs(kube, placed, count)
        time_dry_runs(kube, reader_pod(plain), warm)
        baseline = time_dry_runs(kube, reader_pod(plain), count)
        return {
            "admissions": count,
            "webhook_direct": percentiles(direct),
            "apiserver_with_policies_and_webhooks": percentiles(guarded),
            "apiserver_with_policies_and_webhooks_placed_pod": percentiles(guarded_placed),
            "apiserver_baseline_no_policies": percentiles(baseline),
            "p50_ratio_guarded_vs_baseline": round(
                statistics.median(guarded) / statistics.median(baseline), 2
            ),
        }
    finally:
        operator.stop()
        kube.delete(API_VERSION, "AIFactory", name)
        kube.delete("v1", "Namespace", plain)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--admissions", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    return report(run(args.admissions), args.json)


if __name__ == "__main__":
    raise SystemExit(run_interruptible(main))
