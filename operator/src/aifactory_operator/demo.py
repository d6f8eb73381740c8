"""`make run`: the operator reconciling a sample sovereign factory, on the local control plane
or on $KUBECONFIG when set."""

import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .constants import API_VERSION, LABEL_FACTORY
from .crdgen import generate_crds
from .devcluster import down, up
from .devcluster.layout import default_layout, find_repo_root
from .kube.client import Kube, load_config
from .kube.manifests import apply_manifests
from .launcher import OperatorProcess, interrupt_on_sigterm
from .settings import env_name

READY_TIMEOUT_SECONDS = 120


def run_demo(*, once: bool) -> int:
    repo = find_repo_root(Path.cwd())
    layout = default_layout(repo)
    own_cluster = not os.environ.get("KUBECONFIG")
    interrupt_on_sigterm()
    try:
        started_cluster = up(repo, layout) if own_cluster else False
    except KeyboardInterrupt:
        down(layout)  # stopped while starting: nothing of it may stay
        raise
    kubeconfig = layout.kubeconfig if own_cluster else Path(os.environ["KUBECONFIG"])
    api_client = load_config(str(kubeconfig))
    kube = Kube(api_client)
    if not is_local(api_client.configuration.host) and env_name("webhook") not in os.environ:
        # A cluster elsewhere cannot call back into an operator running on this machine; its
        # admission policies still hold. Run the operator in the cluster (Helm) for the webhook.
        # The demo sets it for the operator process it starts, which reads it as its settings.
        os.environ[env_name("webhook")] = "off"
        _say("the operator runs outside that cluster: webhook off, admission policies on")
    operator = OperatorProcess(kubeconfig, layout.logs / "operator.log")
    try:
        _say(f"applying CRDs to {kubeconfig}")
        for crd in generate_crds().values():
            kube.apply(crd)
        _wait_for_crds(kube)
        operator.start()
        _say(f"operator started (log: {operator.log_path})")
        factory_files = [repo / "examples" / "01-aifactory.yaml"]
        _say("applied " + ", ".join(apply_manifests(kube, factory_files)))
        _wait_for_ready(kube, "sovereign-de")
        rest = sorted(p for p in (repo / "examples").glob("*.yaml") if p not in factory_files)
        _say("applied " + ", ".join(apply_manifests(kube, rest)))
        _wait_for_workloads(kube)
        print(describe_cluster(kube, "sovereign-de"))
        if not once:
            _say("the operator keeps reconciling; press Ctrl-C to stop")
            _wait_for_signal()
    finally:
        operator.stop()
        if started_cluster:
            down(layout)
            _say("stopped the local control plane")
    return 0


def is_local(server: str) -> bool:
    """The API server runs on this machine, so it can reach a webhook on 127.0.0.1."""
    return urlsplit(server).hostname in ("127.0.0.1", "localhost", "::1")


def describe_cluster(kube: Kube, factory_name: str) -> str:
    """A kubectl-get-like picture of what the factory holds now."""
    lines = []
    factory = kube.get(API_VERSION, "AIFactory", factory_name) or {}
    status = factory.get("status", {})
    lines.append(
        f"AIFactory {factory_name}: {_ready(factory)}  GPUs ready {status.get('gpusReady', 0)}"
        f" of {status.get('gpusDesired', 0)}"
    )
    for pool in status.get("pools", []):
        lines.append(
            f"  pool {pool['name']:<8} nodes {pool.get('nodesReady', 0)}/{pool.get('nodesDesired', 0)}"
            f"  GPUs {pool.get('gpusAllocatable', 0)}"
        )
    lines.append("Nodes:")
    for node in kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={factory_name}"):
        labels = node["metadata"]["labels"]
        lines.append(
            f"  {node['metadata']['name']:<24} {_node_ready(node):<8} "
            f"gpus={node['status'].get('allocatable', {}).get('nvidia.com/gpu', 0)} "
            f"region={labels.get('topology.kubernetes.io/region')} rack={labels.get('aifactory.dev/rack')}"
        )
    for job in kube.list(API_VERSION, "TrainingJob"):
        status = job.get("status", {})
        placement = status.get("placement") or {}
        ref = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
        lines.append(
            f"TrainingJob {ref}: phase={status.get('phase')}"
            f" nodes={placement.get('nodes')} domains={placement.get('domains')}"
        )
    for kind in ("Dataset", "TrainingJob", "ModelEndpoint"):
        objects = kube.list(API_VERSION, kind)
        lines.append(f"{kind}s:")
        for obj in objects:
            ref = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            lines.append(f"  {ref:<36} {_ready(obj)}")
    return "\n".join(lines)


def _ready(obj: dict[str, Any]) -> str:
    for condition in obj.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return f"Ready={condition['status']} ({condition['reason']}: {condition['message']})"
    return "Ready=?"


def _node_ready(node: dict[str, Any]) -> str:
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return "Ready" if ready else "NotReady"


def _wait_for_crds(kube: Kube) -> None:
    for crd in generate_crds().values():
        name = crd["metadata"]["name"]
        _poll(lambda name=name: _is_established(_get_crd(kube, name)), f"CRD {name} Established")
    kube.dynamic.resources.invalidate_cache()


def _get_crd(kube: Kube, name: str) -> dict[str, Any] | None:
    return kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)


def _is_established(crd: dict[str, Any] | None) -> bool:
    conditions = (crd or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _wait_for_ready(kube: Kube, name: str) -> None:
    _poll(
        lambda: "Ready=True" in _ready(kube.get(API_VERSION, "AIFactory", name) or {}),
        f"AIFactory {name} Ready",
    )


def _poll(check: Any, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if check():
            _say(f"{what}")
            return
        time.sleep(0.5)
    raise SystemExit(f"error: timed out after {READY_TIMEOUT_SECONDS}s waiting for {what}")


def _wait_for_workloads(kube: Kube) -> None:
    """Datasets bound and training running, or a minute passed: then the picture is worth printing."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        datasets_ready = all("Ready=True" in _ready(d) for d in kube.list(API_VERSION, "Dataset"))
        phases = [j.get("status", {}).get("phase") for j in kube.list(API_VERSION, "TrainingJob")]
        if datasets_ready and all(p in ("Running", "Succeeded") for p in phases):
            return
        time.sleep(1)


def _wait_for_signal() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _say(message: str) -> None:
    print(f"aifactory: {message}", file=sys.stderr, flush=True)
