"""A real node's configuration (nodeconfig.py), its pause image, its iptables cleanup, and what the
control plane changes for it: the advertised address and the node agents' tokens."""

import hashlib
import io
import json
import tarfile
import tomllib
from pathlib import Path

from aifactory_operator.devcluster.components import construct_apiserver
from aifactory_operator.devcluster.layout import Layout, Ports
from aifactory_operator.devcluster.node import construct_pause_archive, jumps_to_kube_chains, kube_chains
from aifactory_operator.devcluster.nodeconfig import (
    NODE_ADDRESS,
    NODE_LABEL,
    NODE_POD_CIDR,
    NODE_TAINT,
    PAUSE_IMAGE,
    NodeLayout,
    construct_cni_config,
    construct_containerd_config,
    construct_kube_proxy_config,
    construct_kubelet_config,
    construct_node_components,
    construct_registry_hosts,
    shim_socket_names,
)
from aifactory_operator.devcluster.pki import write_pki

BIN = Path("/cache/node")


def make_node(tmp_path: Path) -> NodeLayout:
    return NodeLayout(Layout(tmp_path, Ports(30000), advertise_address=NODE_ADDRESS))


def test_the_api_server_stays_on_loopback_without_a_node(tmp_path):
    argv = construct_apiserver(Layout(tmp_path, Ports(30000)), BIN).argv
    assert "--bind-address=127.0.0.1" in argv and "--endpoint-reconciler-type=none" in argv


def test_the_api_server_advertises_the_node_address_for_the_kubernetes_service(tmp_path):
    argv = construct_apiserver(Layout(tmp_path, Ports(30000), advertise_address=NODE_ADDRESS), BIN).argv
    assert f"--advertise-address={NODE_ADDRESS}" in argv
    assert "--bind-address=0.0.0.0" in argv
    assert not any(a.startswith("--endpoint-reconciler-type") for a in argv)


def test_the_node_agents_get_tokens_of_their_own(tmp_path):
    write_pki(tmp_path)
    users = {line.split(",")[1]: line for line in (tmp_path / "tokens.csv").read_text().splitlines()}
    assert users["system:node:aifactory-node"].endswith('"system:nodes"')
    assert "system:kube-proxy" in users
    assert (tmp_path / "kubelet.token").read_text() in users["system:node:aifactory-node"]


def test_containerd_keeps_to_its_own_folders_socket_shim_and_runc_state(tmp_path):
    node = make_node(tmp_path)
    config = tomllib.loads(construct_containerd_config(node, BIN))
    assert config["root"] == "/var/lib/aifactory-containerd"
    assert config["grpc"]["address"] == "/run/aifactory-containerd/containerd.sock"
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    runc = runtime["containerd"]["runtimes"]["runc"]
    assert runc["runtime_path"] == str(BIN / "containerd-shim-runc-v2")
    assert runc["options"]["Root"].startswith("/run/aifactory-containerd/")
    assert runc["options"]["SystemdCgroup"] is False
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["cni"]["conf_dir"] == str(node.cni_conf_dir)
    images = config["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == PAUSE_IMAGE
    assert images["registry"]["config_path"] == str(node.registry_hosts)


def test_a_loopback_registry_is_pulled_from_over_plain_http():
    hosts = tomllib.loads(construct_registry_hosts("127.0.0.1:5000"))
    assert hosts["server"] == "http://127.0.0.1:5000"
    assert hosts["host"]["http://127.0.0.1:5000"]["capabilities"] == ["pull", "resolve"]


def test_the_pods_get_addresses_apart_from_kwoks_and_no_masquerading(tmp_path):
    [bridge] = json.loads(construct_cni_config(make_node(tmp_path)))["plugins"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": NODE_POD_CIDR}]]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["dataDir"].startswith("/var/lib/aifactory-containerd/")


def test_kubelet_runs_on_cgroup_v1_with_a_taint_and_serves_on_the_node_address(tmp_path):
    config = construct_kubelet_config(make_node(tmp_path))
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupRoot"] == "/aifactory-node"
    assert config["registerWithTaints"] == [NODE_TAINT]
    assert config["address"] == NODE_ADDRESS and config["port"] == 30030
    assert config["containerRuntimeEndpoint"] == "unix:///run/aifactory-containerd/containerd.sock"


def test_kube_proxy_changes_no_host_wide_kernel_setting(tmp_path):
    config = construct_kube_proxy_config(make_node(tmp_path))
    assert config["mode"] == "iptables"
    assert config["iptables"]["localhostNodePorts"] is False
    assert config["conntrack"]["maxPerCore"] == 0
    assert config["nodePortAddresses"] == [f"{NODE_ADDRESS}/32"]


def test_the_node_starts_containerd_then_kubelet_then_kube_proxy(tmp_path):
    containerd, kubelet, kube_proxy = construct_node_components(make_node(tmp_path), BIN)
    assert [containerd.name, kubelet.name, kube_proxy.name] == ["containerd", "kubelet", "kube-proxy"]
    assert f"--node-ip={NODE_ADDRESS}" in kubelet.argv
    assert f"--node-labels={NODE_LABEL}=true" in kubelet.argv
    assert kube_proxy.health_url == "http://127.0.0.1:30032/healthz"


def read_tar(data: bytes) -> dict[str, tarfile.TarInfo | bytes]:
    """Each member's content, and under "<name>:info" its header."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
        files: dict[str, tarfile.TarInfo | bytes] = {m.name: archive.extractfile(m).read() for m in members}  # type: ignore[union-attr]
        files.update({f"{m.name}:info": m for m in members})
    return files


def test_the_pause_archive_is_an_oci_layout_whose_blobs_match_their_digests():
    files = read_tar(construct_pause_archive(b"\x7fELF pause"))
    [entry] = json.loads(files["index.json"])["manifests"]  # type: ignore[arg-type]
    assert entry["annotations"]["io.containerd.image.name"] == PAUSE_IMAGE
    for name, data in files.items():
        if name.startswith("blobs/sha256/") and isinstance(data, bytes):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'][7:]}"])  # type: ignore[arg-type]
    layer = read_tar(files[f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}"])  # type: ignore[arg-type]
    assert layer["pause"] == b"\x7fELF pause"
    assert layer["pause:info"].mode == 0o755  # type: ignore[union-attr]


IPTABLES_SAVE = """*filter
:INPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:DOCKER - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A FORWARD -o docker0 -j DOCKER
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet" -j DROP
COMMIT
"""


def test_only_kube_chains_and_the_jumps_into_them_are_removed():
    assert kube_chains(IPTABLES_SAVE) == ["KUBE-FIREWALL"]
    assert jumps_to_kube_chains(IPTABLES_SAVE) == [
        ["INPUT", "-j", "KUBE-FIREWALL"],
        ["OUTPUT", "-j", "KUBE-FIREWALL"],
    ]


def test_a_shims_socket_is_named_as_containerd_names_it(tmp_path):
    # pkg/shim.SocketAddress: sha256 of <containerd socket>/<namespace>/<task id>.
    [plain, debug] = shim_socket_names(make_node(tmp_path), "k8s.io", "t1")
    assert plain == "7e3f2f8d37c378ae86cbcc00a8b7b351808867e61e44de399a076315a204e187"
    assert debug == hashlib.sha256(b"/run/aifactory-containerd/containerd.sock/k8s.io/t1/debug").hexdigest()
