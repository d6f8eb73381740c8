"""The operator as shipped, with a token the test controls: the image `make image` builds, run
by docker as the chart's Deployment runs it.

tests/e2e/test_real_node.py runs the image on a real node (containerd and a kubelet): install from
the bundle, factory, TrainingJob and ModelEndpoint Ready, certificate renewal, failover, fail-closed.
What only this module can do is rotate the API token on a schedule of its own: a kubelet refreshes
a projected token at 80 % of its life, and the API server refuses lives under 10 minutes.

`helm install` puts the chart on the real control plane. KWOK stands in for the kubelet, so the
operator's pod is scheduled by the chart itself and gets an address. The real process is the
image, run by docker with what the installed Deployment says (shipped_container.py):
- UID 10001, a read-only root, no capabilities, no privilege escalation;
- the chart's env and args;
- a memory /tmp;
- the API token of the chart's ServiceAccount, with only the chart's RBAC, written as the kubelet
  projects it.

The pod's address is put on the host's loopback device, so the API server calls the webhook by the chart's
Service name at its EndpointSlice address, and verifies the certificate the operator made and
injected. Its token is rotated and the old one revoked while it admits and runs a TrainingJob. Last,
with the container stopped, the webhook fails closed.

The session's operator, and the shared objects it applies, step aside meanwhile (as in
test_helm_install.py), and come back afterwards.
"""

import contextlib
import functools
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from charttools import helm as run_helm
from charttools import helm_binary
from factories import make_existing_node, make_factory, make_tenant
from kubernetes import client as k8s
from local_registry import LocalRegistry, connections, traced
from shipped_container import ProjectedToken, docker, docker_run_argv, logs, remove
from test_admission_repairs import POOL
from test_describe_events import phase
from test_helm_install import remove_shared
from test_metrics import scrape, value
from test_training import STORAGE, make_training

from aifactory_operator.constants import API_VERSION
from aifactory_operator.devcluster.layout import Layout
from aifactory_operator.kube.client import Kube
from conftest import REPO, condition, create_refusal, unique, wait_for

pytestmark = pytest.mark.image

CONTAINER = "aifactory-shipped"
WEBHOOK_PORT = 9443  # the chart's default webhook.port
SHIPPED_METRICS = 8000  # the chart's metrics.port
# The operator pod's address is added to this host's loopback device (no dummy device here).
INTERFACE = "lo"
ADMISSION = "admissionregistration.k8s.io/v1"
# Serving certificates that live 30 s, checked every 2 s: renewed every 20 s or so while the
# whole module runs, so the webhook calls below also cross renewals.
CERT_SECONDS = 30
SHORT_LIVED_CERTIFICATES = {
    "AIFACTORY_WEBHOOK_CERT_VALIDITY_SECONDS": str(CERT_SECONDS),
    "AIFACTORY_WEBHOOK_CERT_CHECK_SECONDS": "2",
}


@dataclass
class Shipped:
    namespace: str
    tenant_namespace: str
    factory: str
    token: ProjectedToken
    binding: str  # the Secret the current token is bound to: deleting it revokes the token
    ca: bytes
    kube: Kube
    apiserver: str
    image: str
    site: "SiteInstall"
    containers: list[str] = field(default_factory=lambda: [CONTAINER])
    addresses: list[str] = field(default_factory=list)  # pod addresses put on the loopback device


@functools.cache
def build_image() -> str:
    """make image, once per test session (this module and test_real_node.py both run the image)."""
    result = subprocess.run(["bash", str(REPO / "hack" / "build-image.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"make image failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


@functools.cache
def build_bundle() -> Path:
    result = subprocess.run(["bash", str(REPO / "hack" / "build-bundle.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"make bundle failed:\n{result.stderr[-3000:]}")
    return REPO / result.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SiteInstall:
    """What the site did with the bundle: the image reference the chart's Deployment names (in the
    site's registry, by digest) and the chart it installed from there."""

    image: str
    chart: str
    version: str
    connected_to: set[str]


def install_from_bundle(
    kube: Kube,
    bundle: Path,
    registry: LocalRegistry,
    namespace: str,
    kubeconfig: Path,
    work: Path,
    *,
    values: tuple[str, ...] = (),
    puller: int | None = None,
) -> SiteInstall:
    """As a site would: verify and push the bundle into its registry, `helm install` the chart from
    there with the image rewritten to the registry by digest (and `values`), pull the image the
    Deployment names. Each step runs under strace, so every address any of them connected to is
    known. `puller` is the pid of the node's container runtime, traced while helm installs (its
    kubelet pulls then); without one, dockerd is traced while it pulls the image."""
    published = subprocess.run(
        ["sha256sum", str(bundle)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    helm = str(helm_binary())
    push_log, install_log, pull_log = work / "push.strace", work / "install.strace", work / "pull.strace"
    pushed = traced(
        [sys.prefix + "/bin/aifactory", "bundle", "push", str(bundle), "--registry", registry.address,
         "--plain-http", "--sha256", published, "--helm", helm],
        push_log,
        env={**os.environ, "HOME": str(work / "helm-home")},
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    said = dict(
        line.split(" ", 1) for line in pushed.stdout.splitlines() if line.startswith(("image ", "chart "))
    )
    image_ref = said["image"]
    chart, version = said["chart"].split()
    repository, digest = image_ref.split("@")
    install = [
        helm, "install", "aifactory", chart, "--version", version, "--plain-http", "-n", namespace,
        "--create-namespace", "--wait", "--timeout=180s", f"--set=image.repository={repository}",
        f"--set=image.digest={digest}", *values,
    ]  # fmt: skip
    helm_env = {"HOME": str(work / "helm-home"), "PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig)}
    with tracing(puller, pull_log) if puller is not None else contextlib.nullcontext():
        installed = traced(install, install_log, env=helm_env)
    assert installed.returncode == 0, installed.stderr
    deployment = kube.get("apps/v1", "Deployment", "aifactory-operator", namespace)
    deployment_image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert deployment_image == image_ref
    if puller is None:
        # The Docker engine pulls for the container here: trace the engine itself while it does.
        engine = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=True).stdout
        with tracing(int(engine.split()[0]), pull_log):
            docker("pull", deployment_image)
    connected = connections(push_log) | connections(install_log) | connections(pull_log)
    return SiteInstall(deployment_image, chart, version, connected)


@contextlib.contextmanager
def tracing(pid: int, log: Path) -> Iterator[None]:
    """strace on a running process (and its threads and children) while the block runs."""
    watcher = subprocess.Popen(
        ["strace", "-f", "-qq", "-p", str(pid), "-e", "trace=connect,sendto,sendmsg", "-o", str(log)]
    )
    time.sleep(1)
    try:
        yield
    finally:
        watcher.terminate()
        watcher.wait(10)


def issue_token(kube: Kube, namespace: str) -> tuple[str, str]:
    """A token of the chart's ServiceAccount bound to a fresh Secret: (token, Secret name).
    Bound like the kubelet's tokens are bound to their pod, so deleting the Secret revokes it at once."""
    binding = unique("token-binding")
    secret = kube.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": binding, "namespace": namespace}}
    )
    request = {
        "spec": {
            "audiences": [],
            "expirationSeconds": 3600,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": binding,
                "uid": secret["metadata"]["uid"],
            },
        }
    }
    answer = k8s.CoreV1Api(kube.api_client).create_namespaced_service_account_token(
        "aifactory-operator", namespace, request
    )
    return answer.status.token, binding


def http_status(url: str, token: str | None = None, ca: Path | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[None]:
    """Debian's dockerd, installed and started when missing, and stopped again if this started it."""
    engine = REPO / "hack" / "docker-engine.sh"
    started = subprocess.run(["bash", str(engine), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"no Docker engine: {started.stderr}")
    yield
    if started.stdout.strip() == "started":
        subprocess.run(["bash", str(engine), "stop"], check=False)


@pytest.fixture(scope="module")
def shipped(
    kube: Kube, kubectl, kubeconfig: Path, layout: Layout, operator, docker_engine
) -> Iterator[Shipped]:
    build_image()
    bundle = build_bundle()
    registry = LocalRegistry(layout.root / "site-registry", free_port())
    registry.start()
    operator.stop()
    remove_shared(kube)
    system_node = unique("system")
    kube.apply(make_existing_node(system_node, {"kubernetes.io/hostname": system_node}, gpus=0))
    namespace, tenant_namespace, factory = unique("aif-shipped"), unique("shipped"), unique("shipped")
    remove(CONTAINER)
    addresses: list[str] = []
    try:
        site = install_from_bundle(kube, bundle, registry, namespace, kubeconfig, layout.root)
        image = site.image
        [pod] = wait_for(
            lambda: [p for p in kube.list("v1", "Pod", namespace=namespace) if p["status"].get("podIP")],
            "the operator pod's address",
        )
        addresses.append(pod["status"]["podIP"])
        ip("addr", "add", f"{addresses[0]}/32", "dev", INTERFACE)
        ca = (layout.pki / "ca.crt").read_bytes()
        token, binding = issue_token(kube, namespace)
        volume = ProjectedToken(layout.root / "shipped-token")
        volume.write(token, ca, namespace)
        deployment = kube.get("apps/v1", "Deployment", "aifactory-operator", namespace)
        argv = docker_run_argv(
            deployment,
            image,
            CONTAINER,
            volume.folder,
            namespace,
            layout.ports.apiserver,
            SHORT_LIVED_CERTIFICATES,
            pod_name=pod["metadata"]["name"],
        )
        subprocess.run(argv, check=True, capture_output=True, text=True)
        wait_for(
            lambda: http_status("http://127.0.0.1:8080/healthz") == 200,
            "the container's liveness endpoint",
            120,
        )
        wait_for(
            lambda: routed_addresses(kube, namespace) == [addresses[0]],
            "the webhook Service's route to the operator's pod (it labels its own)",
            60,
        )
        shipped = Shipped(
            namespace, tenant_namespace, factory, volume, binding, ca, kube, layout.apiserver_url, image, site
        )
        shipped.addresses = addresses
        yield shipped
        addresses, containers = shipped.addresses, shipped.containers
    finally:
        for name in {CONTAINER, *locals().get("containers", [])}:
            print(f"--- {name}\n{logs(name)[-3000:]}")
            remove(name)
        for kind in ("ModelEndpoint", "TrainingJob", "Dataset"):
            for obj in kube.list(API_VERSION, kind, namespace=tenant_namespace):
                kube.delete(API_VERSION, kind, obj["metadata"]["name"], tenant_namespace)
        run_helm(
            "uninstall",
            "aifactory",
            "-n",
            namespace,
            "--wait",
            "--timeout=120s",
            check=False,
            kubeconfig=kubeconfig,
        )
        kube.delete(API_VERSION, "AIFactory", factory)
        for address in addresses:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", INTERFACE], capture_output=True)
        kube.delete("v1", "Node", system_node)
        kube.delete("v1", "Namespace", namespace)
        remove_shared(kube)
        registry.stop()
        operator.start()
        wait_for(
            lambda: kube.get(ADMISSION, "ValidatingWebhookConfiguration", "aifactory-sovereignty"),
            "the operator back",
        )


def test_the_site_installed_from_the_bundle_alone_and_nothing_left_127_0_0_1(shipped):
    site = shipped.site
    assert site.image.startswith("127.0.0.1:") and "@sha256:" in site.image
    assert site.chart.startswith("oci://127.0.0.1:")
    # push (skopeo, helm), helm install (registry, API server), the engine's pull: loopback only.
    assert site.connected_to, "strace recorded no connection at all: the trace is not working"
    assert site.connected_to <= {"127.0.0.1", "::1"}, site.connected_to
    [pulled] = json.loads(docker("image", "inspect", site.image).stdout)
    [built] = json.loads(docker("image", "inspect", "aifactory-operator:latest").stdout)
    # The same layers and run configuration as make image built (the config blob itself is
    # re-encoded when skopeo writes the OCI layout, so the image IDs differ).
    assert pulled["RootFS"]["Layers"] == built["RootFS"]["Layers"], (
        "the site runs the filesystem make image built"
    )
    for key in ("User", "Entrypoint", "Cmd", "Env"):
        assert pulled["Config"][key] == built["Config"][key], key


def test_the_image_runs_as_the_chart_says_and_answers_its_probes(shipped):
    [inspected] = json.loads(docker("inspect", CONTAINER).stdout)
    host = inspected["HostConfig"]
    assert inspected["Config"]["User"] == "10001:10001"
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert docker("exec", CONTAINER, "id", "-u").stdout.strip() == "10001"
    assert docker("exec", CONTAINER, "touch", "/opt/venv/written", check=False).returncode != 0
    deployment = shipped.kube.get("apps/v1", "Deployment", "aifactory-operator", shipped.namespace)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    for probe in ("livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert http_status(f"http://127.0.0.1:8080{path}") == 200, probe
    assert http_status(f"http://127.0.0.1:{SHIPPED_METRICS}/metrics") == 200


def test_the_api_server_calls_the_webhook_by_the_charts_service_with_the_injected_ca(shipped):
    kube = shipped.kube
    webhooks = kube.get(ADMISSION, "ValidatingWebhookConfiguration", "aifactory-sovereignty")["webhooks"]
    for hook in webhooks:
        service = hook["clientConfig"]["service"]
        assert (service["name"], service["namespace"]) == ("aifactory-operator-webhook", shipped.namespace)
        assert "url" not in hook["clientConfig"] and hook["clientConfig"]["caBundle"]
        assert hook["failurePolicy"] == "Fail"
    tenant = make_tenant(
        "s", shipped.tenant_namespace, gpuQuota=[{"product": POOL["gpuProduct"], "gpus": 24}]
    )
    kube.apply(make_factory(shipped.factory, pools=[POOL], tenants=[tenant], storage=STORAGE))
    wait_for(
        lambda: is_ready(kube.get(API_VERSION, "AIFactory", shipped.factory)),
        "the factory Ready",
        120,
    )
    # Created only if the API server reached the webhook through the Service and trusted its certificate.
    kube.apply(make_training("gang", shipped.tenant_namespace, nodes=2, duration="5s"))
    assert webhook_calls("trainingjobs") >= 1


def test_the_operator_keeps_working_across_a_token_rotation(shipped):
    kube = shipped.kube
    told_before = len(logs(CONTAINER))
    old_token = (shipped.token.folder / "token").read_text()
    new_token, new_binding = issue_token(kube, shipped.namespace)
    shipped.token.write(new_token, shipped.ca, shipped.namespace)
    kube.delete("v1", "Secret", shipped.binding, shipped.namespace)
    shipped.binding = new_binding
    ca = shipped.token.folder / "ca.crt"
    wait_for(
        lambda: http_status(f"{shipped.apiserver}/api", old_token, ca) == 401,
        "the old token to be refused",
        60,
    )
    assert http_status(f"{shipped.apiserver}/api", new_token, ca) == 200
    kube.apply(make_training("after-rotation", shipped.tenant_namespace, nodes=1, duration="2s"))
    wait_for(
        lambda: phase(kube, shipped.tenant_namespace, "after-rotation") == "Succeeded",
        "a job after the rotation",
        240,
    )
    assert docker("inspect", "--format", "{{.State.Running}}", CONTAINER).stdout.strip() == "true"
    since = logs(CONTAINER)[told_before:]
    refused = [line for line in since.splitlines() if "401" in line or "Unauthorized" in line]
    assert refused == [], refused[:5]  # the new token was read before the old one was revoked


def routed_addresses(kube: Kube, namespace: str) -> list[str]:
    """The ready endpoint addresses of the chart's webhook Service."""
    slices = kube.list(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        namespace=namespace,
        label_selector="kubernetes.io/service-name=aifactory-operator-webhook",
    )
    return sorted(
        address
        for piece in slices
        for endpoint in piece.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    )


def test_with_the_container_stopped_the_webhook_fails_closed(shipped):
    """Runs last: it stops the operator's containers."""
    for container in shipped.containers:
        docker("stop", "--time", "10", container)
    refusal = create_refusal(shipped.kube, make_training("while-down", shipped.tenant_namespace), status=500)
    assert 'failed calling webhook \\"trainingjobs.aifactory.dev\\"' in refusal, refusal
    assert "connection refused" in refusal


def webhook_calls(handler: str) -> float:
    return value(scrape(SHIPPED_METRICS), "aifactory_admission_review_seconds_count", webhook=handler) or 0.0


def is_ready(obj: dict | None) -> bool:
    return (condition(obj, "Ready") or {}).get("status") == "True"
