"""Crash at every write point of a TrainingJob's life: the operator is killed right after its i-th
API write (start-up writes included) while it admits and starts a two-node job, restarted, and the
job must end Running with exactly one attempt: one batch Job, one pod per node, no restart spent.

`make test` visits a sample of the points; AIFACTORY_CHAOS_FULL=1 (make bench) visits every one."""

import os

import pytest
from chaos_figures import record
from factories import make_factory, make_tenant
from kubernetes.client.exceptions import ApiException
from test_chaos_crash_points import WRITE_LINE, crashing_operator
from test_chaos_recovery import is_ready
from test_training import make_training

from aifactory_operator.constants import API_VERSION, LABEL_TRAININGJOB
from aifactory_operator.kube.client import Kube
from conftest import unique, wait_for

pytestmark = pytest.mark.chaos


def status_of(kube: Kube, name: str, namespace: str) -> dict:
    return (kube.get(API_VERSION, "TrainingJob", name, namespace) or {}).get("status") or {}


def submit(kube: Kube, body: dict, operator) -> bool:
    """Creates the job once the operator's webhook answers; False when the operator died first."""

    def created() -> bool:
        try:
            kube.apply(body)
        except ApiException:
            return not operator.is_running()
        return True

    wait_for(created, "the webhook to admit the job, or the operator to crash")
    return (
        kube.get(API_VERSION, "TrainingJob", body["metadata"]["name"], body["metadata"]["namespace"])
        is not None
    )


def attempts(kube: Kube, name: str, namespace: str) -> tuple[list[str], int]:
    selector = f"{LABEL_TRAININGJOB}={name}"
    jobs = [
        j["metadata"]["name"]
        for j in kube.list("batch/v1", "Job", namespace=namespace, label_selector=selector)
    ]
    pods = kube.list("v1", "Pod", namespace=namespace, label_selector=selector)
    return sorted(jobs), sum(p.get("status", {}).get("phase") == "Running" for p in pods)


def is_running(kube: Kube, name: str, namespace: str) -> bool:
    return status_of(kube, name, namespace).get("phase") == "Running"


def count_writes(kube: Kube, kubeconfig, layout, namespace: str) -> int:
    """The writes of one clean start and one job started, from the client's request log."""
    log = layout.logs / f"operator-{unique('tjcount')}.log"
    probe = crashing_operator(kubeconfig, layout, 10**6, log.name)
    name = unique("count")
    try:
        assert submit(kube, make_training(name, namespace, duration="600s"), probe)
        wait_for(lambda: is_running(kube, name, namespace), "the counted job Running")
    finally:
        probe.stop()
    kube.delete(API_VERSION, "TrainingJob", name, namespace)
    return len(WRITE_LINE.findall(log.read_text()))


def test_a_crash_after_any_trainingjob_write_leaves_exactly_one_attempt(kube, kubeconfig, layout, operator):
    factory = unique("tjcrash")
    namespace = f"{factory}-a"
    kube.apply(make_factory(factory, h100_nodes=4, l40s_nodes=0, tenants=[make_tenant("a", namespace)]))
    wait_for(lambda: is_ready(kube, factory), "the factory Ready", timeout=120)
    operator.stop()
    try:
        total = count_writes(kube, kubeconfig, layout, namespace)
        points = list(range(1, total + 1))
        if not os.environ.get("AIFACTORY_CHAOS_FULL"):
            points = points[-4:]  # the job's own writes come last, after start-up's
        converged, extra_attempts, restarts = 0, 0, 0
        for point in points:
            name = unique("tj")
            victim = crashing_operator(kubeconfig, layout, point, "operator-tjchaos.log")
            submitted = submit(kube, make_training(name, namespace, duration="600s"), victim)
            if submitted:
                wait_for(
                    lambda v=victim, n=name: not v.is_running() or is_running(kube, n, namespace),
                    "crash or Running",
                )
            victim.stop()
            operator.start()
            if not submitted:
                assert submit(kube, make_training(name, namespace, duration="600s"), operator)
            wait_for(
                lambda n=name: is_running(kube, n, namespace), f"{name} Running after the crash at {point}"
            )
            wait_for(lambda n=name: attempts(kube, n, namespace)[1] == 2, f"{name}'s two pods Running")
            jobs, _ = attempts(kube, name, namespace)
            extra_attempts += len(jobs) - 1
            restarts += status_of(kube, name, namespace).get("restarts", 0)
            assert jobs == [f"{name}-0"], (point, jobs)
            assert restarts == 0, point
            converged += 1
            kube.delete(API_VERSION, "TrainingJob", name, namespace)
            wait_for(lambda n=name: attempts(kube, n, namespace) == ([], 0), f"{name} cleaned up")
            operator.stop()
        record(
            "trainingjob_crash_points",
            converged=converged,
            points=len(points),
            writes_in_a_clean_run=total,
            extra_attempts=extra_attempts,
            restarts_spent=restarts,
        )
    finally:
        if not operator.is_running():
            operator.start()
        kube.delete(API_VERSION, "AIFactory", factory)
        wait_for(
            lambda: kube.get(API_VERSION, "AIFactory", factory) is None, "the factory deleted", timeout=120
        )
