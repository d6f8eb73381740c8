"""`aifactory cluster up | down | status`: the local control plane's life cycle."""

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .binaries import ensure_binaries, read_versions
from .components import AUDIT_POLICY, AUDIT_POLICY_FILE, Component, construct_components
from .errors import DevClusterError
from .health import fetch, has_default_service_account, wait_until
from .kubeconfig import construct_kubeconfig, write_kubeconfig
from .layout import Layout
from .pki import write_pki
from .processes import is_port_free, is_running, start_process, stop_process

START_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class RunningProcess:
    name: str
    pid: int
    executable: str


def up(repo: Path, layout: Layout, *, fsync: bool = False) -> bool:
    """Starts the cluster unless it already runs healthy on the selected Kubernetes release
    (AIFACTORY_KUBE: current or compat); returns True when it started it."""
    bin_dir = ensure_binaries(repo)
    if is_healthy(layout):
        if runs_binaries_from(layout, bin_dir):
            return False
        _log(f"the running control plane is another Kubernetes release; restarting it from {bin_dir}")
    down(layout)
    _check_ports(layout)
    started = time.monotonic()
    _prepare_files(layout)
    components = construct_components(layout, bin_dir, fsync=fsync)
    running: list[RunningProcess] = []
    try:
        for component in components:
            began = time.monotonic()
            # Recorded before the health wait, so that a failed start is stopped by down() too.
            running.append(_start(component, layout))
            _save_state(layout, running, read_versions(repo))
            _wait_until_healthy(component, running[-1], layout)
            _log(f"{component.name} healthy after {time.monotonic() - began:.1f}s")
        began = time.monotonic()
        _wait_for_controllers(layout)
        _log(f"controllers ready (default ServiceAccount created) after {time.monotonic() - began:.1f}s")
    except DevClusterError:
        down(layout)
        raise
    _log(f"cluster healthy in {time.monotonic() - started:.1f}s; kubeconfig: {layout.kubeconfig}")
    return True


def down(layout: Layout) -> None:
    """Stops every process the state file names, newest first; the files stay for post-mortems."""
    for process in reversed(_load_state(layout)):
        stop_process(process.pid, process.executable)
    if layout.state_file.exists():
        layout.state_file.unlink()


def restart(repo: Path, layout: Layout, name: str) -> None:
    """Stops one component and starts it again with the same arguments: the chaos tests use it to
    cut every watch stream of kube-apiserver and see the clients reconnect by themselves."""
    stop_component(layout, name)
    start_component(repo, layout, name)
    _log(f"{name} restarted")


def stop_component(layout: Layout, name: str) -> None:
    """Stops one component; the state file keeps it, so start_component brings it back (benchmarks
    stop kube-scheduler to let a queue of pods build up before it starts binding)."""
    [old] = [p for p in _load_state(layout) if p.name == name]
    stop_process(old.pid, old.executable)


def start_component(repo: Path, layout: Layout, name: str) -> None:
    running = _load_state(layout)
    component = next(c for c in construct_components(layout, ensure_binaries(repo)) if c.name == name)
    new = _start(component, layout)
    _wait_until_healthy(component, new, layout)
    _save_state(layout, [new if p.name == name else p for p in running], read_versions(repo))


def is_healthy(layout: Layout) -> bool:
    """True when every recorded process runs and kube-apiserver answers /readyz."""
    processes = _load_state(layout)
    if len(processes) < 5 or not all(is_running(p.pid, p.executable) for p in processes):
        return False
    status, _ = fetch(f"{layout.apiserver_url}/readyz", ca_file=layout.pki / "ca.crt")
    return status == 200


def runs_binaries_from(layout: Layout, bin_dir: Path) -> bool:
    """Every recorded process was started from `bin_dir`, so it is the release asked for."""
    processes = _load_state(layout)
    return bool(processes) and all(Path(p.executable).parent == bin_dir for p in processes)


def cluster_status(layout: Layout) -> list[str]:
    """One line per component: name, pid and whether it runs."""
    processes = _load_state(layout)
    if not processes:
        return ["not running"]
    lines = [
        f"{p.name:<24} pid {p.pid:<8} {'running' if is_running(p.pid, p.executable) else 'stopped'}"
        for p in processes
    ]
    lines.append(f"kubeconfig: {layout.kubeconfig}; logs: {layout.logs}")
    return lines


def _check_ports(layout: Layout) -> None:
    for name, port in layout.ports.all().items():
        if not is_port_free(port):
            raise DevClusterError(
                f"port {port} ({name}) on 127.0.0.1 is in use; stop what listens there"
                f" (ss -ltnp 'sport = :{port}') or choose other ports with AIFACTORY_PORT_BASE=<port>"
            )


def _prepare_files(layout: Layout) -> None:
    """A fresh etcd and fresh logs every start: the dev cluster holds nothing worth keeping."""
    shutil.rmtree(layout.etcd_data, ignore_errors=True)
    shutil.rmtree(layout.logs, ignore_errors=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    (layout.root / AUDIT_POLICY_FILE).write_text(AUDIT_POLICY)
    write_pki(layout.pki)
    ca_pem = (layout.pki / "ca.crt").read_bytes()
    token = _admin_token(layout)
    config = construct_kubeconfig(layout.apiserver_url, ca_pem, token)
    write_kubeconfig(layout.kubeconfig, config)
    for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
        write_kubeconfig(layout.component_kubeconfig(component), config)


def _start(component: Component, layout: Layout) -> RunningProcess:
    log = layout.logs / f"{component.name}.log"
    _log(f"starting {component.name} (log: {log})")
    pid = start_process(component.argv, log)
    return RunningProcess(component.name, pid, component.argv[0])


def _wait_until_healthy(component: Component, process: RunningProcess, layout: Layout) -> None:
    log = layout.logs / f"{component.name}.log"
    ca_file = layout.pki / "ca.crt" if component.verify_with_ca else None

    def answers() -> bool:
        if not is_running(process.pid, process.executable):
            raise DevClusterError(f"{component.name} exited while starting; see {log}")
        return fetch(component.health_url, ca_file=ca_file)[0] == 200

    if not wait_until(answers, timeout=START_TIMEOUT_SECONDS):
        raise DevClusterError(
            f"{component.name} did not become healthy in {START_TIMEOUT_SECONDS:.0f}s; see {log}"
        )


def _wait_for_controllers(layout: Layout) -> None:
    ca_file, token = layout.pki / "ca.crt", _admin_token(layout)
    if not wait_until(
        lambda: has_default_service_account(layout.apiserver_url, ca_file, token),
        timeout=START_TIMEOUT_SECONDS,
    ):
        raise DevClusterError(
            f"kube-controller-manager did not create the default ServiceAccount; see {layout.logs}"
        )


def _admin_token(layout: Layout) -> str:
    return (layout.pki / "admin.token").read_text().strip()


def _save_state(layout: Layout, running: list[RunningProcess], versions: dict[str, str]) -> None:
    state = {"versions": versions, "processes": [p.__dict__ for p in running]}
    layout.state_file.write_text(json.dumps(state, indent=2))


def _load_state(layout: Layout) -> list[RunningProcess]:
    if not layout.state_file.exists():
        return []
    try:
        data = json.loads(layout.state_file.read_text())
        return [RunningProcess(**p) for p in data["processes"]]
    except (ValueError, KeyError, TypeError):
        return []


def _log(message: str) -> None:
    print(f"devcluster: {message}", file=sys.stderr, flush=True)
