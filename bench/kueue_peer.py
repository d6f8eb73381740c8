"""Kueue as a runner of the benchmarks (issue 23): its manager built from its Go module
(make kueue), run out of cluster against the same local control plane, given the factory's rules
(kueue_config.py), and fed the same gang Jobs our TrainingJobs render.

Without its webhooks (they would need the API server to reach a cluster Service), Kueue is given
Jobs created already suspended, with the queue-name label: what its mutating webhook would have
done to them. Everything else is its own: it creates a Workload per Job, admits it against the
ClusterQueue's quota with topology-aware placement, and unsuspends the Job with the chosen nodes.

Kueue reads its metrics certificate from a fixed path, /etc/kueue/metrics/certs, when its own
certificate management is off; start() writes one there (made by our PKI code) if none is there,
and stop() removes what start() wrote.

After a run nothing of Kueue's is left in the control plane (kueue_peer): its namespaces are
deleted while it still runs (it removes the finalizers it put on its Workloads and queues), then
its CRDs once it has stopped, since their conversion webhooks would then point at nobody.
"""

import contextlib
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kueue_config import kueue_objects

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.certificates import issue_ca, issue_server
from aifactory_operator.devcluster.processes import is_port_free
from aifactory_operator.kube.client import Kube
from aifactory_operator.launcher import cpu_seconds, peak_rss_kib

REPO = Path(__file__).resolve().parents[1]
METRICS_CERTS = Path("/etc/kueue/metrics/certs")
NAMESPACE = "kueue-system"


def version() -> str:
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        if line.startswith("KUEUE_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("KUEUE_VERSION is not in hack/versions.env")


def build() -> Path:
    """The cached manager binary, built from its module the first time (about 3 minutes)."""
    out = subprocess.run(
        [
            "bash",
            str(REPO / "hack" / "build-go-tool.sh"),
            "kueue",
            "sigs.k8s.io/kueue/cmd/kueue",
            version(),
            "4",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def crds() -> list[dict[str, Any]]:
    """Kueue's CRDs, from the same module in the Go module cache (go install put it there)."""
    cache = subprocess.run(
        ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
    ).stdout.strip()
    bases = Path(cache) / f"sigs.k8s.io/kueue@{version()}" / "config/components/crd/bases"
    return [yaml.safe_load(path.read_text()) for path in sorted(bases.glob("*.yaml"))]


def configuration(workdir: Path, ports: tuple[int, int, int], fair_sharing: bool) -> dict[str, Any]:
    webhook, health, metrics = ports
    config: dict[str, Any] = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics}"},
        "webhook": {"host": "127.0.0.1", "port": webhook, "certDir": str(workdir / "certs")},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "integrations": {"frameworks": ["batch/job"]},
    }
    if fair_sharing:
        config["fairSharing"] = {"enable": True}
    return config


def _write_serving_pair(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ca = issue_ca("aifactory-bench-kueue-ca")
    pair = issue_server(ca, "kueue", ["localhost", "127.0.0.1"])
    (directory / "tls.crt").write_bytes(pair.cert)
    (directory / "tls.key").write_bytes(pair.key)
    (directory / "ca.crt").write_bytes(ca.cert)


class KueueProcess:
    """Kueue's manager out of cluster, its log in `workdir`."""

    def __init__(self, kubeconfig: Path, workdir: Path, port_base: int, fair_sharing: bool = False) -> None:
        self.kubeconfig, self.workdir = kubeconfig, workdir
        self.ports = (port_base, port_base + 1, port_base + 2)
        self.fair_sharing = fair_sharing
        self.process: subprocess.Popen[bytes] | None = None
        self.wrote_metrics_certs = False

    def start(self, kube: Kube) -> None:
        self.install(kube)
        self.launch()

    def install(self, kube: Kube) -> None:
        """Its namespace and CRDs, so that its objects and queued Jobs can exist before it runs."""
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        for crd in crds():
            kube.apply(crd)
        time.sleep(2)  # established and served, as bench/common.py waits for ours
        kube.dynamic.resources.invalidate_cache()

    def uninstall(self, kube: Kube) -> None:
        """Its CRDs and namespace, once it has stopped."""
        for crd in crds():
            kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
        kube.delete("v1", "Namespace", NAMESPACE)

    def launch(self) -> None:
        binary = build()
        _write_serving_pair(self.workdir / "certs")
        if not (METRICS_CERTS / "tls.crt").exists():
            _write_serving_pair(METRICS_CERTS)
            self.wrote_metrics_certs = True
        if not all(is_port_free(p) for p in self.ports):
            raise RuntimeError(f"ports {self.ports} are taken")
        config = self.workdir / "kueue-config.yaml"
        config.write_text(yaml.safe_dump(configuration(self.workdir, self.ports, self.fair_sharing)))
        log = (self.workdir / "kueue.log").open("wb")
        self.process = subprocess.Popen(
            [
                str(binary),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                "--feature-gates=VisibilityOnDemand=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"kueue exited; see {self.workdir / 'kueue.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[1]}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"kueue not ready in {seconds:.0f}s; see {self.workdir / 'kueue.log'}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid) if self.process is not None else 0.0

    def peak_rss_kib(self) -> int:
        return peak_rss_kib(self.process.pid) if self.process is not None else 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.wrote_metrics_certs:
            shutil.rmtree(METRICS_CERTS.parent.parent, ignore_errors=True)
            self.wrote_metrics_certs = False


@contextlib.contextmanager
def kueue_peer(
    kubeconfig: Path,
    workdir: Path,
    kube: Kube,
    factory: AIFactory,
    port_base: int,
    priorities: Iterable[int] = (0,),
    launch: bool = True,
) -> Iterator[KueueProcess]:
    """Kueue installed with the factory's rules (kueue_config.py) and, with `launch`, running
    (otherwise the caller launches it, after queueing Jobs in front of it). On the way out the
    tenants' namespaces go while it runs, then its queues and flavors, then Kueue and its CRDs."""
    fair = bool(factory.spec.scheduling and factory.spec.scheduling.fair_sharing)
    kueue = KueueProcess(kubeconfig, workdir, port_base, fair_sharing=fair)
    objects = kueue_objects(factory, priorities)
    namespaces = [n for t in factory.spec.tenants for n in t.namespaces]
    try:
        kueue.install(kube)
        for obj in objects:
            kube.apply(obj)
        if launch:
            kueue.launch()
        yield kueue
    finally:
        if kueue.process is not None:
            for name in namespaces:
                kube.delete("v1", "Namespace", name)
            _wait_gone(kube, [("v1", "Namespace", name, None) for name in namespaces])
        cluster_scoped = [o for o in objects if "namespace" not in o["metadata"]]
        for obj in reversed(cluster_scoped):
            kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        _wait_gone(kube, [(o["apiVersion"], o["kind"], o["metadata"]["name"], None) for o in cluster_scoped])
        kueue.stop()
        kueue.uninstall(kube)


def _wait_gone(kube: Kube, refs: list[tuple[str, str, str, str | None]], seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while any(kube.get(a, k, n, ns) is not None for a, k, n, ns in refs):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kueue's objects not gone in {seconds:.0f}s")
        time.sleep(0.5)
