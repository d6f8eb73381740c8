"""The command line and health check of each control-plane process (pure: layout in, argv out).

Flags follow what controller-runtime's envtest and kwokctl's binary runtime pass, trimmed to a
single-node loopback cluster: static token authentication, RBAC, and our own CA.
"""

from dataclasses import dataclass
from pathlib import Path

from .layout import POD_CIDR, SERVICE_CIDR, Layout

STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
# A simulated node renews its lease every quarter of this. With a kubelet's 40 s, 10,000 nodes
# renew 1,000 leases a second, more than a 2-CPU machine serves while it also runs the factory:
# leases lapsed and thousands of nodes went NotReady (bench/factory_scale.py --nodes 10000).
NODE_LEASE_SECONDS = 600


@dataclass(frozen=True)
class Component:
    """One process of the control plane."""

    name: str
    argv: list[str]
    health_url: str
    # The health endpoint serves a certificate from our CA (True) or a self-signed one (False).
    verify_with_ca: bool = True


def construct_components(layout: Layout, bin_dir: Path, *, fsync: bool = False) -> list[Component]:
    """The processes in start order: etcd, kube-apiserver, then the controllers and KWOK."""
    return [
        construct_etcd(layout, bin_dir, fsync=fsync),
        construct_apiserver(layout, bin_dir),
        construct_controller_manager(layout, bin_dir),
        construct_scheduler(layout, bin_dir),
        construct_kwok(layout, bin_dir),
    ]


def construct_etcd(layout: Layout, bin_dir: Path, *, fsync: bool) -> Component:
    client = f"http://127.0.0.1:{layout.ports.etcd_client}"
    peer = f"http://127.0.0.1:{layout.ports.etcd_peer}"
    argv = [
        str(bin_dir / "etcd"),
        "--name=aifactory",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=aifactory={peer}",
        "--log-level=warn",
        "--quota-backend-bytes=8589934592",
    ]
    if not fsync:
        # Tests and benchmarks trade durability for speed; the data is thrown away anyway.
        argv.append("--unsafe-no-fsync=true")
    return Component("etcd", argv, f"{client}/health", verify_with_ca=False)


def construct_apiserver(layout: Layout, bin_dir: Path) -> Component:
    pki = layout.pki
    argv = [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{layout.ports.etcd_client}",
        *_apiserver_addresses(layout),
        f"--secure-port={layout.ports.apiserver}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--allow-privileged=true",
        # Webhooks behind a Service are called at its endpoints' addresses: there is no kube-proxy
        # for a ClusterIP, and the image test serves the chart's webhook Service from the host.
        "--enable-aggregator-routing=true",
        # Tests create many objects quickly; the defaults throttle a single client.
        "--max-requests-inflight=1000",
        "--max-mutating-requests-inflight=500",
        "--enable-priority-and-fairness=false",
        # The admin's requests (the operator's and the tests' in this cluster) are logged, so the
        # benchmarks can count API requests by verb and client.
        f"--audit-policy-file={layout.root / AUDIT_POLICY_FILE}",
        f"--audit-log-path={layout.logs / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
    ]
    return Component("kube-apiserver", argv, f"{layout.apiserver_url}/readyz")


def _apiserver_addresses(layout: Layout) -> list[str]:
    if layout.advertise_address is None:
        # The kubernetes Service cannot point at a loopback address; nothing in-cluster needs it.
        return [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
        ]
    # Pods of a real node reach the API server through the kubernetes Service, whose endpoint is the
    # advertised address; loopback clients (kubeconfigs say 127.0.0.1) must keep working too, and
    # the API server binds one address only, so it binds all.
    # It reaches the kubelet (logs, exec) at the node's InternalIP: the node's hostname resolves nowhere.
    return [
        "--bind-address=0.0.0.0",
        f"--advertise-address={layout.advertise_address}",
        "--kubelet-preferred-address-types=InternalIP",
    ]


AUDIT_POLICY_FILE = "audit-policy.yaml"
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: [admin]
  - level: None
"""


def construct_controller_manager(layout: Layout, bin_dir: Path) -> Component:
    kubeconfig = layout.component_kubeconfig("kube-controller-manager")
    argv = [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.ports.controller_manager}",
        "--leader-elect=false",
        # Each controller acts as its own service account (as kubeadm sets it up), so admission can
        # tell a Pod made by the Job controller from one a person created.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={layout.pki / 'sa.key'}",
        f"--root-ca-file={layout.pki / 'ca.crt'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--cluster-cidr={POD_CIDR}",
        "--kube-api-qps=500",
        "--kube-api-burst=1000",
        # The Job controller's five workers (its default) left gangs waiting ~11 s for their pods
        # and ~6 s for their Complete condition when hundreds of Jobs start and end a minute
        # (bench/admission_e2e.py --deep-queue); with 25, about a second each.
        "--concurrent-job-syncs=25",
        # Simulated nodes renew their leases rarely (below); a node is Unknown only after this long
        # without a renewal, or, while KWOK works through thousands of new nodes, without a first
        # status (the 60 s default marked 2,800 of 10,000 new nodes Unknown, each one more write).
        f"--node-monitor-grace-period={NODE_LEASE_SECONDS}s",
        f"--node-startup-grace-period={NODE_LEASE_SECONDS}s",
    ]
    url = f"https://127.0.0.1:{layout.ports.controller_manager}/healthz"
    return Component("kube-controller-manager", argv, url, verify_with_ca=False)


def construct_scheduler(layout: Layout, bin_dir: Path) -> Component:
    kubeconfig = layout.component_kubeconfig("kube-scheduler")
    argv = [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.ports.scheduler}",
        "--leader-elect=false",
        "--kube-api-qps=500",
        "--kube-api-burst=1000",
    ]
    url = f"https://127.0.0.1:{layout.ports.scheduler}/healthz"
    return Component("kube-scheduler", argv, url, verify_with_ca=False)


def construct_kwok(layout: Layout, bin_dir: Path) -> Component:
    argv = [
        str(bin_dir / "kwok"),
        f"--kubeconfig={layout.component_kubeconfig('kwok')}",
        # Only nodes that ask for it are simulated, so real nodes of a mixed cluster are left alone.
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        "--cidr=10.244.0.0/16",
        "--node-ip=10.0.0.1",
        f"--server-address=127.0.0.1:{layout.ports.kwok}",
        # Our pod stages: Job pods run for an annotated duration and can fail on purpose.
        f"--config={STAGES_FILE}",
    ]
    return Component("kwok", argv, f"http://127.0.0.1:{layout.ports.kwok}/healthz", verify_with_ca=False)
