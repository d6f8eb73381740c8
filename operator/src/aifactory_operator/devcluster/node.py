"""A real node joined to the local control plane: containerd, kubelet and kube-proxy as host
processes (root, cgroup v1 or v2), beside KWOK's simulated nodes.

`start_node` needs a cluster started with `Layout.advertise_address == NODE_ADDRESS`, so that the
`kubernetes` Service has an endpoint its pods reach. `stop_node` stops and removes everything the node
made, whether or not `start_node` finished: its processes and the containers' shims, mounts, cgroups,
interfaces, iptables chains, kernel settings and folders.
"""

import contextlib
import hashlib
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from .cluster import RunningProcess
from .components import Component
from .errors import DevClusterError
from .health import fetch, wait_until
from .kubeconfig import construct_kubeconfig, write_kubeconfig
from .layout import Layout
from .nodeconfig import (
    BRIDGE,
    CNI_BIN_DIR,
    KUBELET_SYSCTLS,
    NODE_ADDRESS,
    NODE_INTERFACE,
    OWNER_FILE,
    PAUSE_IMAGE,
    RUNC,
    SHIM_SOCKETS,
    NodeLayout,
    construct_cni_config,
    construct_containerd_config,
    construct_kube_proxy_config,
    construct_kubelet_config,
    construct_node_components,
    construct_registry_hosts,
    shim_socket_names,
    to_yaml,
)
from .pki import NODE_NAME
from .processes import is_running, start_process, stop_process

START_TIMEOUT_SECONDS = 120.0
CGROUP_V1 = Path("/sys/fs/cgroup")


def ensure_node_binaries(repo: Path) -> Path:
    """The folder of kubelet, kube-proxy, containerd, ctr, the runc shim and pause; built when missing."""
    result = subprocess.run(
        ["bash", str(repo / "hack" / "build-node-binaries.sh")], stdout=subprocess.PIPE, text=True
    )
    if result.returncode != 0:
        raise DevClusterError("building the node binaries failed; see the messages above")
    return Path(result.stdout.strip().splitlines()[-1])


def start_node(repo: Path, layout: Layout, *, registries: tuple[str, ...] = ()) -> NodeLayout:
    """Starts containerd, kubelet and kube-proxy and waits until the Node is Ready. `registries`
    are plain-HTTP registries (host:port) containerd may pull from."""
    other = _other_owner(layout)
    if other is not None:
        raise DevClusterError(
            f"the real node of the cluster in {other} runs on this host, and a host has room for one"
            " (its folders, address, bridge and iptables chains are host-wide); stop that one first"
        )
    _check_prerequisites(layout)
    bin_dir = ensure_node_binaries(repo)
    node = NodeLayout(layout)
    stop_node(layout)
    OWNER_FILE.write_text(str(layout.root))
    began = time.monotonic()
    containerd, kubelet, kube_proxy = construct_node_components(node, bin_dir)
    running: list[RunningProcess] = []
    try:
        _write_files(node, bin_dir, registries)
        _save_sysctls(node)
        _add_address()
        _make_cgroups(node)
        running.append(_start(containerd, layout))
        _save_state(node, running)
        _wait_for_socket(node, running[-1])
        _import_pause(node, bin_dir)
        running.append(_start(kubelet, layout))
        _save_state(node, running)
        _wait_for_ready_node(layout, running[-1])
        running.append(_start(kube_proxy, layout))
        _save_state(node, running)
        _wait_for_health(kube_proxy.health_url, running[-1], layout)
    except DevClusterError:
        stop_node(layout)
        raise
    _log(f"node {NODE_NAME} Ready in {time.monotonic() - began:.1f}s")
    return node


def stop_node(layout: Layout) -> None:
    """Stops the node's processes and removes what they left; safe to call when nothing runs.
    Leaves alone a node that another cluster folder started."""
    if _other_owner(layout) is not None:
        return
    node = NodeLayout(layout)
    processes = _load_state(node)
    shim_sockets = _shim_sockets(node)
    for process in reversed(processes):
        if process.name != "containerd":
            stop_process(process.pid, process.executable)
    _kill_cgroup(node)
    for process in processes:
        if process.name == "containerd":
            stop_process(process.pid, process.executable)
    _kill_shims(node)
    for socket in shim_sockets:
        socket.unlink(missing_ok=True)
    _unmount_below(node.owned_paths)
    _remove_iptables_chains(processes)
    _delete_link(BRIDGE)
    _remove_address()
    _remove_cgroups(node)
    _restore_sysctls(node)
    _remove_container_log_links(node)
    for path in node.owned_paths:
        shutil.rmtree(path, ignore_errors=True)
    if node.state_file.exists():
        node.state_file.unlink()
    OWNER_FILE.unlink(missing_ok=True)


def process_ids(layout: Layout) -> dict[str, int]:
    """The pid of each of the node's processes (containerd, kubelet, kube-proxy) that runs now."""
    node = NodeLayout(layout)
    return {p.name: p.pid for p in _load_state(node) if is_running(p.pid, p.executable)}


def _other_owner(layout: Layout) -> Path | None:
    """The folder of another cluster whose node still runs here, if any."""
    if not OWNER_FILE.exists():
        return None
    owner = Path(OWNER_FILE.read_text().strip())
    if owner == layout.root:
        return None
    processes = _load_state(NodeLayout(Layout(owner, layout.ports)))
    return owner if any(is_running(p.pid, p.executable) for p in processes) else None


def construct_pause_archive(pause: bytes) -> bytes:
    """An OCI image archive of one layer holding /pause, named PAUSE_IMAGE for `ctr images import`."""
    layer = _tar({"pause": (pause, 0o755)})
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
        }
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                **_descriptor("application/vnd.oci.image.manifest.v1+json", manifest),
                "annotations": {"io.containerd.image.name": PAUSE_IMAGE},
            }
        ],
    }
    blobs = {f"blobs/sha256/{_digest(b)[7:]}": (b, 0o644) for b in (layer, config, manifest)}
    return _tar(
        {
            "oci-layout": (_json({"imageLayoutVersion": "1.0.0"}), 0o644),
            "index.json": (_json(index), 0o644),
            **blobs,
        }
    )


def _check_prerequisites(layout: Layout) -> None:
    if os.geteuid() != 0:
        raise DevClusterError("a real node needs root (mounts, cgroups, interfaces, iptables); run as root")
    if layout.advertise_address != NODE_ADDRESS:
        raise DevClusterError(
            f"the cluster must advertise {NODE_ADDRESS} for the node's pods to reach the API server;"
            f" start it with Layout(..., advertise_address='{NODE_ADDRESS}')"
        )
    if not (layout.pki / "kubelet.token").exists():
        raise DevClusterError(
            f"{layout.pki} predates the node agents' tokens; stop the cluster, remove {layout.root}"
            " and start it again"
        )
    # The API server writes the EndpointSlice a moment after it starts.
    if not wait_until(lambda: _advertised_addresses(layout) == [NODE_ADDRESS], timeout=15.0):
        raise DevClusterError(
            f"the running API server does not advertise {NODE_ADDRESS} (the kubernetes EndpointSlice says"
            f" {_advertised_addresses(layout)}); it was started without Layout.advertise_address: stop it"
            " (aifactory cluster down) and start it again"
        )
    needed = (RUNC, CNI_BIN_DIR / "bridge", CNI_BIN_DIR / "host-local", CNI_BIN_DIR / "loopback")
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise DevClusterError(
            f"missing {', '.join(missing)}; install Debian's runc and containernetworking-plugins"
            " (apt-get install runc containernetworking-plugins)"
        )


def _advertised_addresses(layout: Layout) -> list[str]:
    token = (layout.pki / "admin.token").read_text().strip()
    url = f"{layout.apiserver_url}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"
    status, body = fetch(url, ca_file=layout.pki / "ca.crt", token=token)
    endpoints = json.loads(body).get("endpoints") or [] if status == 200 else []
    return [address for endpoint in endpoints for address in endpoint["addresses"]]


def _write_files(node: NodeLayout, bin_dir: Path, registries: tuple[str, ...]) -> None:
    ca_pem = (node.cluster.pki / "ca.crt").read_bytes()
    files = node.files
    files.mkdir(parents=True, exist_ok=True)
    (files / "containerd.toml").write_text(construct_containerd_config(node, bin_dir))
    for registry in registries:
        hosts = node.registry_hosts / registry / "hosts.toml"
        hosts.parent.mkdir(parents=True, exist_ok=True)
        hosts.write_text(construct_registry_hosts(registry))
    node.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    (node.cni_conf_dir / "10-aifactory.conflist").write_text(construct_cni_config(node))
    (files / "kubelet.yaml").write_text(to_yaml(construct_kubelet_config(node)))
    (files / "kube-proxy.yaml").write_text(to_yaml(construct_kube_proxy_config(node)))
    for agent in ("kubelet", "kube-proxy"):
        token = (node.cluster.pki / f"{agent}.token").read_text().strip()
        config = construct_kubeconfig(node.cluster.apiserver_url, ca_pem, token, user=agent)
        write_kubeconfig(files / f"{agent}.kubeconfig", config)


def _add_address() -> None:
    _ip("addr", "add", f"{NODE_ADDRESS}/32", "dev", NODE_INTERFACE)


def _remove_address() -> None:
    subprocess.run(["ip", "addr", "del", f"{NODE_ADDRESS}/32", "dev", NODE_INTERFACE], capture_output=True)


def _delete_link(name: str) -> None:
    subprocess.run(["ip", "link", "delete", name], capture_output=True)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise DevClusterError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _cgroup_dirs(node: NodeLayout) -> list[Path]:
    """The node's cgroup in every mounted hierarchy (v1 controllers, or the one v2 tree)."""
    relative = node.cgroup_root.lstrip("/")
    if (CGROUP_V1 / "cgroup.controllers").exists():
        return [CGROUP_V1 / relative]
    return [h / relative for h in sorted(CGROUP_V1.iterdir()) if h.is_dir() and not h.is_symlink()]


def _make_cgroups(node: NodeLayout) -> None:
    # kubelet refuses a cgroupRoot that does not exist yet.
    for directory in _cgroup_dirs(node):
        if directory.parent.name != "unified":
            directory.mkdir(exist_ok=True)


def _kill_cgroup(node: NodeLayout) -> None:
    """SIGKILL every process left in the node's cgroups (the containers), until none is left."""
    for _ in range(50):
        pids = {pid for d in _cgroup_dirs(node) for pid in _cgroup_pids(d)}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _cgroup_pids(directory: Path) -> set[int]:
    if not directory.is_dir():
        return set()
    return {int(p) for procs in directory.rglob("cgroup.procs") for p in procs.read_text().split()}


def _remove_cgroups(node: NodeLayout) -> None:
    for directory in _cgroup_dirs(node):
        if not directory.is_dir():
            continue
        # Deepest first: a cgroup is removed with rmdir once it has no children and no processes.
        for child in sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            child.rmdir()
        directory.rmdir()


def _kill_shims(node: NodeLayout) -> None:
    """The runc shims of our containerd (they outlive it by design) are found by its socket."""
    marker = str(node.socket).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and marker in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _shim_sockets(node: NodeLayout) -> list[Path]:
    """The sockets our shims made, found from the tasks in containerd's state folder: a shim that
    is killed leaves its socket behind, in a folder that dockerd's containerd shares."""
    tasks = node.containerd_state / "io.containerd.runtime.v2.task"
    if not tasks.is_dir():
        return []
    return [
        SHIM_SOCKETS / name
        for task in tasks.glob("*/*")
        for name in shim_socket_names(node, task.parent.name, task.name)
    ]


def _unmount_below(roots: tuple[Path, ...]) -> None:
    """Unmounts everything below the node's folders (overlay roots, /dev/shm, volumes, netns),
    deepest first; lazily, since a dying shim may still hold one for a moment."""
    for _ in range(3):
        mounts = [m for m in _mount_points() if any(m == r or r in m.parents for r in roots)]
        if not mounts:
            return
        for mount in sorted(mounts, key=lambda p: -len(p.parts)):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _mount_points() -> list[Path]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    # Field 5 is the mount point, with spaces and the like escaped as octal.
    return [Path(line.split()[4].encode().decode("unicode_escape")) for line in lines]


def _remove_iptables_chains(processes: list[RunningProcess]) -> None:
    """kube-proxy's own cleanup removes the service chains; kubelet's hint and canary chains and the
    KUBE-FIREWALL chain (which drops non-loopback packets to 127.0.0.0/8) stay behind, so every
    KUBE-* chain left is removed with the rules that jump to it. The node is the only Kubernetes
    agent on this host, so all of them are its own."""
    proxy = next((p for p in processes if p.name == "kube-proxy"), None)
    if proxy is not None:
        subprocess.run([proxy.executable, "--cleanup"], capture_output=True)
    for tool in ("iptables", "ip6tables"):
        for table in ("mangle", "nat", "filter"):
            saved = subprocess.run([f"{tool}-save", "-t", table], capture_output=True, text=True).stdout
            for rule in jumps_to_kube_chains(saved):
                subprocess.run([tool, "-t", table, "-D", *rule], capture_output=True)
            for chain in kube_chains(saved):
                subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
            for chain in kube_chains(saved):
                subprocess.run([tool, "-t", table, "-X", chain], capture_output=True)


def kube_chains(saved: str) -> list[str]:
    """The KUBE-* chains declared in one table of iptables-save's output."""
    return [line[1:].split()[0] for line in saved.splitlines() if line.startswith(":KUBE-")]


def jumps_to_kube_chains(saved: str) -> list[list[str]]:
    """The rules of built-in chains that jump to a KUBE-* chain, as arguments for `iptables -D`."""
    rules = []
    for line in saved.splitlines():
        words = shlex.split(line)
        is_builtin_rule = words[:1] == ["-A"] and not words[1].startswith("KUBE-") and "-j" in words
        if is_builtin_rule and words[words.index("-j") + 1].startswith("KUBE-"):
            rules.append(words[1:])
    return rules


def _save_sysctls(node: NodeLayout) -> None:
    saved = {name: _sysctl_path(name).read_text().strip() for name in KUBELET_SYSCTLS}
    (node.files / "sysctls.json").write_text(json.dumps(saved, indent=2))


def _restore_sysctls(node: NodeLayout) -> None:
    saved_file = node.files / "sysctls.json"
    if not saved_file.exists():
        return
    for name, value in json.loads(saved_file.read_text()).items():
        with contextlib.suppress(OSError):
            _sysctl_path(name).write_text(value)
    saved_file.unlink()


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _remove_container_log_links(node: NodeLayout) -> None:
    """kubelet links each container's log into the host-wide /var/log/containers."""
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        if link.is_symlink() and Path(os.readlink(link)).is_relative_to(node.pod_logs):
            link.unlink()


def _start(component: Component, layout: Layout) -> RunningProcess:
    log = layout.logs / f"{component.name}.log"
    _log(f"starting {component.name} (log: {log})")
    pid = start_process(component.argv, log)
    return RunningProcess(component.name, pid, component.argv[0])


def _wait_for_socket(node: NodeLayout, process: RunningProcess) -> None:
    _wait(lambda: node.socket.is_socket(), process, node.cluster, "containerd's socket")


def _wait_for_health(url: str, process: RunningProcess, layout: Layout) -> None:
    _wait(lambda: fetch(url, ca_file=None)[0] == 200, process, layout, f"{process.name} healthy")


def _wait_for_ready_node(layout: Layout, kubelet: RunningProcess) -> None:
    token = (layout.pki / "admin.token").read_text().strip()
    url = f"{layout.apiserver_url}/api/v1/nodes/{NODE_NAME}"

    def is_ready() -> bool:
        status, body = fetch(url, ca_file=layout.pki / "ca.crt", token=token)
        if status != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    _wait(is_ready, kubelet, layout, f"node {NODE_NAME} Ready")


def _wait(check: Any, process: RunningProcess, layout: Layout, what: str) -> None:
    log = layout.logs / f"{process.name}.log"

    def holds() -> bool:
        if not is_running(process.pid, process.executable):
            raise DevClusterError(f"{process.name} exited while starting; see {log}")
        return bool(check())

    began = time.monotonic()
    if not wait_until(holds, timeout=START_TIMEOUT_SECONDS):
        raise DevClusterError(f"no {what} after {START_TIMEOUT_SECONDS:.0f}s; see {log}")
    _log(f"{what} after {time.monotonic() - began:.1f}s")


def _import_pause(node: NodeLayout, bin_dir: Path) -> None:
    archive = node.files / "pause.tar"
    archive.write_bytes(construct_pause_archive((bin_dir / "pause").read_bytes()))
    result = subprocess.run(
        [str(bin_dir / "ctr"), f"--address={node.socket}", "--namespace=k8s.io", "images", "import",
         "--snapshotter=overlayfs", str(archive)],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise DevClusterError(f"importing the pause image failed: {result.stderr.strip()}")


def _save_state(node: NodeLayout, running: list[RunningProcess]) -> None:
    node.state_file.write_text(json.dumps({"processes": [p.__dict__ for p in running]}, indent=2))


def _load_state(node: NodeLayout) -> list[RunningProcess]:
    if not node.state_file.exists():
        return []
    try:
        return [RunningProcess(**p) for p in json.loads(node.state_file.read_text())["processes"]]
    except (ValueError, KeyError, TypeError):
        return []


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def _log(message: str) -> None:
    print(f"devcluster: {message}", file=sys.stderr, flush=True)
