"""The invariant monitor on the real control plane: a status that names other nodes than its Job
pins (here forged by a cluster admin, the one identity the status guard lets write it) is counted,
told as a Warning Event, and rewritten from the Job, which is the record of the decision."""

from factories import make_factory, make_tenant
from test_metrics import scrape, value
from test_training import STORAGE, make_training

from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.kube.client import Kube
from conftest import unique, wait_for

POOL = {
    "name": "h100",
    "gpuProduct": "NVIDIA-H100-80GB-HBM3",
    "gpusPerNode": 8,
    "nodes": 3,
    "region": "de-fra",
}
MISMATCH = "aifactory_admission_invariant_violations_total"


def job_pins(kube: Kube, namespace: str, name: str, attempt: int) -> list[str]:
    job = kube.get("batch/v1", "Job", f"{name}-{attempt}", namespace) or {}
    terms = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    return sorted(term["matchFields"][0]["values"][0] for term in terms)


def test_a_forged_placement_is_counted_told_and_rewritten_from_the_job(kube, kubectl, operator):
    name, namespace = unique("repair"), unique("repair")
    tenant = make_tenant("r", namespace, gpuQuota=[{"product": POOL["gpuProduct"], "gpus": 24}])
    kube.apply(make_factory(name, pools=[POOL], tenants=[tenant], storage=STORAGE))
    try:
        kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
        kube.apply(make_training("gang", namespace, nodes=2, duration="120s"))
        running = wait_for(
            lambda: (
                (t := kube.get(API_VERSION, "TrainingJob", "gang", namespace))
                and (t.get("status") or {}).get("phase") == "Running"
                and t
            ),
            "the gang to run",
        )
        pinned = job_pins(kube, namespace, "gang", running["status"]["attempt"])
        assert sorted(running["status"]["placement"]["nodes"]) == pinned
        nodes = kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={name}")
        [spare] = [n["metadata"]["name"] for n in nodes if n["metadata"]["name"] not in pinned]
        forged = [pinned[0], spare]
        before = value(scrape(), MISMATCH, invariant="placement-mismatch") or 0.0

        placement = {**running["status"]["placement"], "nodes": forged}
        kube.patch_status(API_VERSION, "TrainingJob", "gang", namespace, {"placement": placement})

        repaired = wait_for(
            lambda: (
                (t := kube.get(API_VERSION, "TrainingJob", "gang", namespace))
                and sorted(t["status"]["placement"]["nodes"]) == pinned
                and t
            ),
            "the status to follow the Job again",
        )
        assert repaired["status"]["phase"] == "Running" and repaired["status"].get("withdrawals", 0) == 0
        events = wait_for(
            lambda: [
                e
                for e in kube.list("v1", "Event", namespace=namespace)
                if e["involvedObject"]["name"] == "gang" and e["reason"] == "AdmissionRepaired"
            ],
            "the AdmissionRepaired event",
        )
        assert events[0]["type"] == "Warning"
        assert events[0]["message"].startswith("placement-mismatch: status named nodes")
        assert value(scrape(), MISMATCH, invariant="placement-mismatch") == before + 1
    finally:
        kube.delete(API_VERSION, "TrainingJob", "gang", namespace)
        kube.delete(API_VERSION, "AIFactory", name)
        wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
        kube.delete("v1", "Namespace", namespace)
