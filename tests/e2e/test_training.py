"""TrainingJobs on the real control plane: gang admission, materialisation, restarts, suspend."""

import pytest
from factories import make_factory, make_tenant

from aifactory_operator.constants import API_VERSION, LABEL_RACK
from aifactory_operator.kube.client import Kube
from conftest import condition, unique, wait_for

# In the compatibility suite that make compat runs on the oldest supported minor.
pytestmark = pytest.mark.compat

STORAGE = [
    {
        "name": "nfs",
        "static": {"nfsServer": "nfs.factory.internal", "path": "/export"},
        "region": "de-fra",
        "capacity": "1Pi",
    }
]
POOL = {
    "name": "h100",
    "gpuProduct": "NVIDIA-H100-80GB-HBM3",
    "gpusPerNode": 8,
    "nodes": 4,
    "region": "de-fra",
    "topology": {"nodesPerNvlinkDomain": 1, "nvlinkDomainsPerRack": 2},
}


@pytest.fixture(scope="module")
def training_factory(kube, kubectl, operator):
    """A factory with 4 H100 nodes in 2 racks and two tenants: a (32 GPUs) and b (16 GPUs)."""
    name, ns_a, ns_b = unique("train"), unique("ta"), unique("tb")
    tenants = [
        make_tenant("a", ns_a, gpuQuota=[{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 32}]),
        make_tenant("b", ns_b, gpuQuota=[{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 16}]),
    ]
    kube.apply(make_factory(name, pools=[POOL], tenants=tenants, storage=STORAGE))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    yield name, ns_a, ns_b
    for ns in (ns_a, ns_b):
        for obj in kube.list(API_VERSION, "TrainingJob", namespace=ns):
            kube.delete(API_VERSION, "TrainingJob", obj["metadata"]["name"], ns)
        for obj in kube.list(API_VERSION, "Dataset", namespace=ns):
            kube.delete(API_VERSION, "Dataset", obj["metadata"]["name"], ns)
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    for ns in (ns_a, ns_b):
        kube.delete("v1", "Namespace", ns)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"aifactory.dev/factory={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def make_training(
    name: str,
    namespace: str,
    *,
    nodes: int = 2,
    duration: str = "2s",
    annotations: dict | None = None,
    **spec,
) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"sim.aifactory.dev/duration": duration, **(annotations or {})},
        },
        "spec": {
            "image": "registry.factory.internal/train:1",
            "command": ["torchrun", "train.py"],
            "nodes": nodes,
            "gpusPerNode": 8,
            "pool": "h100",
            **spec,
        },
    }


def training(kube: Kube, namespace: str, name: str) -> dict:
    return kube.get(API_VERSION, "TrainingJob", name, namespace) or {}


def phase(kube: Kube, namespace: str, name: str) -> str | None:
    return training(kube, namespace, name).get("status", {}).get("phase")


def wait_phase(kube: Kube, namespace: str, name: str, wanted: str, timeout: float = 90) -> dict:
    return wait_for(
        lambda: phase(kube, namespace, name) == wanted and training(kube, namespace, name),
        f"{name} to be {wanted}",
        timeout,
    )


def delete_all(kube: Kube, namespace: str) -> None:
    for obj in kube.list(API_VERSION, "TrainingJob", namespace=namespace):
        kube.delete(API_VERSION, "TrainingJob", obj["metadata"]["name"], namespace)
    wait_for(lambda: not kube.list("v1", "Pod", namespace=namespace), "the pods to go")


def test_an_admitted_job_becomes_an_indexed_job_with_torchrun_environment(kube, training_factory):
    _, ns, _ = training_factory
    kube.apply(make_training("llm", ns, duration="4s"))
    try:
        running = wait_phase(kube, ns, "llm", "Running")
        placement = running["status"]["placement"]
        assert placement["pool"] == "h100" and len(placement["nodes"]) == 2
        batch = kube.get("batch/v1", "Job", "llm-0", ns)
        assert (
            batch["spec"]["completionMode"],
            batch["spec"]["completions"],
            batch["spec"]["parallelism"],
        ) == ("Indexed", 2, 2)
        service = kube.get("v1", "Service", "llm", ns)
        assert service["spec"]["clusterIP"] == "None"
        pods = kube.list("v1", "Pod", namespace=ns, label_selector="aifactory.dev/trainingjob=llm")
        assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(placement["nodes"])
        spec = pods[0]["spec"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["MASTER_ADDR"] == f"llm-0-0.llm.{ns}.svc"
        assert (env["NNODES"], env["NPROC_PER_NODE"], env["WORLD_SIZE"], env["MASTER_PORT"]) == (
            "2",
            "8",
            "16",
            "29500",
        )
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
        residency = running["status"]["residency"]
        assert {n["jurisdiction"] for n in residency["nodes"]} == {"DE"}
        done = wait_phase(kube, ns, "llm", "Succeeded")
        assert "placement" not in done["status"] and done["status"]["completionTime"]
        assert condition(done, "Ready")["status"] == "True"
    finally:
        delete_all(kube, ns)


def test_more_demand_than_capacity_never_runs_a_partial_gang_and_everything_finishes(kube, training_factory):
    _, ns, _ = training_factory
    names = [f"gang-{i}" for i in range(5)]
    # The pool is busy while the gangs arrive, so they all queue and are then admitted by priority.
    kube.apply(make_training("blocker", ns, nodes=4, duration="4s"))
    wait_phase(kube, ns, "blocker", "Running")
    for i, name in enumerate(names):
        kube.apply(make_training(name, ns, nodes=2, duration="3s", priority=i))
    try:
        seen_queued = False

        def all_done() -> bool:
            nonlocal seen_queued
            statuses = {n: training(kube, ns, n).get("status", {}) for n in names}
            seen_queued = seen_queued or any(
                s.get("phase") == "Queued" and s.get("queuePosition") for s in statuses.values()
            )
            pods = kube.list("v1", "Pod", namespace=ns)
            unscheduled = [
                p["metadata"]["name"]
                for p in pods
                if (condition(p, "PodScheduled") or {}).get("status") == "False"
            ]
            assert unscheduled == [], f"pods the scheduler could not place: {unscheduled}"
            return all(s.get("phase") == "Succeeded" for s in statuses.values())

        wait_for(all_done, "every job to finish", timeout=180)
        assert seen_queued, "demand exceeded capacity, so some job must have queued"
        admitted = {n: training(kube, ns, n)["status"]["admittedTime"] for n in names}
        first = min(admitted.values())
        assert {n for n, t in admitted.items() if t == first} == {"gang-4", "gang-3"}, (
            f"admitted at {admitted}"
        )
    finally:
        delete_all(kube, ns)


def test_a_burst_larger_than_one_ticks_admission_limit_runs_all_at_once(kube, training_factory):
    """The e2e operator admits two jobs a tick (conftest): four that fit start over two ticks."""
    _, ns, _ = training_factory
    names = [f"burst-{i}" for i in range(4)]
    for name in names:
        kube.apply(make_training(name, ns, nodes=1, duration="60s"))
    try:
        wait_for(
            lambda: all(phase(kube, ns, n) == "Running" for n in names), "all four jobs running together"
        )
        nodes = [training(kube, ns, n)["status"]["placement"]["nodes"][0] for n in names]
        assert len(set(nodes)) == 4, f"one node each: {nodes}"
    finally:
        delete_all(kube, ns)


def test_higher_priority_overtakes_an_older_job(kube, training_factory):
    _, ns, _ = training_factory
    kube.apply(make_training("blocker", ns, nodes=4, duration="6s"))
    try:
        wait_phase(kube, ns, "blocker", "Running")
        kube.apply(make_training("old-low", ns, nodes=4, duration="30s", priority=1))
        kube.apply(make_training("new-high", ns, nodes=4, duration="30s", priority=10))
        wait_for(
            lambda: training(kube, ns, "old-low").get("status", {}).get("queuePosition") == 2,
            "the low job to queue second",
        )
        low = training(kube, ns, "old-low")["status"]
        assert low["reason"].startswith("waiting for")
        wait_phase(kube, ns, "new-high", "Running")
        assert phase(kube, ns, "old-low") == "Queued"
    finally:
        delete_all(kube, ns)


def test_a_tenant_over_quota_waits_while_another_runs(kube, training_factory):
    _, ns_a, ns_b = training_factory
    kube.apply(make_training("b-big", ns_b, nodes=2, duration="30s"))
    try:
        wait_phase(kube, ns_b, "b-big", "Running")
        kube.apply(make_training("b-more", ns_b, nodes=1, duration="2s"))
        kube.apply(make_training("a-one", ns_a, nodes=1, duration="30s"))
        wait_phase(kube, ns_a, "a-one", "Running")
        waiting = training(kube, ns_b, "b-more")["status"]
        assert waiting["phase"] == "Queued"
        assert (
            waiting["reason"]
            == "waiting for quota: tenant 'b' has 0 NVIDIA-H100-80GB-HBM3 GPUs left and the job needs 8"
        )
    finally:
        delete_all(kube, ns_a)
        delete_all(kube, ns_b)


def test_a_required_topology_job_lands_in_one_rack(kube, training_factory):
    _, ns, _ = training_factory
    kube.apply(
        make_training("compact", ns, nodes=2, duration="30s", topology={"mode": "required", "level": "rack"})
    )
    try:
        running = wait_phase(kube, ns, "compact", "Running")
        assert len(running["status"]["placement"]["domains"]) == 1
        racks = {
            kube.get("v1", "Node", n)["metadata"]["labels"][LABEL_RACK]
            for n in running["status"]["placement"]["nodes"]
        }
        assert len(racks) == 1
    finally:
        delete_all(kube, ns)


def test_an_application_failure_restarts_the_gang_from_the_checkpoint(kube, kubectl, training_factory):
    _, ns, _ = training_factory
    kube.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Dataset",
            "metadata": {"name": "ckpt", "namespace": ns},
            "spec": {
                "purpose": "checkpoint",
                "storage": {"name": "nfs", "path": "/ckpt"},
                "jurisdiction": "DE",
                "classification": "internal",
            },
        }
    )
    kubectl("wait", "--for=condition=Ready", "dataset/ckpt", "-n", ns, "--timeout=60s")
    flaky = make_training(
        "flaky",
        ns,
        duration="2s",
        annotations={"sim.aifactory.dev/first-attempt-exit-code": "3"},
        checkpoint={"dataset": "ckpt", "path": "/run1"},
    )
    kube.apply(flaky)
    try:
        wait_for(lambda: kube.get("batch/v1", "Job", "flaky-1", ns), "the second attempt", timeout=90)
        pods = wait_for(
            lambda: kube.list(
                "v1",
                "Pod",
                namespace=ns,
                label_selector="aifactory.dev/trainingjob=flaky,aifactory.dev/attempt=1",
            ),
            "the new pods",
        )
        env = {e["name"]: e.get("value") for e in pods[0]["spec"]["containers"][0]["env"]}
        assert (
            env["RESUME_FROM"] == "/checkpoints/run1/latest" and env["CHECKPOINT_DIR"] == "/checkpoints/run1"
        )
        done = wait_phase(kube, ns, "flaky", "Succeeded")
        assert (done["status"]["restarts"], done["status"]["disruptions"], done["status"]["attempt"]) == (
            1,
            0,
            1,
        )
        assert {d["name"] for d in done["status"]["residency"]["datasets"]} == {"ckpt"}
    finally:
        delete_all(kube, ns)


def test_exhausted_restarts_fail_the_job_with_the_reason(kube, training_factory):
    _, ns, _ = training_factory
    kube.apply(
        make_training(
            "broken",
            ns,
            nodes=1,
            duration="1s",
            annotations={"sim.aifactory.dev/exit-code": "2"},
            maxRestarts=1,
        )
    )
    try:
        failed = wait_phase(kube, ns, "broken", "Failed", timeout=120)
        assert failed["status"]["restarts"] == 1
        assert failed["status"]["reason"].startswith("failed after 1 restarts")
        assert condition(failed, "Stalled")["status"] == "True"
    finally:
        delete_all(kube, ns)


def test_a_node_taken_away_restarts_the_gang_without_spending_a_restart(kube, kubectl, training_factory):
    _, ns, _ = training_factory
    kube.apply(make_training("steady", ns, nodes=2, duration="300s", maxRestarts=0))
    try:
        running = wait_phase(kube, ns, "steady", "Running")
        lost = running["status"]["placement"]["nodes"][0]
        # A health checker marks the node failed; the taint manager evicts its pods (DisruptionTarget).
        kubectl("taint", "node", lost, "example.com/gpu-failed=true:NoExecute")
        try:
            restarted = wait_for(
                lambda: (
                    training(kube, ns, "steady").get("status", {}).get("disruptions") == 1
                    and training(kube, ns, "steady")
                ),
                "the disruption",
                timeout=120,
            )
            assert restarted["status"]["restarts"] == 0
            again = wait_phase(kube, ns, "steady", "Running")
            assert lost not in again["status"]["placement"]["nodes"]
        finally:
            kubectl("taint", "node", lost, "example.com/gpu-failed-")
    finally:
        delete_all(kube, ns)


def test_suspend_frees_the_gpus_and_resume_requeues(kube, training_factory):
    _, ns, _ = training_factory
    kube.apply(make_training("pausable", ns, nodes=4, duration="300s"))
    try:
        wait_phase(kube, ns, "pausable", "Running")
        kube.apply(make_training("pausable", ns, nodes=4, duration="300s", suspend=True))
        wait_phase(kube, ns, "pausable", "Suspended")
        wait_for(lambda: kube.get("batch/v1", "Job", "pausable-0", ns) is None, "the Job to go")
        kube.apply(make_training("meanwhile", ns, nodes=4, duration="2s"))
        wait_phase(kube, ns, "meanwhile", "Succeeded")
        kube.apply(make_training("pausable", ns, nodes=4, duration="300s", suspend=False))
        wait_phase(kube, ns, "pausable", "Running")
    finally:
        delete_all(kube, ns)


def test_deleting_a_job_removes_its_job_pods_and_service_and_frees_gpus(kube, training_factory):
    _, ns, _ = training_factory
    kube.apply(make_training("gone", ns, nodes=4, duration="300s"))
    wait_phase(kube, ns, "gone", "Running")
    kube.delete(API_VERSION, "TrainingJob", "gone", ns)
    wait_for(
        lambda: (
            kube.get("batch/v1", "Job", "gone-0", ns) is None
            and kube.get("v1", "Service", "gone", ns) is None
        ),
        "garbage collection",
    )
    wait_for(lambda: not kube.list("v1", "Pod", namespace=ns), "the pods to go")
    kube.apply(make_training("next", ns, nodes=4, duration="1s"))
    try:
        wait_phase(kube, ns, "next", "Succeeded")
    finally:
        delete_all(kube, ns)


def test_a_job_that_can_never_fit_is_stalled(kube, kubectl, training_factory):
    _, ns, _ = training_factory
    kube.apply(make_training("huge", ns, nodes=5))
    try:
        kubectl("wait", "--for=condition=Stalled", "trainingjob/huge", "-n", ns, "--timeout=60s")
        stalled = condition(training(kube, ns, "huge"), "Stalled")
        assert "spec.nodes: 5 exceeds the 4 nodes of pool 'h100'" in stalled["message"]
    finally:
        delete_all(kube, ns)
