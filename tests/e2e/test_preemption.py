"""Preemption on the real control plane (docs/sharing.md#preemption): an urgent job stops a
lower-priority gang of its tenant, whose workers get the grace period before its nodes are given to
the urgent job; a lender takes back what it lent, and the victim resumes from its checkpoint;
non-preemptible jobs, equal priorities and young gangs are left alone."""

import json
import time

import pytest
from factories import make_factory, make_tenant
from test_metrics import scrape, value
from test_serving import DIGEST_A, endpoint, make_endpoint, model_dataset
from test_training import POOL, STORAGE, delete_all, make_training, training, wait_phase

from aifactory_operator.constants import API_VERSION, AUDIT_SEGMENT_PREFIX, OPERATOR_NAMESPACE
from aifactory_operator.reconcile.training import parse_time
from conftest import create_refusal, unique, wait_for

H100 = "NVIDIA-H100-80GB-HBM3"
GRACE = 10
# The simulated trainer uses its whole grace period to write its checkpoint (kwok-stages.yaml).
CHECKPOINTS = {"sim.aifactory.dev/checkpoint-on-stop": "true"}


@pytest.fixture(scope="module")
def contested(kube, kubectl, operator):
    """4 H100 nodes; research: 16 GPUs, may borrow 16; citizen: 16 GPUs, lends them all; both
    preempt (within tenant by priority, reclaim of anything lent), grace period 10 s."""
    name, research, citizen = unique("preempt"), unique("pr"), unique("pc")
    tenants = [
        make_tenant(
            "research",
            research,
            gpuQuota=[{"product": H100, "gpus": 16, "borrowingLimit": 16}],
            priorityClasses=["urgent-training"],
        ),
        make_tenant("citizen", citizen, gpuQuota=[{"product": H100, "gpus": 16}]),
    ]
    models = {
        "name": "models",
        "static": {"nfsServer": "nfs.factory.internal", "path": "/models"},
        "region": "de-fra",
        "capacity": "10Ti",
    }
    factory = make_factory(name, pools=[POOL], tenants=tenants, storage=[*STORAGE, models])
    factory["spec"]["scheduling"] = {
        "preemption": {"withinTenant": "LowerPriority", "reclaim": "Any"},
        "gracePeriodSeconds": GRACE,
    }
    kube.apply(factory)
    kube.apply(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "urgent-training"},
            "value": 5000,
            "description": "urgent training (orders admission and preemption only)",
        }
    )
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    for ns in (research, citizen):
        kube.apply(
            {
                "apiVersion": API_VERSION,
                "kind": "Dataset",
                "metadata": {"name": "ckpt", "namespace": ns},
                "spec": {
                    "purpose": "checkpoint",
                    "storage": {"name": "nfs", "path": f"/{ns}/ckpt"},
                    "jurisdiction": "DE",
                    "classification": "internal",
                },
            }
        )
        kubectl("wait", "--for=condition=Ready", "dataset/ckpt", "-n", ns, "--timeout=60s")
    yield name, research, citizen
    for ns in (research, citizen):
        delete_all(kube, ns)
    kube.delete(API_VERSION, "AIFactory", name)
    kube.delete("scheduling.k8s.io/v1", "PriorityClass", "urgent-training")
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    for ns in (research, citizen):
        kube.delete("v1", "Namespace", ns)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"aifactory.dev/factory={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def long_job(name: str, namespace: str, **spec) -> dict:
    return make_training(
        name,
        namespace,
        nodes=spec.pop("nodes", 1),
        duration="600s",
        annotations=CHECKPOINTS,
        checkpoint={"dataset": "ckpt", "path": f"/{name}"},
        **spec,
    )


def events(kube, namespace: str, name: str, reason: str) -> list[dict]:
    return [
        e
        for e in kube.list("v1", "Event", namespace=namespace)
        if e["involvedObject"].get("name") == name and e.get("reason") == reason
    ]


def preemptions(reason: str) -> float:
    return value(scrape(), "aifactory_preemptions_total", reason=reason) or 0.0


def audit_text(kube) -> str:
    maps = kube.list("v1", "ConfigMap", namespace=OPERATOR_NAMESPACE)
    return " ".join(
        str(m.get("data") or {}) for m in maps if m["metadata"]["name"].startswith(AUDIT_SEGMENT_PREFIX)
    )


def pods_of(kube, namespace: str, job: str, attempt: int) -> list[dict]:
    selector = f"aifactory.dev/trainingjob={job},aifactory.dev/attempt={attempt}"
    return kube.list("v1", "Pod", namespace=namespace, label_selector=selector)


def test_an_urgent_job_preempts_the_youngest_lower_priority_gang_which_resumes_from_its_checkpoint(
    kube, contested
):
    _, research, _ = contested
    before = preemptions("WithinTenant")
    for i, priority in enumerate([10, 10, 10, 50]):
        kube.apply(long_job(f"low{i}", research, priority=priority))
        wait_phase(kube, research, f"low{i}", "Running")
    try:
        # All four nodes are busy; the urgent job (priority from its PriorityClass) needs one.
        kube.apply(long_job("urgent", research, priorityClassName="urgent-training"))
        victim = wait_for(
            lambda: (s := training(kube, research, "low2").get("status", {})).get("preemptions") and s,
            "the youngest priority-10 gang to be preempted",
            30,
        )
        assert victim["attempt"] == 1 and victim.get("restarts", 0) == 0
        assert (
            victim["reason"] == f"preempted by {research}/urgent (priority 5000 over 10) of the same tenant"
        )
        for spared in ("low0", "low1", "low3"):
            status = training(kube, research, spared)["status"]
            assert status["phase"] == "Running" and not status.get("preemptions"), (spared, status)
        # The victim's worker terminates with the grace period, and its node is not given away.
        [pod] = wait_for(
            lambda: [p for p in pods_of(kube, research, "low2", 0) if p["metadata"].get("deletionTimestamp")],
            "the victim's pod to be terminating",
        )
        assert pod["spec"]["terminationGracePeriodSeconds"] == GRACE
        reasons = set()  # what the urgent job says while it waits, until it runs

        def urgent_running() -> bool:
            status = training(kube, research, "urgent").get("status", {})
            reasons.add(status.get("reason") or "")
            return status.get("phase") == "Running"

        wait_for(urgent_running, "the urgent job to run", 60)
        assert any("stopped gangs are releasing" in r for r in reasons), reasons
        running = wait_phase(kube, research, "urgent", "Running", timeout=60)["status"]
        # Admitted once the grace period ended (the deletion timestamp is its end), on the freed node.
        assert parse_time(running["admittedTime"]) >= parse_time(pod["metadata"]["deletionTimestamp"])
        assert running["placement"]["nodes"] == [pod["spec"]["nodeName"]]
        assert events(kube, research, "low2", "Preempted") and events(kube, research, "urgent", "Preempting")
        wait_for(lambda: preemptions("WithinTenant") > before, "the preemption to be counted", 15)
        wait_for(lambda: f"{research}/urgent" in audit_text(kube), "the audit entry", 15)
        # The victim is queued again and, once capacity frees, resumes from its checkpoint.
        kube.delete(API_VERSION, "TrainingJob", "low0", research)
        wait_phase(kube, research, "low2", "Running", timeout=60)
        [resumed] = pods_of(kube, research, "low2", 1)
        env = {e["name"]: e.get("value") for e in resumed["spec"]["containers"][0]["env"]}
        assert env["RESUME_FROM"] == "/checkpoints/low2/latest"
    finally:
        delete_all(kube, research)


def test_a_lender_reclaims_lent_gpus_and_nothing_non_preemptible_or_of_equal_priority_is_touched(
    kube, contested
):
    _, research, citizen = contested
    before = preemptions("Reclaim")
    kube.apply(long_job("pinned", research, preemptible=False))
    wait_phase(kube, research, "pinned", "Running")
    for i in range(3):  # 8 + 24: research holds its 16 and borrows 16
        kube.apply(long_job(f"b{i}", research))
        wait_phase(kube, research, f"b{i}", "Running")
    try:
        # citizen wants 16 of its own 16 back: two borrowed gangs stop, never the pinned one.
        kube.apply(long_job("mine", citizen, nodes=2))
        running = wait_phase(kube, citizen, "mine", "Running", timeout=90)
        statuses = {n: training(kube, research, n)["status"] for n in ("pinned", "b0", "b1", "b2")}
        stopped = sorted(n for n, s in statuses.items() if s.get("preemptions"))
        assert len(stopped) == 2 and "pinned" not in stopped, statuses
        for name in stopped:
            [told] = events(kube, research, name, "Preempted")
            assert (
                f"preempted by {citizen}/mine (tenant 'citizen') to reclaim 16 {H100} GPUs" in told["message"]
            )
        assert len(running["status"]["placement"]["nodes"]) == 2
        wait_for(lambda: preemptions("Reclaim") >= before + 2, "two reclaims counted", 15)
        # research cannot borrow the reclaimed share back while citizen uses it.
        time.sleep(3)
        assert sorted(
            n for n in statuses if training(kube, research, n)["status"]["phase"] == "Running"
        ) == sorted(set(statuses) - set(stopped))
    finally:
        delete_all(kube, research)
        delete_all(kube, citizen)


def set_min_runtime(kube, kubectl, factory: str, seconds: int) -> None:
    patch = json.dumps({"spec": {"scheduling": {"minRuntimeSeconds": seconds}}})
    kubectl("patch", "aifactory", factory, "--type=merge", "-p", patch)
    kubectl("wait", "--for=condition=Ready", f"aifactory/{factory}", "--timeout=60s")


def test_min_runtime_protects_young_gangs_and_equal_priority_never_preempts(kube, kubectl, contested):
    factory, research, _ = contested
    set_min_runtime(kube, kubectl, factory, 3600)
    for i in range(4):
        kube.apply(long_job(f"eq{i}", research, priority=7))
        wait_phase(kube, research, f"eq{i}", "Running")
    try:
        kube.apply(long_job("same", research, priority=7))
        kube.apply(long_job("higher", research, priority=8))
        for _ in range(3):  # several ticks: nothing is stopped while every gang is younger than an hour
            time.sleep(2)
            assert not any(training(kube, research, f"eq{i}")["status"].get("preemptions") for i in range(4))
        assert training(kube, research, "higher")["status"]["reason"].startswith("waiting for")
        # Once the gangs are old enough, the higher-priority job stops one; the equal one never does.
        set_min_runtime(kube, kubectl, factory, 0)
        wait_phase(kube, research, "higher", "Running", timeout=60)
        stopped = [i for i in range(4) if training(kube, research, f"eq{i}")["status"].get("preemptions")]
        assert len(stopped) == 1, stopped
        time.sleep(4)
        assert training(kube, research, "same")["status"]["phase"] == "Queued"
        assert stopped == [
            i for i in range(4) if training(kube, research, f"eq{i}")["status"].get("preemptions")
        ]
    finally:
        set_min_runtime(kube, kubectl, factory, 0)
        delete_all(kube, research)


def test_a_priority_class_the_tenant_may_not_use_is_refused_at_admission(kube, contested):
    _, _, citizen = contested
    body = long_job("sneaky", citizen, priorityClassName="urgent-training")
    refusal = create_refusal(kube, body, status=403)
    assert "PriorityClass 'urgent-training' is not one tenant 'citizen' may use (none)" in refusal, refusal


def test_an_endpoint_gives_back_borrowed_replicas_first_and_keeps_its_minimum(kube, kubectl, contested):
    _, research, citizen = contested
    before = preemptions("Reclaim")
    kube.apply(model_dataset(research, DIGEST_A, "weights"))
    kubectl("wait", "--for=condition=Ready", "dataset/weights", "-n", research, "--timeout=60s")
    chat = make_endpoint("chat", research, model="weights", gpus=8, minimum=1, maximum=3, pool="h100")
    kube.apply(chat)
    try:
        kubectl("wait", "--for=condition=Ready", "modelendpoint/chat", "-n", research, "--timeout=90s")
        # As its autoscaler would: 3 replicas of 8 GPUs, 8 of them on quota citizen lends.
        kubectl("scale", "deployment/chat", "-n", research, "--replicas=3")
        wait_for(
            lambda: endpoint(kube, research, "chat")["status"].get("readyReplicas") == 3, "three replicas"
        )
        assert endpoint(kube, research, "chat")["status"]["maxReplicasAllowed"] == 3
        # citizen wants two nodes of its own share: one replica goes, no more, and no gang is stopped.
        kube.apply(long_job("mine", citizen, nodes=2))
        wait_phase(kube, citizen, "mine", "Running", timeout=90)
        assert kube.get("apps/v1", "Deployment", "chat", research)["spec"]["replicas"] == 2
        status = endpoint(kube, research, "chat")["status"]
        assert status["maxReplicasAllowed"] == 2 and status["readyReplicas"] >= 1, status
        assert preemptions("Reclaim") == before
    finally:
        kube.delete(API_VERSION, "ModelEndpoint", "chat", research)
        delete_all(kube, citizen)
        wait_for(lambda: not kube.list("v1", "Pod", namespace=research), "the endpoint's pods to go")
