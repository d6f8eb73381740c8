"""A real node beside the simulated ones: the files and command lines of containerd, kubelet and
kube-proxy (pure: layout in, text and argv out; node.py does the I/O).

Everything the node owns has a name of its own, so that it never meets Debian's dockerd (whose
containerd 1.6 lives at /run/containerd) and so that stopping the node can remove all of it:
containerd's root, state and socket, kubelet's root and cgroup subtree, the address the API server
advertises, and a CNI bridge for the pods.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .components import Component
from .layout import Layout
from .pki import NODE_NAME

# The node's InternalIP, where kubelet serves and where the API server is advertised
# (Layout.advertise_address), away from the service and KWOK's pod ranges. It goes on the loopback
# device: this machine's kernel has no dummy interfaces, and Linux delivers a packet to any local
# address whichever device it came in on, so pods reach it over their bridge.
NODE_ADDRESS = "10.253.0.1"
NODE_INTERFACE = "lo"
BRIDGE = "aifcni0"
# The real node's pods, apart from the 10.244.0.0/16 that KWOK hands to simulated pods.
NODE_POD_CIDR = "10.245.0.0/24"
# Keeps pods that do not ask for the real node off it (KWOK's simulated pods, other tests' pods).
NODE_TAINT = {"key": "aifactory.dev/real-node", "value": "true", "effect": "NoSchedule"}
NODE_LABEL = "aifactory.dev/real-node"
# The sandbox image: hack/pause, imported into containerd, since no registry serves
# registry.k8s.io/pause here.
PAUSE_IMAGE = "aifactory.dev/pause:1"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
RUNC = Path("/usr/sbin/runc")  # Debian's runc
# The kernel settings kubelet sets when it starts (protectKernelDefaults false), which node.py
# reads before and puts back after.
KUBELET_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)


@dataclass(frozen=True)
class NodeLayout:
    """Where a real node keeps its files: host-wide folders for what needs a real filesystem
    (containerd's snapshots and mounts, kubelet's volumes), the cluster folder for the rest."""

    cluster: Layout
    containerd_root: Path = Path("/var/lib/aifactory-containerd")
    containerd_state: Path = Path("/run/aifactory-containerd")
    kubelet_root: Path = Path("/var/lib/aifactory-kubelet")
    # kubelet's pods and its QoS classes go below this cgroup, in every v1 hierarchy.
    cgroup_root: str = "/aifactory-node"

    @property
    def files(self) -> Path:
        return self.cluster.root / "node"

    @property
    def socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def registry_hosts(self) -> Path:
        return self.files / "certs.d"

    @property
    def cni_conf_dir(self) -> Path:
        return self.files / "net.d"

    @property
    def pod_logs(self) -> Path:
        return self.kubelet_root / "pod-logs"

    @property
    def state_file(self) -> Path:
        return self.files / "state.json"

    @property
    def owned_paths(self) -> tuple[Path, ...]:
        """The host folders that hold the node's mounts and are removed when it stops."""
        return (self.kubelet_root, self.containerd_state, self.containerd_root)


# The node's folders, address, bridge and iptables chains are host-wide, so one node runs per host:
# this file names the cluster folder whose node it is.
OWNER_FILE = Path("/run/aifactory-node.owner")
# containerd's shims put their sockets here whatever containerd's state folder is (dockerd's
# containerd does too); each is named by the hash of containerd's socket, namespace and task id.
SHIM_SOCKETS = Path("/run/containerd/s")


def shim_socket_names(node: NodeLayout, namespace: str, task_id: str) -> list[str]:
    """The socket names the shim of one of the node's tasks may leave in SHIM_SOCKETS."""
    path = f"{node.socket}/{namespace}/{task_id}"
    return [hashlib.sha256(p.encode()).hexdigest() for p in (path, f"{path}/debug")]


def construct_containerd_config(node: NodeLayout, bin_dir: Path) -> str:
    """containerd 2's configuration (version 3): its own root, state and socket, our runc shim and
    Debian's runc with cgroupfs, the CNI bridge, our pause image, and registry hosts from certs.d."""
    return f"""version = 3
root = "{node.containerd_root}"
state = "{node.containerd_state}"
# NRI would listen on the host-wide /var/run/nri/nri.sock.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{node.socket}"

[ttrpc]
  address = "{node.socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{node.containerd_root / "opt"}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{node.registry_hosts}"

[plugins."io.containerd.cri.v1.runtime"]
  # Network namespaces under the state folder, not the host-wide /var/run/netns.
  netns_mounts_under_state_dir = true
  # kubelet asks for oom_score_adj -998 for sandboxes and -997 for Guaranteed pods; lowering it needs
  # CAP_SYS_RESOURCE, which root lacks in some machines (this one): runc init then dies with "can't
  # get final child's PID from pipe: EOF". Clamped to containerd's own score instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # Else containerd looks the shim up on PATH, where Debian's containerd 1.6 (dockerd's) has one.
      runtime_path = "{bin_dir / "containerd-shim-runc-v2"}"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        # runc's state, else under /run/containerd/runc, which dockerd's containerd uses.
        Root = "{node.containerd_state / "runc"}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{node.cni_conf_dir}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def construct_registry_hosts(registry: str) -> str:
    """certs.d/<registry>/hosts.toml for a plain-HTTP registry (the test's on 127.0.0.1)."""
    return f"""server = "http://{registry}"

[host."http://{registry}"]
  capabilities = ["pull", "resolve"]
"""


def construct_cni_config(node: NodeLayout) -> str:
    """A bridge with host-local addresses and no masquerading: the pods talk to this host only
    (the API server and its webhook calls), so no iptables rule of CNI's is needed."""
    config = {
        "cniVersion": "1.0.0",
        "name": "aifactory",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node.containerd_root / "cni-ipam"),
                },
            }
        ],
    }
    return json.dumps(config, indent=2)


def construct_kubelet_config(node: NodeLayout) -> dict[str, Any]:
    """KubeletConfiguration: cgroupfs on cgroup v1 (which kubelet 1.35+ refuses unless told), a
    taint that keeps other pods off, and thresholds a shared test machine does not trip."""
    ports = node.cluster.ports
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_ADDRESS,
        "port": ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.kubelet_healthz,
        # The API server has no kubelet client certificate here; `kubectl logs` still works. The
        # kubelet listens on the node's private address only.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "imageServiceEndpoint": f"unix://{node.socket}",
        "podLogsDir": str(node.pod_logs),
        "registerWithTaints": [NODE_TAINT],
        "serializeImagePulls": False,
        "maxPods": 20,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "resolvConf": "",
    }


def construct_kube_proxy_config(node: NodeLayout) -> dict[str, Any]:
    """KubeProxyConfiguration in iptables mode that changes no host-wide kernel setting: no
    localhost NodePorts (route_localnet) and no conntrack sizing."""
    ports = node.cluster.ports
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(node.files / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": NODE_POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{ports.kube_proxy_healthz}",
        "metricsBindAddress": f"127.0.0.1:{ports.kube_proxy_metrics}",
        "nodePortAddresses": [f"{NODE_ADDRESS}/32"],
        "iptables": {"localhostNodePorts": False},
        "conntrack": {"maxPerCore": 0, "min": 0},
    }


def construct_node_components(node: NodeLayout, bin_dir: Path) -> list[Component]:
    """containerd, kubelet and kube-proxy, in start order."""
    files, ports = node.files, node.cluster.ports
    containerd = Component(
        "containerd",
        [str(bin_dir / "containerd"), f"--config={files / 'containerd.toml'}"],
        "",  # no HTTP endpoint: node.py waits for the socket
    )
    kubelet = Component(
        "kubelet",
        [
            str(bin_dir / "kubelet"),
            f"--config={files / 'kubelet.yaml'}",
            f"--kubeconfig={files / 'kubelet.kubeconfig'}",
            f"--root-dir={node.kubelet_root}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_ADDRESS}",
            f"--node-labels={NODE_LABEL}=true",
        ],
        f"http://127.0.0.1:{ports.kubelet_healthz}/healthz",
        verify_with_ca=False,
    )
    kube_proxy = Component(
        "kube-proxy",
        [str(bin_dir / "kube-proxy"), f"--config={files / 'kube-proxy.yaml'}"],
        f"http://127.0.0.1:{ports.kube_proxy_healthz}/healthz",
        verify_with_ca=False,
    )
    return [containerd, kubelet, kube_proxy]


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
