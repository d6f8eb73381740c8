"""ModelEndpoints on the real control plane: children, rollouts, shared GPU accounting, scaling."""

import time

import pytest
from factories import make_factory, make_tenant

from aifactory_operator.constants import API_VERSION, LABEL_POOL
from conftest import condition, unique, wait_for

# In the compatibility suite that make compat runs on the oldest supported minor.
pytestmark = pytest.mark.compat

STORAGE = [
    {
        "name": "models",
        "static": {"nfsServer": "nfs.factory.internal", "path": "/models"},
        "region": "de-ber",
        "capacity": "10Ti",
    }
]
POOL = {"name": "l40s", "gpuProduct": "NVIDIA-L40S", "gpusPerNode": 4, "nodes": 2, "region": "de-ber"}
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture(scope="module")
def serving_factory(kube, kubectl, operator):
    """Two L40S nodes (8 GPUs); tenant 'serve' may hold 8, tenant 'small' 2."""
    name, ns, small, client = unique("serve"), unique("sv"), unique("sm"), unique("client")
    tenants = [
        make_tenant("serve", ns, gpuQuota=[{"product": "NVIDIA-L40S", "gpus": 8}]),
        make_tenant("small", small, gpuQuota=[{"product": "NVIDIA-L40S", "gpus": 2}]),
    ]
    kube.apply(make_factory(name, pools=[POOL], tenants=tenants, storage=STORAGE))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    for namespace in (ns, small):
        kube.apply(model_dataset(namespace, DIGEST_A, "weights-a"))
        kube.apply(model_dataset(namespace, DIGEST_B, "weights-b"))
    for namespace in (ns, small):
        for dataset in ("weights-a", "weights-b"):
            kubectl("wait", "--for=condition=Ready", f"dataset/{dataset}", "-n", namespace, "--timeout=60s")
    yield name, ns, small, client
    for namespace in (ns, small):
        for kind in ("ModelEndpoint", "TrainingJob", "Dataset"):
            for obj in kube.list(API_VERSION, kind, namespace=namespace):
                kube.delete(API_VERSION, kind, obj["metadata"]["name"], namespace)
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    for namespace in (ns, small):
        kube.delete("v1", "Namespace", namespace)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"aifactory.dev/factory={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def model_dataset(namespace: str, digest: str, name: str) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "purpose": "model",
            "storage": {"name": "models", "path": f"/{namespace}/{name}"},
            "jurisdiction": "DE",
            "classification": "internal",
            "digest": digest,
        },
    }


def make_endpoint(
    name: str,
    namespace: str,
    *,
    model: str = "weights-a",
    gpus: int = 1,
    minimum: int = 2,
    maximum: int = 4,
    **spec,
) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": model,
            "runtime": {"image": "registry.factory.internal/vllm:0.6", "port": 8000},
            "gpusPerReplica": gpus,
            "replicas": {"min": minimum, "max": maximum},
            "pool": "l40s",
            **spec,
        },
    }


def endpoint(kube, namespace: str, name: str) -> dict:
    return kube.get(API_VERSION, "ModelEndpoint", name, namespace) or {}


def test_an_endpoint_serves_from_its_pool_with_service_hpa_pdb_and_policy(kube, kubectl, serving_factory):
    _, ns, _, client = serving_factory
    kube.apply(make_endpoint("chat", ns, allowedClientNamespaces=[client]))
    try:
        kubectl("wait", "--for=condition=Ready", "modelendpoint/chat", "-n", ns, "--timeout=90s")
        status = endpoint(kube, ns, "chat")["status"]
        assert status["url"] == f"http://chat.{ns}.svc:8000"
        assert status["readyReplicas"] >= 2 and status["servedDigest"] == DIGEST_A
        pods = kube.list("v1", "Pod", namespace=ns, label_selector="aifactory.dev/modelendpoint=chat")
        assert all(
            kube.get("v1", "Node", p["spec"]["nodeName"])["metadata"]["labels"][LABEL_POOL] == "l40s"
            for p in pods
        )
        env = {e["name"]: e["value"] for e in pods[0]["spec"]["containers"][0]["env"]}
        assert env["MODEL_PATH"] == "/models/weights-a"
        # Both replicas' endpoints: the EndpointSlice controller adds them one by one.
        slices = wait_for(
            lambda: (
                found
                if len(
                    found := [
                        a
                        for s in kube.list(
                            "discovery.k8s.io/v1",
                            "EndpointSlice",
                            namespace=ns,
                            label_selector="kubernetes.io/service-name=chat",
                        )
                        for a in s.get("endpoints") or []
                    ]
                )
                >= 2
                else None
            ),
            "the Service's two endpoints",
        )
        assert len(slices) >= 2
        hpa = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "chat", ns)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["scaleTargetRef"]["name"]) == (2, "chat")
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
        pdb = kube.get("policy/v1", "PodDisruptionBudget", "chat", ns)
        assert pdb["spec"]["minAvailable"] == 2
        policy = kube.get("networking.k8s.io/v1", "NetworkPolicy", "chat-clients", ns)
        sources = policy["spec"]["ingress"][0]["from"]
        assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": client}}} in sources
    finally:
        kube.delete(API_VERSION, "ModelEndpoint", "chat", ns)
        wait_for(lambda: not kube.list("v1", "Pod", namespace=ns), "the pods to go")


def test_changing_the_model_rolls_without_dropping_below_the_minimum(kube, kubectl, serving_factory):
    _, ns, _, _ = serving_factory
    kube.apply(make_endpoint("roll", ns, minimum=2, maximum=2))
    try:
        kubectl("wait", "--for=condition=Ready", "modelendpoint/roll", "-n", ns, "--timeout=90s")
        kube.apply(make_endpoint("roll", ns, model="weights-b", minimum=2, maximum=2))
        lowest = 99
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            deployment = kube.get("apps/v1", "Deployment", "roll", ns)
            lowest = min(lowest, int(deployment["status"].get("availableReplicas") or 0))
            if endpoint(kube, ns, "roll").get("status", {}).get("servedDigest") == DIGEST_B:
                break
            time.sleep(0.2)
        assert endpoint(kube, ns, "roll")["status"]["servedDigest"] == DIGEST_B
        assert lowest >= 2, f"availability dropped to {lowest} during the roll"
    finally:
        kube.delete(API_VERSION, "ModelEndpoint", "roll", ns)
        wait_for(lambda: not kube.list("v1", "Pod", namespace=ns), "the pods to go")


def test_serving_and_training_share_the_pool_without_exceeding_it(kube, kubectl, serving_factory):
    _, ns, _, _ = serving_factory
    kube.apply(make_endpoint("shared", ns, gpus=4, minimum=1, maximum=2))
    try:
        kubectl("wait", "--for=condition=Ready", "modelendpoint/shared", "-n", ns, "--timeout=90s")
        training = {
            "apiVersion": API_VERSION,
            "kind": "TrainingJob",
            "metadata": {
                "name": "tune",
                "namespace": ns,
                "annotations": {"sim.aifactory.dev/duration": "300s"},
            },
            "spec": {"image": "registry.factory.internal/t:1", "nodes": 2, "gpusPerNode": 4, "pool": "l40s"},
        }
        kube.apply(training)
        queued = wait_for(
            lambda: (
                (t := kube.get(API_VERSION, "TrainingJob", "tune", ns))
                and t.get("status", {}).get("phase") == "Queued"
                and t
            ),
            "the job to queue",
        )
        assert queued["status"]["reason"].startswith("waiting for")
        status = endpoint(kube, ns, "shared")["status"]
        assert status["maxReplicasAllowed"] == 2 or "held back" in (status.get("reason") or "")
        kube.delete(API_VERSION, "ModelEndpoint", "shared", ns)
        wait_for(
            lambda: (
                (kube.get(API_VERSION, "TrainingJob", "tune", ns) or {}).get("status", {}).get("phase")
                == "Running"
            ),
            "training to take the freed GPUs",
        )
    finally:
        kube.delete(API_VERSION, "ModelEndpoint", "shared", ns)
        kube.delete(API_VERSION, "TrainingJob", "tune", ns)
        wait_for(lambda: not kube.list("v1", "Pod", namespace=ns), "the pods to go")


def test_an_endpoint_whose_minimum_exceeds_its_quota_is_refused_with_the_reason(
    kube, kubectl, serving_factory
):
    _, _, small, _ = serving_factory
    kube.apply(make_endpoint("greedy", small, gpus=2, minimum=2, maximum=2))
    try:
        # No amount of waiting frees quota the tenant does not have: Stalled, not Reconciling.
        kubectl("wait", "--for=condition=Stalled", "modelendpoint/greedy", "-n", small, "--timeout=60s")
        stalled = condition(endpoint(kube, small, "greedy"), "Stalled")
        assert stalled["reason"] == "Refused"
        assert (
            "spec.replicas.min: the endpoint needs 4 NVIDIA-L40S GPUs but tenant 'small' may hold 2"
            in stalled["message"]
        )
        assert kube.get("apps/v1", "Deployment", "greedy", small) is None, "not half-deployed"
    finally:
        kube.delete(API_VERSION, "ModelEndpoint", "greedy", small)


def test_scaling_through_the_scale_path_is_honoured_within_bounds(kube, kubectl, serving_factory):
    _, ns, _, _ = serving_factory
    kube.apply(make_endpoint("elastic", ns, gpus=1, minimum=1, maximum=3))
    try:
        kubectl("wait", "--for=condition=Ready", "modelendpoint/elastic", "-n", ns, "--timeout=90s")
        kubectl("scale", "deployment/elastic", "-n", ns, "--replicas=3")
        wait_for(
            lambda: endpoint(kube, ns, "elastic").get("status", {}).get("readyReplicas") == 3,
            "three replicas",
        )
        kubectl("scale", "deployment/elastic", "-n", ns, "--replicas=9")
        wait_for(
            lambda: kube.get("apps/v1", "Deployment", "elastic", ns)["spec"]["replicas"] == 3,
            "the operator to clamp to max",
        )
        assert endpoint(kube, ns, "elastic")["status"]["desiredReplicas"] == 3
    finally:
        kube.delete(API_VERSION, "ModelEndpoint", "elastic", ns)
        wait_for(lambda: not kube.list("v1", "Pod", namespace=ns), "the pods to go")
