"""Events on the real control plane: `kubectl describe` tells a TrainingJob's and a ModelEndpoint's
story in order, and a job that waits for many ticks is told queued once."""

import re
import time

import pytest
from factories import make_factory, make_tenant
from gitops import ensure_kstatus, kstatus
from test_training import STORAGE, make_training

from aifactory_operator.constants import API_VERSION
from aifactory_operator.kube.client import Kube
from conftest import condition, unique, wait_for

# In the compatibility suite that make compat runs on the oldest supported minor.
pytestmark = pytest.mark.compat

POOL = {
    "name": "h100",
    "gpuProduct": "NVIDIA-H100-80GB-HBM3",
    "gpusPerNode": 8,
    "nodes": 2,
    "region": "de-fra",
}
NAMESPACES = 4  # one per test


@pytest.fixture(scope="module")
def events_factory(kube, kubectl, operator):
    """Two H100 nodes (16 GPUs) and one tenant with a fresh namespace for each test."""
    ensure_kstatus()
    name, namespaces = unique("story"), [unique("ev") for _ in range(NAMESPACES)]
    tenant = make_tenant(
        "a", namespaces[0], namespaces=namespaces, gpuQuota=[{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 32}]
    )
    kube.apply(make_factory(name, pools=[POOL], tenants=[tenant], storage=STORAGE))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    yield namespaces
    for ns in namespaces:
        for kind in ("ModelEndpoint", "TrainingJob", "Dataset"):
            for obj in kube.list(API_VERSION, kind, namespace=ns):
                kube.delete(API_VERSION, kind, obj["metadata"]["name"], ns)
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    for ns in namespaces:
        kube.delete("v1", "Namespace", ns)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"aifactory.dev/factory={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def make_endpoint(name: str, namespace: str) -> dict:
    """An endpoint whose one replica needs a whole node."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "weights",
            "runtime": {"image": "registry.factory.internal/vllm:0.6", "port": 8000},
            "gpusPerReplica": 8,
            "replicas": {"min": 1, "max": 1},
            "pool": "h100",
        },
    }


def make_model(namespace: str) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": "weights", "namespace": namespace},
        "spec": {
            "purpose": "model",
            "storage": {"name": "nfs", "path": "/weights"},
            "jurisdiction": "DE",
            "classification": "internal",
            "digest": "sha256:" + "d" * 64,
        },
    }


def phase(kube: Kube, namespace: str, name: str) -> str | None:
    return (kube.get(API_VERSION, "TrainingJob", name, namespace) or {}).get("status", {}).get("phase")


def wait_phase(kube: Kube, namespace: str, name: str, wanted: str, timeout: float = 90) -> None:
    wait_for(lambda: phase(kube, namespace, name) == wanted, f"{name} to be {wanted}", timeout)


def events_of(kube: Kube, namespace: str, kind: str, name: str) -> list[dict]:
    """The Event objects about one object, as the API server lists them."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    return kube.list("v1", "Event", namespace=namespace, field_selector=selector)


def described_events(kubectl, namespace: str, resource: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of each row in the Events table of `kubectl describe`, top to bottom."""
    text = kubectl("describe", resource, "-n", namespace).stdout
    table = text.split("\nEvents:", 1)[1].splitlines()
    rows = [line.split(None, 4) for line in table[3:] if line.strip()]
    return [(row[0], row[1], row[4]) for row in rows if len(row) == 5]


def described_through(kubectl, namespace: str, resource: str, last_reason: str) -> list[tuple[str, str, str]]:
    """The described Events once the one told last has arrived: each Event is posted after the status
    write it tells about lands, so it may trail the status a test waited on."""
    return wait_for(
        lambda: (
            (rows := described_events(kubectl, namespace, resource)) and rows[-1][1] == last_reason and rows
        ),
        f"the {last_reason} event of {resource}",
    )


def test_describe_tells_a_gang_job_queued_admitted_running_then_restarted_after_a_failure(
    kube, kubectl, events_factory
):
    ns = events_factory[0]
    kube.apply(make_training("blocker", ns, duration="4s"))
    wait_phase(kube, ns, "blocker", "Running")
    failing_once = {"sim.aifactory.dev/first-attempt-exit-code": "3"}
    kube.apply(make_training("gang", ns, duration="3s", annotations=failing_once))
    wait_phase(kube, ns, "gang", "Succeeded", timeout=120)
    rows = described_through(kubectl, ns, "trainingjob/gang", "Succeeded")
    reasons = [reason for _, reason, _ in rows]
    assert reasons[:3] == ["Queued", "Admitted", "Running"], rows
    assert reasons[3] == "Restarted" and reasons[-1] == "Succeeded", rows
    restarted = rows[3]
    assert restarted[0] == "Warning"
    assert "Attempt 0 ended by an application failure; requeued as attempt 1" in restarted[2]
    assert re.search(r"Admitted to pool 'h100' on 2 nodes", rows[1][2])
    assert all(kind == "Normal" for kind, reason, _ in rows if reason != "Restarted")


def test_a_job_waiting_across_many_ticks_has_one_queued_event(kube, events_factory):
    ns = events_factory[1]
    kube.apply(make_training("holder", ns, duration="60s"))
    wait_phase(kube, ns, "holder", "Running")
    for i in range(3):
        kube.apply(make_training(f"waiter-{i}", ns))
    for i in range(3):
        wait_phase(kube, ns, f"waiter-{i}", "Queued")
    time.sleep(8)  # 16 ticks of 0.5 s, each re-planning the queue
    for i in range(3):
        told = events_of(kube, ns, "TrainingJob", f"waiter-{i}")
        assert [(e["reason"], e["count"]) for e in told] == [("Queued", 1)], told
        assert told[0]["message"].startswith(f"Queued at position {i + 1}: waiting for 16")
    # The factory's GPUs are shared by this module's tests: free them for the next one.
    for name in ("holder", *(f"waiter-{i}" for i in range(3))):
        kube.delete(API_VERSION, "TrainingJob", name, ns)


def test_a_refused_job_says_so_in_its_phase_and_a_warning(kube, kubectl, events_factory):
    ns = events_factory[2]
    kube.apply(make_training("huge", ns, nodes=3))
    kubectl("wait", "--for=condition=Stalled", "trainingjob/huge", "-n", ns, "--timeout=60s")
    assert phase(kube, ns, "huge") == "Refused"
    # The status is the record; its Event is posted after the status write lands, so it may trail it.
    [refused] = wait_for(lambda: events_of(kube, ns, "TrainingJob", "huge"), "the Refused event")
    assert (refused["type"], refused["reason"]) == ("Warning", "Refused")
    assert "spec.nodes: 3 exceeds the 2 nodes of pool 'h100'" in refused["message"]


def test_an_endpoint_waiting_for_gpus_is_reconciling_then_tells_its_admission(kube, kubectl, events_factory):
    ns = events_factory[3]
    kube.apply(make_model(ns))
    kubectl("wait", "--for=condition=Ready", "dataset/weights", "-n", ns, "--timeout=60s")
    kube.apply(make_training("holder", ns, duration="300s"))
    wait_phase(kube, ns, "holder", "Running")
    kube.apply(make_endpoint("chat", ns))
    waiting = wait_for(
        lambda: (
            (e := kube.get(API_VERSION, "ModelEndpoint", "chat", ns))
            and (c := condition(e, "Reconciling"))
            and c["reason"] == "InsufficientCapacity"
            and e
        ),
        "the endpoint to wait for capacity",
    )
    assert condition(waiting, "Stalled") is None
    assert condition(waiting, "Ready")["status"] == "False"
    [verdict] = kstatus([waiting])
    assert verdict["status"] == "InProgress"
    assert verdict["message"].startswith("cannot reserve replicas.min: ")
    time.sleep(3)  # several ticks of waiting
    kube.delete(API_VERSION, "TrainingJob", "holder", ns)
    kubectl("wait", "--for=condition=Ready", "modelendpoint/chat", "-n", ns, "--timeout=90s")
    rows = described_through(kubectl, ns, "modelendpoint/chat", "Ready")
    assert [(kind, reason) for kind, reason, _ in rows] == [
        ("Warning", "InsufficientCapacity"),
        ("Normal", "Admitted"),
        ("Normal", "Ready"),
    ], rows


def test_a_job_in_a_namespace_of_no_tenant_is_refused_with_a_warning(kube, events_factory):
    outside = unique("notenant")
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": outside}})
    try:
        kube.apply(make_training("stray", outside))
        wait_phase(kube, outside, "stray", "Refused", timeout=60)
        [refused] = wait_for(lambda: events_of(kube, outside, "TrainingJob", "stray"), "the Refused event")
        assert (refused["type"], refused["reason"]) == ("Warning", "Refused")
        assert f"metadata.namespace: '{outside}' belongs to no AIFactory tenant" in refused["message"]
    finally:
        kube.delete(API_VERSION, "TrainingJob", "stray", outside)
        kube.delete("v1", "Namespace", outside)
