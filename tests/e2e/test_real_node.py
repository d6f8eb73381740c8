"""The operator image on a real node: containerd 2, kubelet and kube-proxy joined to a control plane
of its own (beside KWOK's simulated GPU nodes), with the pod scheduled by the chart itself.

Unlike test_shipped_image.py, nothing here stands in for the kubelet: containerd pulls the image by
digest from a plain-HTTP registry on 127.0.0.1, runc runs it as the Deployment says, the operator
reaches the API server through the `kubernetes` Service (kube-proxy's iptables rules), and the API
server calls its webhook at the pod's address on the node's bridge.

The module starts its own control plane, because the API server must advertise an address the pods
reach (Layout.advertise_address), and stops all of it, node first, at the end.
"""

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
import yaml
from charttools import helm
from factories import make_dataset
from local_registry import LocalRegistry
from test_shipped_image import build_image, free_port

from aifactory_operator.constants import API_VERSION
from aifactory_operator.devcluster import down, up
from aifactory_operator.devcluster.binaries import ensure_binaries
from aifactory_operator.devcluster.errors import DevClusterError
from aifactory_operator.devcluster.layout import Layout, Ports, default_layout
from aifactory_operator.devcluster.node import NodeLayout, start_node, stop_node
from aifactory_operator.devcluster.nodeconfig import (
    BRIDGE,
    NODE_ADDRESS,
    NODE_LABEL,
    NODE_POD_CIDR,
    NODE_TAINT,
    SHIM_SOCKETS,
    shim_socket_names,
)
from aifactory_operator.devcluster.pki import NODE_NAME
from aifactory_operator.kube.client import Kube, load_config
from conftest import REPO, condition, create_refusal, wait_for

pytestmark = pytest.mark.image

NAMESPACE = "aifactory-system"
# Its own control plane, away from the session's ports and folder.
PORT_BASE = int(os.environ.get("AIFACTORY_REAL_NODE_PORT_BASE", default_layout(REPO).ports.base + 200))
ROOT = Path(os.environ.get("AIFACTORY_REAL_NODE_DIR", REPO / ".devcluster-real-node"))


@dataclass
class RealNode:
    layout: Layout
    node: NodeLayout
    kube: Kube
    image: str
    seconds: dict[str, float]


def push_image(registry: LocalRegistry, tag: str) -> str:
    """Copies make image's OCI layout into the registry; the reference by digest."""
    layout = REPO / "build" / "image"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{tag}",
         f"docker://{registry.address}/aifactory-operator:{tag}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    index = json.loads((layout / "index.json").read_text())
    [digest] = [
        m["digest"]
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == tag
    ]
    return f"{registry.address}/aifactory-operator@{digest}"


def install_chart(layout: Layout, image: str) -> None:
    repository, digest = image.split("@")
    helm(
        "install", "aifactory", str(REPO / "charts" / "aifactory-operator"), "-n", NAMESPACE,
        "--create-namespace", "--wait", "--timeout=180s",
        f"--set=image.repository={repository}", f"--set=image.digest={digest}",
        f"--set-string=nodeSelector.{NODE_LABEL.replace('.', chr(92) + '.')}=true",
        f"--set=tolerations[0].key={NODE_TAINT['key']}", "--set=tolerations[0].operator=Exists",
        f"--set=tolerations[0].effect={NODE_TAINT['effect']}",
        kubeconfig=layout.kubeconfig,
    )  # fmt: skip


@pytest.fixture(scope="module")
def real_node() -> Iterator[RealNode]:
    layout = replace(Layout(ROOT, Ports(PORT_BASE)), advertise_address=NODE_ADDRESS)
    tag = build_image().split(":", 1)[1]
    registry = LocalRegistry(ROOT / "registry", free_port())
    up(REPO, layout)
    try:
        registry.start()
        image = push_image(registry, tag)
        began = time.monotonic()
        node = start_node(REPO, layout, registries=(registry.address,))
        seconds = {"node Ready": time.monotonic() - began}
        kube = Kube(load_config(str(layout.kubeconfig)))
        began = time.monotonic()
        install_chart(layout, image)
        seconds["helm install --wait"] = time.monotonic() - began
        print(f"real node: {seconds}")
        yield RealNode(layout, node, kube, image, seconds)
        helm("uninstall", "aifactory", "-n", NAMESPACE, "--wait", check=False, kubeconfig=layout.kubeconfig)
    finally:
        stop_node(layout)
        registry.stop()
        down(layout)


def operator_pod(real_node: RealNode) -> dict:
    [pod] = real_node.kube.list("v1", "Pod", namespace=NAMESPACE)
    return pod


def container_process(pod: dict) -> int:
    """The host pid of the operator's container: the process whose cgroup names its container id."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("//")[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if container_id in (entry / "cgroup").read_text():
                    return int(entry.name)
            except OSError:
                continue
    pytest.fail(f"no process in container {container_id}")


def test_the_chart_schedules_the_operator_on_the_real_node_beside_simulated_ones(real_node):
    pod = operator_pod(real_node)
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert condition(pod, "Ready")["status"] == "True"
    assert pod["status"]["hostIP"] == NODE_ADDRESS
    assert ip_address(pod["status"]["podIP"]) in ip_network(NODE_POD_CIDR)
    assert pod["status"]["containerStatuses"][0]["imageID"] == real_node.image


def test_the_container_runs_as_10001_with_a_read_only_root_and_no_capabilities(real_node):
    pid = container_process(operator_pod(real_node))
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split()[:2] == ["10001", "10001"]
    assert status["CapEff"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    [root] = [
        line.split()
        for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        if line.split()[4] == "/"
    ]
    assert "ro" in root[5].split(",")


def test_the_operator_reaches_the_api_server_through_the_kubernetes_service(real_node):
    pid = container_process(operator_pod(real_node))
    environment = dict(
        item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
    )
    assert environment["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    # In-cluster configuration, no kubeconfig: the CA bundle in the webhook configuration is there
    # because the operator wrote it through that Service.
    webhooks = real_node.kube.get(
        "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "aifactory-sovereignty"
    )
    assert all(w["clientConfig"].get("caBundle") for w in webhooks["webhooks"])


def test_a_factory_reconciles_and_the_webhook_answers_at_the_pods_address(real_node):
    kube = real_node.kube
    factory = yaml.safe_load((REPO / "examples" / "01-aifactory.yaml").read_text())
    kube.apply(factory)
    name = factory["metadata"]["name"]
    wait_for(
        lambda: (condition(kube.get(API_VERSION, "AIFactory", name), "Ready") or {}).get("status") == "True",
        "the factory Ready",
        120,
    )
    tenant_namespace = factory["spec"]["tenants"][0]["namespaces"][0]
    refusal = create_refusal(
        kube, make_dataset(tenant_namespace, "abroad", storage="datasets", jurisdiction="US"), 403
    )
    assert "data-locality/dataset-jurisdiction" in refusal
    kube.delete(API_VERSION, "AIFactory", name)


def test_kubectl_logs_reach_the_kubelet_at_the_node_address(real_node):
    kubectl = ensure_binaries(REPO) / "kubectl"
    pod = operator_pod(real_node)["metadata"]["name"]
    logs = subprocess.run(
        [str(kubectl), f"--kubeconfig={real_node.layout.kubeconfig}", "-n", NAMESPACE, "logs", pod],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert logs.returncode == 0, logs.stderr
    assert "Started admission control" in logs.stdout


def test_another_cluster_can_neither_start_a_second_node_nor_stop_this_one(real_node, tmp_path):
    other = replace(real_node.layout, root=tmp_path)
    with pytest.raises(DevClusterError, match="runs on this host"):
        start_node(REPO, other)
    stop_node(other)
    node = real_node.kube.get("v1", "Node", NODE_NAME)
    assert condition(node, "Ready")["status"] == "True"
    assert real_node.node.socket.is_socket()


def test_stopping_the_node_leaves_nothing_behind(real_node):
    layout, node = real_node.layout, real_node.node
    tasks = list((node.containerd_state / "io.containerd.runtime.v2.task").glob("*/*"))
    assert tasks, "no pod sandbox left to clean up: the test proves less than it says"
    helm("uninstall", "aifactory", "-n", NAMESPACE, "--wait", kubeconfig=layout.kubeconfig)
    stop_node(layout)
    for task in tasks:
        for name in shim_socket_names(node, task.parent.name, task.name):
            assert not (SHIM_SOCKETS / name).exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not [p for p in node.owned_paths if str(p) in mounts]
    assert not [p for p in node.owned_paths if p.exists()]
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{node.cgroup_root.lstrip('/')}"))
    for tool in ("iptables-save", "ip6tables-save"):
        assert "KUBE-" not in subprocess.run([tool], capture_output=True, text=True, check=True).stdout
    assert NODE_ADDRESS not in subprocess.run(["ip", "addr"], capture_output=True, text=True).stdout
    assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0
    assert (
        str(node.socket) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    )
