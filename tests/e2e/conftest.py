"""End-to-end fixtures: one real control plane per session (reused when already up), the CRDs,
the operator as a child process, and a fresh namespace per test."""

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_figures import write_if_asked
from kubernetes.client.exceptions import ApiException

from aifactory_operator.crdgen import generate_crds
from aifactory_operator.devcluster import down, up
from aifactory_operator.devcluster.binaries import ensure_binaries
from aifactory_operator.devcluster.layout import Layout, default_layout
from aifactory_operator.kube.client import Kube, load_config
from aifactory_operator.launcher import OperatorProcess

REPO = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 90.0
# The e2e operator serves Prometheus metrics here (16460 by default; moves with AIFACTORY_PORT_BASE).
METRICS_PORT = default_layout(REPO).ports.operator_metrics


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def pytest_sessionfinish(session: pytest.Session) -> None:
    write_if_asked()


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Polls `check` until it returns something truthy; fails the test naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="session")
def layout() -> Iterator[Layout]:
    """The local control plane, started for this session unless one is already up (then reused)."""
    layout = default_layout(REPO)
    started = up(REPO, layout)
    yield layout
    if started:
        down(layout)


@pytest.fixture(scope="session")
def kubeconfig(layout: Layout) -> Path:
    return layout.kubeconfig


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> Kube:
    return Kube(load_config(str(kubeconfig)))


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """kubectl built with the control plane, pointed at the test cluster."""
    binary = str(ensure_binaries(REPO) / "kubectl")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        result = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=180)
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def crds(kube: Kube) -> list[str]:
    """Our CRDs, applied and Established."""
    names = []
    for crd in generate_crds().values():
        kube.apply(crd)
        names.append(crd["metadata"]["name"])
    for name in names:
        wait_for(lambda name=name: is_established(kube, name), f"CRD {name} Established")
    kube.dynamic.resources.invalidate_cache()
    return names


def is_established(kube: Kube, name: str) -> bool:
    crd = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name) or {}
    # A CRD just created may carry `conditions: null` until the API server has looked at it.
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="session")
def operator(crds: list[str], kubeconfig: Path, layout: Layout) -> Iterator[OperatorProcess]:
    """The operator, run through the same `aifactory run` entry point as the container image."""
    os.environ.setdefault("AIFACTORY_RESYNC_SECONDS", "5")
    os.environ.setdefault("AIFACTORY_RESTART_BACKOFF_SECONDS", "1")
    os.environ.setdefault("AIFACTORY_TRAINING_TICK_SECONDS", "0.5")
    # Small enough that the training tests' bursts are admitted over several capped ticks.
    os.environ.setdefault("AIFACTORY_TICK_ADMISSIONS", "2")
    process = OperatorProcess(kubeconfig, layout.logs / "operator-e2e.log", metrics_port=METRICS_PORT)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A fresh namespace, with its default ServiceAccount, deleted after the test."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: kube.get("v1", "ServiceAccount", "default", name), f"ServiceAccount {name}/default")
    yield name
    kube.delete("v1", "Namespace", name)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return None


def create_refusal(kube: Kube, body: dict[str, Any], status: int = 422) -> str:
    """Creates `body`, expecting the API server to refuse it; returns the refusal message."""
    resource = kube.resource(body["apiVersion"], body["kind"])
    try:
        resource.create(body=body, namespace=body["metadata"].get("namespace"))
    except ApiException as error:
        assert error.status == status, error.body
        return str(error.body)
    pytest.fail(f"the API server accepted {body['kind']} {body['metadata']['name']}")
