"""Where the local control plane keeps its files and which loopback ports it listens on (pure)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..constants import DEFAULT_PORT_BASE

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"


@dataclass(frozen=True)
class Ports:
    """Loopback ports, consecutive from one base so that one setting moves them all."""

    base: int = DEFAULT_PORT_BASE

    @property
    def etcd_client(self) -> int:
        return self.base

    @property
    def etcd_peer(self) -> int:
        return self.base + 1

    @property
    def apiserver(self) -> int:
        return self.base + 3

    @property
    def controller_manager(self) -> int:
        return self.base + 4

    @property
    def scheduler(self) -> int:
        return self.base + 5

    @property
    def kwok(self) -> int:
        return self.base + 6

    @property
    def webhook(self) -> int:
        """The operator's admission webhook, when it runs outside the cluster (16450 by default)."""
        return self.base + 10

    @property
    def operator_metrics(self) -> int:
        """Where the end-to-end tests' operator serves Prometheus metrics."""
        return self.base + 20

    @property
    def kubelet(self) -> int:
        """A real node's kubelet API (on the node address, see Layout.advertise_address)."""
        return self.base + 30

    @property
    def kubelet_healthz(self) -> int:
        return self.base + 31

    @property
    def kube_proxy_healthz(self) -> int:
        return self.base + 32

    @property
    def kube_proxy_metrics(self) -> int:
        return self.base + 33

    def all(self) -> dict[str, int]:
        return {
            "etcd": self.etcd_client,
            "etcd-peer": self.etcd_peer,
            "kube-apiserver": self.apiserver,
            "kube-controller-manager": self.controller_manager,
            "kube-scheduler": self.scheduler,
            "kwok": self.kwok,
        }


@dataclass(frozen=True)
class Layout:
    """The folder of one local cluster: state, PKI, etcd data, logs and the kubeconfig."""

    root: Path
    ports: Ports
    # A private address the API server advertises for the `kubernetes` Service, so that pods on a
    # real node (node.py) reach it through the Service's ClusterIP; None for a cluster of simulated
    # nodes only, whose API server stays on loopback.
    advertise_address: str | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def component_kubeconfig(self, component: str) -> Path:
        return self.root / f"{component}.kubeconfig"

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"


def find_repo_root(start: Path) -> Path:
    """The repository that holds hack/versions.env, searched upwards from `start`."""
    for candidate in (start, *start.parents):
        if (candidate / "hack" / "versions.env").is_file():
            return candidate
    raise FileNotFoundError(f"no hack/versions.env above {start}; run from the aifactory-operator repository")


def default_layout(repo: Path, environ: dict[str, str] | None = None) -> Layout:
    """<repo>/.devcluster, with ports from AIFACTORY_PORT_BASE (default 16440)."""
    env = os.environ if environ is None else environ
    root = Path(env.get("AIFACTORY_DEVCLUSTER_DIR") or repo / ".devcluster")
    return Layout(root=root, ports=ports_from_env(env))


def ports_from_env(environ: Mapping[str, str]) -> Ports:
    """The ports numbered from AIFACTORY_PORT_BASE (default 16440)."""
    return Ports(int(environ.get("AIFACTORY_PORT_BASE", DEFAULT_PORT_BASE)))
