"""An AIFactory on the real control plane: simulated GPU nodes, status, scheduling, cleanup."""

import pytest
from factories import make_factory

from aifactory_operator.constants import API_VERSION, GPU_RESOURCE, LABEL_FACTORY, LABEL_POOL
from conftest import condition, unique, wait_for

# In the compatibility suite that make compat runs on the oldest supported minor.
pytestmark = pytest.mark.compat


def factory_nodes(kube, name: str) -> list[dict]:
    return kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={name}")


def get_factory(kube, name: str) -> dict:
    return kube.get(API_VERSION, "AIFactory", name) or {}


@pytest.fixture
def factory(kube, operator):
    """A factory applied for one test and deleted after it."""
    name = unique("aif")
    kube.apply(make_factory(name))
    yield name
    kube.delete(API_VERSION, "AIFactory", name)


def test_factory_becomes_ready_with_its_gpu_nodes(kube, kubectl, factory):
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=90s")
    nodes = factory_nodes(kube, factory)
    assert sorted(n["metadata"]["name"] for n in nodes) == [
        f"{factory}-h100-0",
        f"{factory}-h100-1",
        f"{factory}-l40s-0",
    ]
    assert all(condition(n, "Ready")["status"] == "True" for n in nodes)
    gpus = {n["metadata"]["name"]: n["status"]["allocatable"][GPU_RESOURCE] for n in nodes}
    assert gpus == {f"{factory}-h100-0": "8", f"{factory}-h100-1": "8", f"{factory}-l40s-0": "4"}
    stored = get_factory(kube, factory)
    status = stored["status"]
    assert status["observedGeneration"] == stored["metadata"]["generation"]
    assert (status["gpusReady"], status["gpusDesired"]) == (20, 20)
    assert {p["name"]: p["nodesReady"] for p in status["pools"]} == {"h100": 2, "l40s": 1}
    assert condition(stored, "Stalled") is None


def test_a_gpu_pod_is_scheduled_onto_a_pool_node(kube, kubectl, factory, namespace):
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=90s")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gpu-probe", "namespace": namespace},
        "spec": {
            "nodeSelector": {LABEL_FACTORY: factory, LABEL_POOL: "h100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "cuda",
                    "image": "registry.factory.internal/cuda:12",
                    "resources": {"limits": {GPU_RESOURCE: "4"}},
                }
            ],
        },
    }
    kube.apply(pod)
    running = wait_for(
        lambda: (
            (p := kube.get("v1", "Pod", "gpu-probe", namespace))
            and p["status"].get("phase") == "Running"
            and p
        ),
        "the GPU pod to run",
    )
    assert running["spec"]["nodeName"] in {f"{factory}-h100-0", f"{factory}-h100-1"}


def test_a_pod_asking_for_more_gpus_than_a_node_has_stays_pending(kube, factory, namespace, kubectl):
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=90s")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "too-big", "namespace": namespace},
        "spec": {
            "nodeSelector": {LABEL_FACTORY: factory},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [
                {
                    "name": "c",
                    "image": "registry.factory.internal/c:1",
                    "resources": {"limits": {GPU_RESOURCE: "9"}},
                }
            ],
        },
    }
    kube.apply(pod)
    unschedulable = wait_for(
        lambda: condition(kube.get("v1", "Pod", "too-big", namespace), "PodScheduled"),
        "the scheduler's verdict",
    )
    assert unschedulable["status"] == "False"
    assert "Insufficient nvidia.com/gpu" in unschedulable["message"]


def test_scaling_a_pool_down_and_up_follows_the_spec(kube, kubectl, factory):
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=90s")
    kube.apply(make_factory(factory, h100_nodes=1, l40s_nodes=2))
    wait_for(
        lambda: (
            sorted(n["metadata"]["name"] for n in factory_nodes(kube, factory))
            == [f"{factory}-h100-0", f"{factory}-l40s-0", f"{factory}-l40s-1"]
        ),
        "the pools to be resized",
    )
    wait_for(lambda: get_factory(kube, factory)["status"].get("gpusReady") == 16, "16 GPUs ready")


def test_reconciling_again_changes_no_node(kube, kubectl, factory):
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=90s")
    before = {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in factory_nodes(kube, factory)}
    generation = get_factory(kube, factory)["metadata"]["generation"]
    kubectl("annotate", f"aifactory/{factory}", "example.com/touched=yes")
    wait_for(
        lambda: "example.com/touched" in (get_factory(kube, factory)["metadata"].get("annotations") or {}),
        "the annotation",
    )
    # The annotation triggers an update handler; wait until kopf has recorded handling it.
    wait_for(lambda: _handled_touch(get_factory(kube, factory)), "the operator to handle the change")
    after = {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in factory_nodes(kube, factory)}
    assert set(after) == set(before)
    # KWOK renews node status; what must not change is the part we own: labels, taints, owner.
    for node in factory_nodes(kube, factory):
        managers = [
            m["manager"] for m in node["metadata"]["managedFields"] if m["manager"] == "aifactory-operator"
        ]
        assert len(managers) == 1
    assert get_factory(kube, factory)["metadata"]["generation"] == generation


def _handled_touch(factory: dict) -> bool:
    last = (factory["metadata"].get("annotations") or {}).get("aifactory.dev/last-handled-configuration", "")
    return "example.com/touched" in last


def test_a_deleted_node_is_recreated(kube, kubectl, factory):
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=90s")
    kube.delete("v1", "Node", f"{factory}-l40s-0")
    wait_for(
        lambda: (n := kube.get("v1", "Node", f"{factory}-l40s-0")) and condition(n, "Ready"),
        "the operator to recreate the node",
    )


def test_deleting_the_factory_removes_its_nodes(kube, kubectl, operator):
    name = unique("aif")
    kube.apply(make_factory(name))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: not get_factory(kube, name), "the factory to be deleted")
    wait_for(lambda: factory_nodes(kube, name) == [], "garbage collection of its nodes")


def test_an_unactionable_factory_is_stalled_naming_the_field(kube, kubectl, operator):
    name = unique("aif")
    tenant = {
        "name": "research",
        "namespaces": ["research"],
        "clearance": "internal",
        "gpuQuota": [{"product": "NVIDIA-B200", "gpus": 8}],
    }
    kube.apply(make_factory(name, tenants=[tenant]))
    try:
        kubectl("wait", "--for=condition=Stalled", f"aifactory/{name}", "--timeout=60s")
        stored = get_factory(kube, name)
        ready, stalled = condition(stored, "Ready"), condition(stored, "Stalled")
        assert ready["status"] == "False"
        assert stalled["reason"] == "InvalidSpec"
        assert "spec.tenants[0].gpuQuota[0].product: no node pool offers 'NVIDIA-B200'" in stalled["message"]
        assert factory_nodes(kube, name) == []
    finally:
        kube.delete(API_VERSION, "AIFactory", name)


def test_printer_columns_tell_the_story(kubectl, factory):
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=90s")
    out = kubectl("get", "aif", factory).stdout.splitlines()
    assert out[0].split() == [
        "NAME",
        "JURISDICTION",
        "AIR-GAPPED",
        "POOLS",
        "GPUS",
        "TENANTS",
        "READY",
        "AGE",
    ]
    assert out[1].split()[:7] == [factory, "DE", "true", "2", "20/20", "0", "True"]
