"""GitOps tools read our status as the operator means it: kstatus (what Flux and kpt wait with) and our
Argo CD health checks, on real objects read back from the API server."""

import copy

import pytest
from factories import make_dataset, make_factory, make_tenant
from gitops import argocd_health, ensure_kstatus, kstatus

from aifactory_operator.constants import API_VERSION
from conftest import condition, unique, wait_for

STORAGE = [
    {
        "name": "models",
        "static": {"nfsServer": "nfs.factory.internal", "path": "/models"},
        "region": "de-ber",
        "capacity": "10Ti",
    }
]
POOL = {"name": "l40s", "gpuProduct": "NVIDIA-L40S", "gpusPerNode": 4, "nodes": 2, "region": "de-ber"}
DIGEST = "sha256:" + "c" * 64


def make_training(name: str, namespace: str, *, nodes: int = 1, gpus: int = 4, **spec) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"sim.aifactory.dev/duration": "300s"},
        },
        "spec": {
            "image": "registry.factory.internal/train:1",
            "nodes": nodes,
            "gpusPerNode": gpus,
            "pool": "l40s",
            **spec,
        },
    }


def make_endpoint(name: str, namespace: str, *, pool: str = "l40s", gpus: int = 1) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "weights",
            "runtime": {"image": "registry.factory.internal/vllm:0.6", "port": 8000},
            "gpusPerReplica": gpus,
            "replicas": {"min": 1, "max": 1},
            "pool": pool,
        },
    }


@pytest.fixture(scope="module")
def world(kube, kubectl, operator):
    """One factory with two 4-GPU L40S nodes, and objects in every state GitOps tools tell apart:
    ready ones, a job and an endpoint waiting for a full pool, a suspended job, and ones the operator
    cannot act on. The tenant's quota (16) exceeds the pool (8), so they wait for nodes, not quota."""
    ensure_kstatus()  # Built before the clock of the waits below starts.
    factory, ns = unique("gitops"), unique("go")
    tenant = make_tenant("ops", ns, gpuQuota=[{"product": "NVIDIA-L40S", "gpus": 16}])
    kube.apply(make_factory(factory, pools=[POOL], tenants=[tenant], storage=STORAGE))
    try:
        kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=60s")
        kube.apply(make_dataset(ns, "weights", purpose="model", storage="models", digest=DIGEST))
        kube.apply(make_dataset(ns, "nowhere", storage="missing"))
        kubectl("wait", "--for=condition=Ready", "dataset/weights", "-n", ns, "--timeout=60s")
        kube.apply(make_endpoint("chat", ns))
        kube.apply(make_endpoint("lost", ns, pool="h100"))
        kubectl("wait", "--for=condition=Ready", "modelendpoint/chat", "-n", ns, "--timeout=60s")
        # The endpoint's replica holds a GPU on one node, so the running job takes the other node
        # whole, and a job that needs both nodes has to queue.
        kube.apply(make_training("steady", ns))
        kubectl("wait", "--for=condition=Ready", "trainingjob/steady", "-n", ns, "--timeout=60s")
        kube.apply(make_training("waiting", ns, nodes=2))
        kube.apply(make_training("too-wide", ns, gpus=8))
        kube.apply(make_training("paused", ns, suspend=True))
        for stalled in ("dataset/nowhere", "modelendpoint/lost", "trainingjob/too-wide"):
            kubectl("wait", "--for=condition=Stalled", stalled, "-n", ns, "--timeout=60s")
        wait_for(lambda: phase_of(kube, ns, "paused") == "Suspended", "the paused job to be Suspended")
        wait_for(lambda: is_queued(read(kube, "TrainingJob", "waiting", ns)), "the wide job to queue")
        # A whole node per replica: one node runs 'steady', the other serves 'chat'.
        kube.apply(make_endpoint("hungry", ns, gpus=4))
        wait_for(
            lambda: is_waiting_for_gpus(read(kube, "ModelEndpoint", "hungry", ns)), "the endpoint to wait"
        )
        yield factory, ns
    finally:
        for kind in ("ModelEndpoint", "TrainingJob", "Dataset"):
            for obj in kube.list(API_VERSION, kind, namespace=ns):
                kube.delete(API_VERSION, kind, obj["metadata"]["name"], ns)
        kube.delete(API_VERSION, "AIFactory", factory)
        wait_for(lambda: kube.get(API_VERSION, "AIFactory", factory) is None, "the factory to go")
        kube.delete("v1", "Namespace", ns)
        for volume in kube.list("v1", "PersistentVolume", label_selector=f"aifactory.dev/factory={factory}"):
            kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def read(kube, kind: str, name: str, namespace: str | None = None) -> dict:
    obj = kube.get(API_VERSION, kind, name, namespace)
    assert obj is not None, f"{kind} {name} is gone"
    return obj


def phase_of(kube, namespace: str, name: str) -> str | None:
    return read(kube, "TrainingJob", name, namespace).get("status", {}).get("phase")


def is_queued(job: dict) -> bool:
    """Queued, and the operator has written that for the job's current spec."""
    status = job.get("status", {})
    return (
        status.get("phase") == "Queued" and status.get("observedGeneration") == job["metadata"]["generation"]
    )


def is_waiting_for_gpus(endpoint: dict) -> bool:
    reconciling = condition(endpoint, "Reconciling")
    return reconciling is not None and reconciling["reason"] == "InsufficientCapacity"


def verdicts(objects: list[dict]) -> list[tuple[str, str, str]]:
    """(name, kstatus status, Argo CD health status) of each object, from one read of it."""
    return [
        (obj["metadata"]["name"], ks["status"], argocd_health(obj["kind"], obj)["status"])
        for obj, ks in zip(objects, kstatus(objects), strict=True)
    ]


def test_ready_objects_are_current_for_kstatus_and_healthy_for_argocd(kube, world):
    factory, ns = world
    objects = [
        read(kube, "AIFactory", factory),
        read(kube, "Dataset", "weights", ns),
        read(kube, "ModelEndpoint", "chat", ns),
        read(kube, "TrainingJob", "steady", ns),
    ]
    assert objects[3]["status"]["phase"] in ("Running", "Succeeded")
    assert verdicts(objects) == [
        (factory, "Current", "Healthy"),
        ("weights", "Current", "Healthy"),
        ("chat", "Current", "Healthy"),
        ("steady", "Current", "Healthy"),
    ]


def test_a_queued_job_is_in_progress_for_kstatus_and_progressing_for_argocd(kube, world):
    _, ns = world
    job = read(kube, "TrainingJob", "waiting", ns)
    assert is_queued(job)
    [verdict] = kstatus([job])
    health = argocd_health("TrainingJob", job)
    assert (verdict["status"], health["status"]) == ("InProgress", "Progressing")
    assert verdict["message"] == condition(job, "Reconciling")["message"] == job["status"]["reason"]
    assert (
        health["message"] == f"queued at position {job['status']['queuePosition']}: {job['status']['reason']}"
    )


def test_an_unobserved_spec_change_is_in_progress_for_both(kube, world):
    factory, _ = world
    # What the API server returns between a spec change and the operator's next status write.
    changed = copy.deepcopy(read(kube, "AIFactory", factory))
    changed["metadata"]["generation"] += 1
    generation = changed["metadata"]["generation"]
    [verdict] = kstatus([changed])
    assert verdict["status"] == "InProgress"
    assert argocd_health("AIFactory", changed) == {
        "status": "Progressing",
        "message": f"waiting for the operator to observe generation {generation}",
    }


def test_stalled_objects_are_failed_for_kstatus_and_degraded_for_argocd_with_the_reason(kube, world):
    _, ns = world
    objects = [
        read(kube, "Dataset", "nowhere", ns),
        read(kube, "ModelEndpoint", "lost", ns),
        read(kube, "TrainingJob", "too-wide", ns),
    ]
    assert verdicts(objects) == [
        ("nowhere", "Failed", "Degraded"),
        ("lost", "Failed", "Degraded"),
        ("too-wide", "Failed", "Degraded"),
    ]
    for obj, verdict in zip(objects, kstatus(objects), strict=True):
        reason = condition(obj, "Stalled")["message"]
        assert verdict["message"] == argocd_health(obj["kind"], obj)["message"] == reason
    assert "spec.gpusPerNode: 8 exceeds the 4 GPUs" in condition(objects[2], "Stalled")["message"]
    assert objects[2]["status"]["phase"] == "Refused"


def test_an_endpoint_waiting_for_gpus_is_in_progress_for_kstatus_and_progressing_for_argocd(kube, world):
    _, ns = world
    endpoint = read(kube, "ModelEndpoint", "hungry", ns)
    # Not Stalled: the spec is sound and the endpoint starts once GPUs free up.
    assert condition(endpoint, "Stalled") is None
    assert verdicts([endpoint]) == [("hungry", "InProgress", "Progressing")]
    reason = condition(endpoint, "Reconciling")["message"]
    assert reason.startswith("cannot reserve replicas.min: ")
    assert kstatus([endpoint])[0]["message"] == argocd_health("ModelEndpoint", endpoint)["message"] == reason


def test_a_suspended_job_is_not_ready_in_progress_for_kstatus_and_suspended_for_argocd(kube, world):
    _, ns = world
    job = read(kube, "TrainingJob", "paused", ns)
    # Nothing runs, so it is not Ready; nothing is wrong or left to do, so neither Reconciling nor
    # Stalled. kstatus has no "suspended" and reads Ready=False as InProgress, as it reads a
    # suspended batch/v1 Job that has not started; Argo CD has a Suspended health and shows it.
    ready = condition(job, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Suspended")
    assert condition(job, "Reconciling") is None and condition(job, "Stalled") is None
    assert verdicts([job]) == [("paused", "InProgress", "Suspended")]
    assert kstatus([job])[0]["message"] == ready["message"] == "suspended; resuming requeues the job"
