"""The operator image on a real node: containerd 2, kubelet and kube-proxy joined to a control plane
of its own (beside KWOK's simulated GPU nodes), with the pod scheduled by the chart itself.

Unlike test_shipped_image.py, nothing here stands in for the kubelet: containerd pulls the image by
digest from a plain-HTTP registry on 127.0.0.1, runc runs it as the Deployment says, the operator
reaches the API server through the `kubernetes` Service (kube-proxy's iptables rules), and the API
server calls its webhook at the pod's address on the node's bridge.

The module starts its own control plane, because the API server must advertise an address the pods
reach (Layout.advertise_address), and stops all of it, node first, at the end.
"""

import base64
import os
import signal
import socket
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from charttools import helm
from cryptography import x509
from factories import make_dataset, make_factory, make_tenant
from kubernetes.client.exceptions import ApiException
from local_registry import LocalRegistry
from test_admission_repairs import POOL
from test_describe_events import make_endpoint, make_model, phase
from test_metrics import scrape, value
from test_shipped_image import (
    SiteInstall,
    build_bundle,
    build_image,
    free_port,
    install_from_bundle,
    is_ready,
    routed_addresses,
)
from test_training import STORAGE, make_training

from aifactory_operator.constants import API_VERSION
from aifactory_operator.devcluster import down, up
from aifactory_operator.devcluster.binaries import ensure_binaries
from aifactory_operator.devcluster.errors import DevClusterError
from aifactory_operator.devcluster.layout import SERVICE_CIDR, Layout, Ports, default_layout
from aifactory_operator.devcluster.node import NodeLayout, process_ids, start_node, stop_node
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
    site: SiteInstall


# The chart's own values put the operator on the real node; the peering lifetime is 10 s here
# (60 s by default), so that the failover below is quick.
PEERING_SECONDS = 10
CERT_SECONDS = 30
WEBHOOK_PORT = 9443  # the chart's webhook.port
ON_THE_NODE = (
    f"--set-string=nodeSelector.{NODE_LABEL.replace('.', chr(92) + '.')}=true",
    f"--set=tolerations[0].key={NODE_TAINT['key']}",
    "--set=tolerations[0].operator=Exists",
    f"--set=tolerations[0].effect={NODE_TAINT['effect']}",
    f"--set-string=settings.AIFACTORY_PEERING_LIFETIME_SECONDS={PEERING_SECONDS}",
    # Serving certificates that live 30 s, checked every 2 s: renewed every 20 s or so while the
    # module runs, so every webhook call below may cross a renewal.
    f"--set-string=settings.AIFACTORY_WEBHOOK_CERT_VALIDITY_SECONDS={CERT_SECONDS}",
    "--set-string=settings.AIFACTORY_WEBHOOK_CERT_CHECK_SECONDS=2",
)
METRICS_PORT = 8000  # the chart's metrics.port


@pytest.fixture(scope="module")
def real_node() -> Iterator[RealNode]:
    """A control plane of its own with the real node, and the operator installed from the air-gap
    bundle as a site would: pushed to the registry on 127.0.0.1, the chart from there by oci://,
    the image by digest, pulled by the node's containerd (traced)."""
    layout = replace(Layout(ROOT, Ports(PORT_BASE)), advertise_address=NODE_ADDRESS)
    build_image()
    bundle = build_bundle()
    registry = LocalRegistry(ROOT / "registry", free_port())
    up(REPO, layout)
    try:
        registry.start()
        began = time.monotonic()
        node = start_node(REPO, layout, registries=(registry.address,))
        seconds = {"node Ready": time.monotonic() - began}
        kube = Kube(load_config(str(layout.kubeconfig)))
        began = time.monotonic()
        site = install_from_bundle(
            kube, bundle, registry, NAMESPACE, layout.kubeconfig, ROOT,
            values=ON_THE_NODE, puller=process_ids(layout)["containerd"],
        )  # fmt: skip
        seconds["push, helm install --wait"] = time.monotonic() - began
        print(f"real node: {seconds}")
        yield RealNode(layout, node, kube, site.image, seconds, site)
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


def test_the_site_installed_from_the_bundle_and_nothing_left_127_0_0_1(real_node):
    site = real_node.site
    assert site.image.startswith("127.0.0.1:") and "@sha256:" in site.image
    assert site.chart.startswith("oci://127.0.0.1:")
    # push (skopeo, helm), helm install (registry, API server), and the node's containerd with
    # everything it started meanwhile (the pull, CNI, the operator's container): every address
    # any of them contacted is this machine's or the cluster's own.
    assert site.connected_to, "strace recorded no connection at all: the trace is not working"
    outside = {a for a in site.connected_to if not any(ip_address(a) in n for n in INSIDE)}
    assert outside == set(), f"contacted outside the cluster: {outside} (all: {site.connected_to})"
    assert "127.0.0.1" in site.connected_to, "the registry on 127.0.0.1 served the pull"


# Loopback, the node's address, its pods' network and the Services' network.
INSIDE = [
    ip_network(n) for n in ("127.0.0.0/8", "::1/128", f"{NODE_ADDRESS}/32", NODE_POD_CIDR, SERVICE_CIDR)
]


FACTORY, TENANT_NAMESPACE = "node-factory", "node-research"


def test_a_factory_reconciles_and_the_webhook_answers_at_the_pods_address(real_node):
    kube = real_node.kube
    tenant = make_tenant("r", TENANT_NAMESPACE, gpuQuota=[{"product": POOL["gpuProduct"], "gpus": 24}])
    kube.apply(make_factory(FACTORY, pools=[POOL], tenants=[tenant], storage=STORAGE))
    wait_for(lambda: is_ready(kube.get(API_VERSION, "AIFactory", FACTORY)), "the factory Ready", 120)
    # The Service routes to the pod that labelled itself, at its address on the node's bridge.
    assert routed_addresses(kube, NAMESPACE) == [operator_pod(real_node)["status"]["podIP"]]
    refusal = create_refusal(
        kube, make_dataset(TENANT_NAMESPACE, "abroad", storage="nfs", jurisdiction="US"), 403
    )
    assert "data-locality/dataset-jurisdiction" in refusal


def test_training_and_serving_reach_ready_under_the_charts_rbac_alone(real_node):
    kube = real_node.kube
    kube.apply(make_training("gang", TENANT_NAMESPACE, nodes=2, duration="3s"))
    wait_for(lambda: phase(kube, TENANT_NAMESPACE, "gang") == "Succeeded", "the gang to succeed", 180)
    kube.apply(make_model(TENANT_NAMESPACE))
    wait_for(
        lambda: is_ready(kube.get(API_VERSION, "Dataset", "weights", TENANT_NAMESPACE)),
        "the model Ready",
        120,
    )
    kube.apply(make_endpoint("chat", TENANT_NAMESPACE))
    wait_for(
        lambda: is_ready(kube.get(API_VERSION, "ModelEndpoint", "chat", TENANT_NAMESPACE)),
        "the endpoint Ready",
        180,
    )
    text = pod_logs(real_node, operator_pod(real_node)["metadata"]["name"])
    assert "Started admission control" in text
    assert "Forbidden" not in text and " 403" not in text, [
        line for line in text.splitlines() if "403" in line or "Forbidden" in line
    ][:5]


def pod_logs(real_node: RealNode, pod: str) -> str:
    kubectl = ensure_binaries(REPO) / "kubectl"
    logs = subprocess.run(
        [str(kubectl), f"--kubeconfig={real_node.layout.kubeconfig}", "-n", NAMESPACE, "logs", pod],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert logs.returncode == 0, logs.stderr
    return logs.stdout


def test_kubectl_logs_reach_the_kubelet_at_the_node_address(real_node):
    assert "Started admission control" in pod_logs(real_node, operator_pod(real_node)["metadata"]["name"])


def test_the_running_operator_renews_its_serving_certificate_and_the_api_server_trusts_the_new_one(real_node):
    kube, service = real_node.kube, f"aifactory-operator-webhook.{NAMESPACE}.svc"
    address = operator_pod(real_node)["status"]["podIP"]
    secret = kube.get("v1", "Secret", "aifactory-webhook-tls", NAMESPACE)
    ca = base64.b64decode(secret["data"]["ca.crt"])
    first = served_certificate(address, ca, service)
    renewed = wait_for(
        lambda: (c := served_certificate(address, ca, service)).serial_number != first.serial_number and c,
        "the serving certificate to be renewed",
        CERT_SECONDS,
    )
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    stored = kube.get("v1", "Secret", "aifactory-webhook-tls", NAMESPACE)
    assert base64.b64decode(stored["data"]["ca.crt"]) == ca, "the same CA signs the renewed certificate"
    # The API server, calling through the Service, trusts the renewed certificate.
    refusal = create_refusal(
        kube, make_dataset(TENANT_NAMESPACE, "abroad-2", storage="nfs", jurisdiction="US"), 403
    )
    assert "data-locality/dataset-jurisdiction" in refusal


def served_certificate(address: str, ca: bytes, service: str) -> x509.Certificate:
    """The certificate the webhook at `address` serves now, verified against `ca` for the Service's name."""
    context = ssl.create_default_context(cadata=ca.decode())
    raw = socket.create_connection((address, WEBHOOK_PORT), timeout=5)
    with raw, context.wrap_socket(raw, server_hostname=service) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_two_replicas_on_the_node_peer_and_the_standby_takes_over_from_a_crashed_active_one(real_node):
    """replicas=2 as the chart deploys it, both pods on the real node. The active replica's process
    is killed (SIGKILL, a crash); the kubelet restarts it, and until then or after it the other
    replica takes over. Writes are counted from each replica's own metrics at its pod address."""
    kube, layout, site = real_node.kube, real_node.layout, real_node.site
    helm(
        "upgrade", "aifactory", site.chart, "--version", site.version, "--plain-http", "-n", NAMESPACE,
        "--reuse-values", "--set=replicas=2", "--wait", "--timeout=180s", kubeconfig=layout.kubeconfig,
    )  # fmt: skip
    # Two Ready pods and no other: the single replica of before ran without peering, and acts
    # until its pod is gone (docs/install.md).
    pods = wait_for(
        lambda: (
            len(p := ready_operator_pods(kube)) == 2
            and len(kube.list("v1", "Pod", namespace=NAMESPACE)) == 2
            and p
        ),
        "two operator pods Ready and the single replica's pod gone",
        120,
    )
    addresses = [p["status"]["podIP"] for p in pods]
    wait_for(
        lambda: (
            len(
                (kube.get("kopf.dev/v1", "ClusterKopfPeering", "aifactory-operator") or {}).get("status")
                or {}
            )
            == 2
        ),
        "both replicas in the peering record",
        90,
    )
    # One replica is active and the Service routes to it alone.
    [routed] = wait_for(
        lambda: len(r := routed_addresses(kube, NAMESPACE)) == 1 and r, "one routed replica", 30
    )
    before = [writes_at(a) for a in addresses]
    kube.apply(make_training("ha-1", TENANT_NAMESPACE, nodes=1, duration="1s"))
    wait_for(lambda: phase(kube, TENANT_NAMESPACE, "ha-1") == "Succeeded", "ha-1 to succeed", 120)
    after = [writes_at(a) for a in addresses]
    created = [after[i][("Job", "create")] - before[i][("Job", "create")] for i in range(2)]
    assert sorted(created) == [0, 1], f"Jobs created by each replica: {created}"
    active, standby = created.index(1), created.index(0)
    assert routed == addresses[active], "the Service routes to the active replica"
    paused = {k: after[standby][k] - before[standby][k] for k in after[standby] if k[0] not in EVERY_REPLICA}
    assert not any(paused.values()), f"the paused standby wrote: {paused}"
    assert standby_refusals(addresses) == 0, "an admission call reached the paused replica"

    os.kill(container_process(pods[active]), signal.SIGKILL)
    killed = time.monotonic()
    create_when_served(kube, make_training("ha-2", TENANT_NAMESPACE, nodes=1, duration="1s"))
    wait_for(lambda: phase(kube, TENANT_NAMESPACE, "ha-2"), "a replica to take ha-2 up", 120)
    takeover = time.monotonic() - killed
    wait_for(lambda: phase(kube, TENANT_NAMESPACE, "ha-2") == "Succeeded", "ha-2 to succeed", 120)
    jobs = kube.list("batch/v1", "Job", namespace=TENANT_NAMESPACE)
    per_attempt = Counter(
        (
            j["metadata"]["labels"].get("aifactory.dev/trainingjob"),
            j["metadata"]["labels"].get("aifactory.dev/attempt"),
        )
        for j in jobs
    )
    assert all(n == 1 for n in per_attempt.values()), per_attempt
    # The route follows whichever replica acts now (the standby, or the restarted one if it outranks it).
    wait_for(lambda: len(routed_addresses(kube, NAMESPACE)) == 1, "one routed replica again", 30)
    print(
        f"real node: a replica took over {takeover:.1f}s after the active one was killed"
        f" (peering lifetime {PEERING_SECONDS}s)"
    )
    assert takeover < PEERING_SECONDS + 30


EVERY_REPLICA = {"Secret", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Event", "Pod"}


def ready_operator_pods(kube: Kube) -> list[dict]:
    return [
        p
        for p in kube.list("v1", "Pod", namespace=NAMESPACE)
        if not p["metadata"].get("deletionTimestamp")
        and (condition(p, "Ready") or {}).get("status") == "True"
    ]


def writes_at(address: str) -> Counter[tuple[str, str]]:
    """API writes the replica at this pod address sent, by (kind, verb)."""
    counted: Counter[tuple[str, str]] = Counter()
    for labels, count in scrape(METRICS_PORT, host=address).get("aifactory_api_writes_total", []):
        counted[(labels["kind"], labels["verb"])] += count
    return counted


def standby_refusals(addresses: list[str]) -> float:
    return sum(
        value(scrape(METRICS_PORT, host=a), "aifactory_admission_standby_refusals_total") or 0.0
        for a in addresses
    )


def create_when_served(kube: Kube, body: dict) -> None:
    """Creates `body` once some replica serves the webhook again (fail-closed until then)."""

    def created() -> bool:
        try:
            kube.resource(body["apiVersion"], body["kind"]).create(
                body=body, namespace=body["metadata"]["namespace"]
            )
        except ApiException as error:
            if "failed calling webhook" in str(error.body) or "on standby (peering)" in str(error.body):
                return False
            raise
        return True

    wait_for(created, f"{body['metadata']['name']} to be admitted", 90)


def test_with_no_replica_running_the_webhook_fails_closed(real_node):
    """Scaled to 0, then back to 1 (the last test needs a pod on the node to clean up)."""
    kube = real_node.kube
    scale(real_node, 0)
    wait_for(lambda: not kube.list("v1", "Pod", namespace=NAMESPACE), "the operator pods gone", 120)
    refusal = create_refusal(kube, make_training("while-down", TENANT_NAMESPACE), status=500)
    assert 'failed calling webhook \\"trainingjobs.aifactory.dev\\"' in refusal, refusal
    scale(real_node, 1)
    wait_for(lambda: ready_operator_pods(kube), "an operator pod Ready again", 120)


def scale(real_node: RealNode, replicas: int) -> None:
    kube = real_node.kube
    kube.patch("apps/v1", "Deployment", "aifactory-operator", {"spec": {"replicas": replicas}}, NAMESPACE)


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
