"""The devcluster helpers: layout, command lines, PKI, kubeconfig, process handling, errors."""

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from aifactory_operator.cli import main
from aifactory_operator.devcluster.binaries import read_versions
from aifactory_operator.devcluster.cluster import _check_ports
from aifactory_operator.devcluster.components import NODE_LEASE_SECONDS, STAGES_FILE, construct_components
from aifactory_operator.devcluster.errors import DevClusterError
from aifactory_operator.devcluster.kubeconfig import construct_kubeconfig, write_kubeconfig
from aifactory_operator.devcluster.layout import Layout, Ports, default_layout, find_repo_root
from aifactory_operator.devcluster.pki import write_pki
from aifactory_operator.devcluster.processes import is_port_free, is_running, start_process, stop_process

REPO = Path(__file__).resolve().parents[2]


def free_port_base() -> int:
    """A base with seven free consecutive ports, found by asking the kernel for one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1]) + 1


def test_ports_are_consecutive_from_one_base():
    ports = Ports(20000)
    assert ports.all() == {
        "etcd": 20000,
        "etcd-peer": 20001,
        "kube-apiserver": 20003,
        "kube-controller-manager": 20004,
        "kube-scheduler": 20005,
        "kwok": 20006,
    }


def test_layout_defaults_to_the_repository_and_honours_overrides(tmp_path):
    assert default_layout(REPO, {}).root == REPO / ".devcluster"
    layout = default_layout(REPO, {"AIFACTORY_DEVCLUSTER_DIR": str(tmp_path), "AIFACTORY_PORT_BASE": "30000"})
    assert (layout.root, layout.ports.apiserver) == (tmp_path, 30003)
    assert layout.kubeconfig == tmp_path / "kubeconfig"


def test_repo_root_is_found_from_a_subfolder():
    assert find_repo_root(REPO / "operator" / "src") == REPO


def test_versions_are_read_from_hack():
    versions = read_versions(REPO)
    assert versions["KUBE_VERSION"].startswith("v1.37.")
    assert versions["COMPAT_KUBE_VERSION"].startswith("v1.35.")
    assert versions["KWOK_VERSION"] == "v0.8.0"


def test_components_start_in_dependency_order_on_loopback(tmp_path):
    layout = Layout(tmp_path, Ports(20000))
    components = construct_components(layout, Path("/bin-dir"))
    assert [c.name for c in components] == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ]
    apiserver = components[1]
    assert apiserver.argv[0] == "/bin-dir/kube-apiserver"
    assert "--etcd-servers=http://127.0.0.1:20000" in apiserver.argv
    assert "--secure-port=20003" in apiserver.argv
    assert "--bind-address=127.0.0.1" in apiserver.argv
    assert apiserver.health_url == "https://127.0.0.1:20003/readyz"
    assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in components[4].argv


def test_simulated_nodes_renew_rarely_and_the_controller_manager_waits_as_long(tmp_path):
    components = {c.name: c for c in construct_components(Layout(tmp_path, Ports(20000)), Path("/b"))}
    assert f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}" in components["kwok"].argv
    manager = components["kube-controller-manager"].argv
    assert f"--node-monitor-grace-period={NODE_LEASE_SECONDS}s" in manager
    assert f"--node-startup-grace-period={NODE_LEASE_SECONDS}s" in manager


def test_our_node_stages_replace_kwoks_frequent_heartbeat():
    stages = [s for s in yaml.safe_load_all(STAGES_FILE.read_text()) if s]
    nodes = {s["metadata"]["name"]: s["spec"] for s in stages if s["spec"]["resourceRef"]["kind"] == "Node"}
    assert set(nodes) == {"aifactory-node-ready", "aifactory-node-heartbeat"}
    assert nodes["aifactory-node-heartbeat"]["delay"]["durationMilliseconds"] >= 600_000


def test_etcd_skips_fsync_only_when_asked(tmp_path):
    layout = Layout(tmp_path, Ports(20000))
    fast = construct_components(layout, Path("/b"), fsync=False)[0]
    durable = construct_components(layout, Path("/b"), fsync=True)[0]
    assert "--unsafe-no-fsync=true" in fast.argv
    assert "--unsafe-no-fsync=true" not in durable.argv


def test_the_serving_certificate_is_signed_by_our_ca_for_loopback(tmp_path):
    write_pki(tmp_path)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "apiserver.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    token = (tmp_path / "admin.token").read_text()
    assert (tmp_path / "tokens.csv").read_text().startswith(f'{token},admin,admin,"system:masters"')
    assert oct((tmp_path / "apiserver.key").stat().st_mode & 0o777) == "0o600"


def test_pki_is_kept_across_restarts(tmp_path):
    write_pki(tmp_path)
    before = (tmp_path / "ca.crt").read_bytes()
    write_pki(tmp_path)
    assert (tmp_path / "ca.crt").read_bytes() == before


def test_kubeconfig_verifies_the_server_and_sends_the_token(tmp_path):
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, construct_kubeconfig("https://127.0.0.1:1", b"PEM", "tok"))
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:1"
    assert "insecure-skip-tls-verify" not in cluster
    assert config["users"][0]["user"] == {"token": "tok"}
    assert config["current-context"] == "aifactory-dev"


def test_the_ca_validates_a_tls_handshake(tmp_path):
    """The CA and serving pair work for a real TLS server on loopback, as kube-apiserver uses them."""
    write_pki(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "apiserver.crt", tmp_path / "apiserver.key")
    client_context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        import threading

        accepted = threading.Thread(target=lambda: server_context.wrap_socket(conn, server_side=True).close())
        accepted.start()
        with client_context.wrap_socket(client, server_hostname="127.0.0.1") as tls:
            assert tls.version() is not None
        accepted.join(5)


def test_a_started_process_is_found_and_stopped(tmp_path):
    sleep = subprocess.run(["which", "sleep"], capture_output=True, text=True).stdout.strip()
    pid = start_process([sleep, "60"], tmp_path / "sleep.log")
    assert is_running(pid, sleep)
    assert not is_running(pid, "/usr/bin/other-binary")
    stop_process(pid, sleep, grace_seconds=5)
    assert not is_running(pid, sleep)


def test_a_process_that_ignores_sigterm_is_killed(tmp_path):
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    pid = start_process([sys.executable, "-c", script], tmp_path / "stubborn.log")
    for _ in range(50):
        if (tmp_path / "stubborn.log").read_text():
            break
        import time

        time.sleep(0.1)
    stop_process(pid, sys.executable, grace_seconds=0.5)
    assert not is_running(pid, sys.executable)


def test_a_port_in_use_is_refused_with_what_to_do(tmp_path):
    base = free_port_base()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 3))
        holder.listen(1)
        assert not is_port_free(base + 3)
        with pytest.raises(DevClusterError) as caught:
            _check_ports(Layout(tmp_path, Ports(base)))
    message = str(caught.value)
    assert f"port {base + 3} (kube-apiserver) on 127.0.0.1 is in use" in message
    assert "AIFACTORY_PORT_BASE" in message
    assert "\n" not in message


def test_cli_turns_a_devcluster_error_into_one_line(tmp_path, monkeypatch, capsys):
    base = free_port_base()
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("AIFACTORY_DEVCLUSTER_DIR", str(tmp_path))
    monkeypatch.setenv("AIFACTORY_PORT_BASE", str(base))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base))
        holder.listen(1)
        assert main(["cluster", "up"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: port {base} (etcd) on 127.0.0.1 is in use")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_cluster_status_when_nothing_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("AIFACTORY_DEVCLUSTER_DIR", str(tmp_path))
    assert main(["cluster", "status"]) == 0
    assert capsys.readouterr().out.strip() == "not running"
