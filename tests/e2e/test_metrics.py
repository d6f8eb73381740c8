"""The operator's Prometheus endpoint and `aifactory status`, checked against the cluster: a factory
with two pools and a tenant, one TrainingJob running, one Service the admission policy refuses."""

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import make_factory, make_tenant
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from aifactory_operator.constants import API_VERSION, GPU_RESOURCE, LABEL_FACTORY, LABEL_POOL
from aifactory_operator.kube.client import Kube
from conftest import METRICS_PORT, unique, wait_for

H100, L40S = "NVIDIA-H100-80GB-HBM3", "NVIDIA-L40S"
POOLS = [
    {"name": "h100", "gpuProduct": H100, "gpusPerNode": 8, "nodes": 2, "region": "de-fra"},
    {"name": "l40s", "gpuProduct": L40S, "gpusPerNode": 4, "nodes": 1, "region": "de-ber"},
]
JOB = "llm"
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int = METRICS_PORT, host: str = "127.0.0.1") -> Samples:
    """Every sample the operator serves now (the session's, or the one at `host`:`port`), by
    sample name (counters end in _total)."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample whose labels include `labels`; None when there is none."""
    found = [v for have, v in samples.get(name, []) if labels.items() <= have.items()]
    return sum(found) if found else None


def series_of(samples: Samples, factory: str) -> list[str]:
    return [
        name for name, items in samples.items() for labels, _ in items if labels.get("factory") == factory
    ]


def make_training(name: str, namespace: str) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"sim.aifactory.dev/duration": "600s"},
        },
        "spec": {
            "image": "registry.factory.internal/train:1",
            "command": ["torchrun", "train.py"],
            "nodes": 1,
            "gpusPerNode": 8,
            "pool": "h100",
        },
    }


def phase(kube: Kube, namespace: str, name: str) -> str | None:
    job = kube.get(API_VERSION, "TrainingJob", name, namespace) or {}
    return job.get("status", {}).get("phase")


@pytest.fixture(scope="module")
def running(kube, kubectl, operator) -> Iterator[tuple[str, str]]:
    """A Ready factory (h100: 2 x 8 GPUs, l40s: 1 x 4) whose tenant runs one 8-GPU TrainingJob."""
    name, namespace = unique("metrics"), unique("mt")
    quota = [{"product": H100, "gpus": 16}, {"product": L40S, "gpus": 4}]
    kube.apply(make_factory(name, pools=POOLS, tenants=[make_tenant("research", namespace, gpuQuota=quota)]))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    kube.apply(make_training(JOB, namespace))
    wait_for(lambda: phase(kube, namespace, JOB) == "Running", f"TrainingJob {JOB} to run")
    yield name, namespace
    kube.delete(API_VERSION, "TrainingJob", JOB, namespace)
    wait_for(lambda: not kube.list("v1", "Pod", namespace=namespace), "the job's pods to go")
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    kube.delete("v1", "Namespace", namespace)


def allocatable_by_pool(kube: Kube, factory: str) -> dict[str, int]:
    """What the nodes offer, summed per pool from their own status (all nodes are Ready here)."""
    sums: dict[str, int] = {}
    for node in kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={factory}"):
        pool = node["metadata"]["labels"][LABEL_POOL]
        sums[pool] = sums.get(pool, 0) + int(node["status"]["allocatable"].get(GPU_RESOURCE, 0))
    return sums


def test_pool_gauges_show_what_the_factory_status_and_the_nodes_say(kube, running):
    factory, _ = running

    def agreeing() -> dict[str, tuple[float | None, float | None]] | None:
        samples = scrape()
        status = (kube.get(API_VERSION, "AIFactory", factory) or {}).get("status", {})
        reported = {p["name"]: (p.get("gpusAllocatable", 0), p.get("gpusInUse", 0)) for p in status["pools"]}
        scraped = {
            pool: (
                value(samples, "aifactory_pool_gpus_allocatable", factory=factory, pool=pool),
                value(samples, "aifactory_pool_gpus_in_use", factory=factory, pool=pool),
            )
            for pool in reported
        }
        return scraped if scraped == reported and reported["h100"][1] == 8 else None

    gauges = wait_for(agreeing, "pool gauges equal to status.pools with the job's 8 GPUs in use")
    assert gauges == {"h100": (16, 8), "l40s": (4, 0)}
    assert {pool: allocatable for pool, (allocatable, _) in gauges.items()} == allocatable_by_pool(
        kube, factory
    )


def test_the_tenant_holds_the_jobs_gpus_and_nothing_waits(running):
    factory, _ = running
    samples = wait_for(
        lambda: (
            (s := scrape())
            and value(s, "aifactory_tenant_gpus_in_use", factory=factory, tenant="research", product=H100)
            == 8
            and s
        ),
        "the tenant's GPUs in use",
    )
    assert (
        value(samples, "aifactory_tenant_gpu_quota", factory=factory, tenant="research", product=H100) == 16
    )
    assert value(samples, "aifactory_tenant_gpu_quota", factory=factory, tenant="research", product=L40S) == 4
    assert (
        value(samples, "aifactory_tenant_gpus_in_use", factory=factory, tenant="research", product=L40S) == 0
    )
    assert value(samples, "aifactory_training_queue_length", factory=factory) == 0
    assert (value(samples, "aifactory_training_admission_latency_seconds_count") or 0) >= 1
    assert (value(samples, "aifactory_reconciles_total", kind="AIFactory") or 0) > 0
    assert (value(samples, "aifactory_reconcile_seconds_count", kind="AIFactory") or 0) > 0
    assert (value(samples, "aifactory_reconciles_total", kind="TrainingJob", outcome="tick") or 0) > 0


def test_the_collectors_cpu_time_is_served_for_each_generation(running):
    samples = scrape()
    for generation in ("0", "1", "2"):
        seconds = value(samples, "aifactory_gc_cpu_seconds_total", generation=generation)
        assert seconds is not None and seconds >= 0


def test_a_refused_service_is_counted_by_rule_and_layer_and_lands_in_the_audit_log(kube, running):
    _, namespace = running
    labels = {"rule": "air-gap/service-type", "layer": "admission-policy"}
    before = value(scrape(), "aifactory_policy_denials_total", **labels) or 0
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": unique("exposed"), "namespace": namespace},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }
    with pytest.raises(ApiException) as refused:
        kube.resource("v1", "Service").create(body=service, namespace=namespace)
    assert "[air-gap/service-type]" in str(refused.value.body)
    wait_for(
        lambda: (value(scrape(), "aifactory_policy_denials_total", **labels) or 0) > before,
        "the refusal to be counted",
        timeout=15,
    )
    wait_for(
        lambda: (value(scrape(), "aifactory_audit_log_entries") or 0) >= 1,
        "the audit log's length",
        timeout=15,
    )


def test_status_shows_the_factory_its_pools_and_the_running_job(kubeconfig: Path, running):
    factory, namespace = running
    result = subprocess.run(
        [sys.executable, "-m", "aifactory_operator.cli", "status", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [factory, "True", "20/20"] in [line[:3] for line in lines]
    assert [factory, "h100", H100, "2/2", "16", "8"] in lines
    assert [factory, "l40s", L40S, "1/1", "4", "0"] in lines
    assert [f"{namespace}/{JOB}", "Running", "-", "8", "0"] in [line[:5] for line in lines]
    assert [factory, "research", namespace, H100, "16", "8"] in lines


def test_deleting_the_factory_removes_its_series(kube, running):
    """Runs last in this module: it deletes the factory the others read."""
    factory, namespace = running
    kube.delete(API_VERSION, "TrainingJob", JOB, namespace)
    wait_for(lambda: not kube.list("v1", "Pod", namespace=namespace), "the job's pods to go")
    kube.delete(API_VERSION, "AIFactory", factory)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", factory) is None, "the factory to go")
    wait_for(lambda: not series_of(scrape(), factory), "the factory's series to go", timeout=30)
