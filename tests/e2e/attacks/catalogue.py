"""The attack catalogue: one entry per attack (id, class, identity, write path, the object or
request, the rule id its refusal must carry) and the legitimate workloads that must be admitted.

Plain data built once at import; the runner (`runner.py`) fills in the placeholders ({ns}, {foreign},
...) and applies each entry against the real API server as the entry's identity. The rule
`pod-security/restricted` stands for Pod Security admission (it runs before the policies and names
no rule of ours), `rbac` for an authorization refusal, `api/validation` for the API server's own
validation.
"""

from dataclasses import dataclass, field
from typing import Any

from catalogue_objects import (
    HOST_KEY,
    IMAGE,
    J_KEY,
    MANAGED,
    POOL_KEY,
    REGION_KEY,
    TEMPLATE_KINDS,
    TOLERATE_GPU,
    container,
    dataset,
    expr,
    gpu_limits,
    network_policy,
    pod,
    pod_spec,
    required,
    service,
    workload,
)

Obj = dict[str, Any]
IDENTITIES = ("tenant-admin", "workload-author", "edit-user", "pod-sa", "operator-sa")
CLASSES = (
    "placement",
    "clearance-quota",
    "data",
    "lifecycle",
    "air-gap",
    "host-escape",
    "operator-objects",
    "audit-log",
)
# create: server-side dry run; update/delete/label-removal: the cluster admin sets `obj` up, the
# identity changes it (dry run); binding, legacy-binding, ephemeralcontainers, scale, status, resize,
# eviction, gate-removal: real writes against `obj`, which the cluster admin created first.
PATHS = (
    "create",
    "update",
    "delete",
    "label-removal",
    "binding",
    "legacy-binding",
    "ephemeralcontainers",
    "scale",
    "status",
    "resize",
    "eviction",
    "gate-removal",
)
# Where an entry runs: the two tenants of the example factory, a namespace still labelled for a
# factory that no longer exists, one labelled for ours but not yet marked enforced, the operator's.
TENANTS = ("citizen", "research", "orphan", "unenforced", "operator")


@dataclass(frozen=True)
class Attack:
    id: str
    klass: str
    identity: str
    path: str
    obj: Obj
    rule: str
    change: Obj | None = None
    tenant: str = "citizen"
    # Judged by the operator's webhook: refused as "failed calling webhook" while it is stopped.
    webhook: bool = False
    # The tenant whose identity attacks, when it is not the tenant whose namespace is attacked.
    home: str | None = None
    # Other rule ids whose refusal stops the same attack (an older rule for the same property).
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Legit:
    id: str
    identity: str
    obj: Obj
    tenant: str = "citizen"
    # Admitted only while the operator runs (its webhook judges or mutates the object).
    needs_operator: bool = False
    # Needs only the placement mutation, which the API server runs itself from 1.36
    # (MutatingAdmissionPolicy): admitted with the operator stopped there too.
    needs_mutation: bool = False
    # gate-removal: the patch that lifts the pod's scheduling gate after creation.
    then: Obj | None = field(default=None)


def placement_attacks() -> list[Attack]:
    """Pods that can reach nodes outside the jurisdiction, each by one trick."""
    tricks: list[tuple[str, Obj]] = [
        ("no-selection", {}),
        ("arbitrary-key", {"nodeSelector": {"disk": "ssd"}}),
        ("region-only", {"nodeSelector": {REGION_KEY: "de-fra"}}),
        ("pool-only", {"nodeSelector": {POOL_KEY: "l40s"}}),
        ("foreign-hostname", {"nodeSelector": {HOST_KEY: "{foreign}"}}),
        ("foreign-jurisdiction-selector", {"nodeSelector": {J_KEY: "FR", POOL_KEY: "l40s"}}),
        (
            "notin-foreign",
            {"nodeSelector": {POOL_KEY: "l40s"}, "affinity": required([expr(J_KEY, "NotIn", "FR")])},
        ),
        (
            "notin-home",
            {"nodeSelector": {POOL_KEY: "l40s"}, "affinity": required([expr(J_KEY, "NotIn", "DE")])},
        ),
        ("exists", {"nodeSelector": {POOL_KEY: "l40s"}, "affinity": required([expr(J_KEY, "Exists")])}),
        (
            "does-not-exist",
            {"nodeSelector": {POOL_KEY: "l40s"}, "affinity": required([expr(J_KEY, "DoesNotExist")])},
        ),
        (
            "in-home-and-foreign",
            {"nodeSelector": {POOL_KEY: "l40s"}, "affinity": required([expr(J_KEY, "In", "DE", "FR")])},
        ),
        (
            "gt-on-jurisdiction",
            {"nodeSelector": {POOL_KEY: "l40s"}, "affinity": required([expr(J_KEY, "Gt", "1")])},
        ),
        (
            "second-term-open",
            {
                "affinity": required(
                    [expr(J_KEY, "In", "DE"), expr(POOL_KEY, "In", "l40s")],
                    [expr(REGION_KEY, "In", "fr-par")],
                )
            },
        ),
        ("match-fields-foreign", {"affinity": required(fields=[expr("metadata.name", "In", "{foreign}")])}),
        (
            "preferred-only",
            {
                "nodeSelector": {POOL_KEY: "l40s"},
                "affinity": {
                    "nodeAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 100, "preference": {"matchExpressions": [expr(J_KEY, "In", "DE")]}}
                        ]
                    }
                },
            },
        ),
        (
            "region-notin",
            {"nodeSelector": {POOL_KEY: "l40s"}, "affinity": required([expr(REGION_KEY, "NotIn", "fr-par")])},
        ),
    ]
    who = ("tenant-admin", "workload-author", "edit-user", "pod-sa")
    attacks = [
        Attack(
            f"pod-{name}",
            "placement",
            who[i % len(who)],
            "create",
            pod(f"pod-{name}", pod_spec(None, **spec)),
            "placement/jurisdiction",
            alternatives=("data-locality/node-affinity",),
        )
        for i, (name, spec) in enumerate(tricks)
    ]
    attacks.append(
        Attack(
            "pod-node-name-foreign",
            "placement",
            "edit-user",
            "create",
            pod("pod-nn", pod_spec(nodeName="{foreign}")),
            "data-locality/node-name",
        )
    )
    for i, kind in enumerate(TEMPLATE_KINDS):
        identity = (
            "edit-user"
            if kind in ("DaemonSet", "ReplicationController")
            else ("pod-sa" if kind == "PodTemplate" else who[i % 3])
        )
        foreign = pod_spec({J_KEY: "FR", POOL_KEY: "l40s"})
        attacks.append(
            Attack(
                f"{kind.lower()}-foreign-selector",
                "placement",
                identity,
                "create",
                workload(kind, f"{kind.lower()}-fs", foreign),
                "data-locality/node-affinity",
            )
        )
        into = pod_spec(None, affinity=required([expr(J_KEY, "In", "FR"), expr(POOL_KEY, "In", "l40s")]))
        attacks.append(
            Attack(
                f"{kind.lower()}-foreign-affinity",
                "placement",
                identity,
                "create",
                workload(kind, f"{kind.lower()}-fa", into),
                "data-locality/node-affinity",
            )
        )
    return attacks


def after_creation_attacks() -> list[Attack]:
    """Placement changed after admission: a suspended Job's template, a gated pod, a binding."""
    pending = pod(
        "pending",
        pod_spec(containers=[container(resources={"requests": {"cpu": "5000"}, "limits": {"cpu": "5000"}})]),
    )
    gated = pod("gated", pod_spec(schedulingGates=[{"name": "example.com/hold"}]))
    suspended = workload("Job", "suspended", suspend=True)
    to_france = {"spec": {"template": {"spec": {"nodeSelector": {J_KEY: "FR", POOL_KEY: "l40s"}}}}}
    return [
        Attack(
            "suspended-job-to-foreign",
            "placement",
            "tenant-admin",
            "update",
            suspended,
            "data-locality/node-affinity",
            to_france,
        ),
        Attack(
            "suspended-job-notin",
            "placement",
            "workload-author",
            "update",
            suspended,
            "data-locality/node-affinity",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "nodeSelector": {J_KEY: "FR"},
                            "affinity": required([expr(J_KEY, "In", "FR")]),
                        }
                    }
                }
            },
        ),
        Attack(
            "gated-pod-foreign-affinity",
            "placement",
            "tenant-admin",
            "gate-removal",
            gated,
            "placement/jurisdiction",
            {"spec": {"affinity": required([expr(J_KEY, "NotIn", "DE")])}},
        ),
        Attack(
            "gated-pod-foreign-host",
            "placement",
            "edit-user",
            "gate-removal",
            gated,
            "placement/jurisdiction",
            {"spec": {"nodeSelector": {HOST_KEY: "{foreign}"}}},
        ),
        Attack(
            "binding-to-foreign-node",
            "placement",
            "pod-sa",
            "binding",
            pending,
            "placement/binding",
            {"target": "{foreign}"},
        ),
        Attack(
            "legacy-binding-to-foreign-node",
            "placement",
            "pod-sa",
            "legacy-binding",
            pending,
            "placement/binding",
            {"target": "{foreign}"},
        ),
        Attack(
            "binding-to-confidential-pool",
            "clearance-quota",
            "pod-sa",
            "binding",
            pending,
            "placement/binding",
            {"target": "{h100_node}"},
        ),
        Attack(
            "resize-adds-gpu",
            "clearance-quota",
            "pod-sa",
            "resize",
            pod("resized"),
            "api/validation",
            {"spec": {"containers": [{"name": "main", "resources": gpu_limits()}]}},
        ),
    ]


def clearance_attacks() -> list[Attack]:
    """The internal tenant on the confidential pool, GPUs outside the operator, priority abuse."""
    h100 = {J_KEY: "DE", POOL_KEY: "h100"}
    attacks = [
        Attack(
            "select-confidential-pool",
            "clearance-quota",
            "tenant-admin",
            "create",
            pod("conf", pod_spec(h100, tolerations=TOLERATE_GPU)),
            "placement/pool",
        ),
        Attack(
            "affinity-both-pools",
            "clearance-quota",
            "workload-author",
            "create",
            pod(
                "both",
                pod_spec(
                    {J_KEY: "DE"},
                    tolerations=TOLERATE_GPU,
                    affinity=required([expr(POOL_KEY, "In", "h100", "l40s")]),
                ),
            ),
            "placement/pool",
        ),
        Attack(
            "pool-notin-l40s",
            "clearance-quota",
            "edit-user",
            "create",
            pod(
                "notin",
                pod_spec(
                    {J_KEY: "DE"},
                    tolerations=TOLERATE_GPU,
                    affinity=required([expr(POOL_KEY, "NotIn", "l40s")]),
                ),
            ),
            "placement/pool",
        ),
        Attack(
            "pool-exists",
            "clearance-quota",
            "pod-sa",
            "create",
            pod(
                "exists",
                pod_spec(
                    {J_KEY: "DE"}, tolerations=TOLERATE_GPU, affinity=required([expr(POOL_KEY, "Exists")])
                ),
            ),
            "placement/pool",
        ),
        Attack(
            "no-pool",
            "clearance-quota",
            "tenant-admin",
            "create",
            pod("nopool", pod_spec({J_KEY: "DE"}, tolerations=TOLERATE_GPU)),
            "placement/pool",
        ),
        Attack(
            "foreign-pool",
            "clearance-quota",
            "workload-author",
            "create",
            pod("fpool", pod_spec({J_KEY: "DE", POOL_KEY: "foreign"})),
            "placement/pool",
        ),
        Attack(
            "deployment-confidential-pool",
            "clearance-quota",
            "tenant-admin",
            "create",
            workload("Deployment", "confdep", pod_spec(h100, tolerations=TOLERATE_GPU)),
            "placement/pool",
        ),
        Attack(
            "research-without-quota-product",
            "clearance-quota",
            "tenant-admin",
            "create",
            pod("other", pod_spec({J_KEY: "DE", POOL_KEY: "foreign"})),
            "placement/pool",
            tenant="research",
        ),
    ]
    gpu = [
        ("pod-gpu", "tenant-admin", pod("gpu", pod_spec(containers=[container(resources=gpu_limits("8"))]))),
        (
            "pod-gpu-research",
            "workload-author",
            pod(
                "gpur",
                pod_spec(h100, tolerations=TOLERATE_GPU, containers=[container(resources=gpu_limits("8"))]),
            ),
        ),
        (
            "init-gpu",
            "edit-user",
            pod("initgpu", pod_spec(initContainers=[container("init", resources=gpu_limits())])),
        ),
        (
            "other-extended-resource",
            "pod-sa",
            pod("fpga", pod_spec(containers=[container(resources=gpu_limits("1", "example.com/fpga"))])),
        ),
        (
            "deployment-gpu",
            "tenant-admin",
            workload("Deployment", "gpudep", pod_spec(containers=[container(resources=gpu_limits("4"))])),
        ),
        (
            "job-gpu",
            "workload-author",
            workload("Job", "gpujob", pod_spec(containers=[container(resources=gpu_limits("4"))])),
        ),
        (
            "statefulset-gpu",
            "edit-user",
            workload("StatefulSet", "gpusts", pod_spec(containers=[container(resources=gpu_limits("2"))])),
        ),
        (
            "rc-gpu",
            "edit-user",
            workload(
                "ReplicationController", "gpurc", pod_spec(containers=[container(resources=gpu_limits("2"))])
            ),
        ),
    ]
    for name, identity, obj in gpu:
        tenant = "research" if name.endswith("research") else "citizen"
        attacks.append(
            Attack(
                name,
                "clearance-quota",
                identity,
                "create",
                obj,
                "allow-list/extended-resources",
                tenant=tenant,
            )
        )
    for name, identity, obj in (
        (
            "pod-system-node-critical",
            "tenant-admin",
            pod("pcn", pod_spec(priorityClassName="system-node-critical")),
        ),
        (
            "pod-system-cluster-critical",
            "pod-sa",
            pod("pcc", pod_spec(priorityClassName="system-cluster-critical")),
        ),
        (
            "deployment-priority",
            "workload-author",
            workload("Deployment", "pcdep", pod_spec(priorityClassName="system-node-critical")),
        ),
        (
            "job-priority",
            "edit-user",
            workload("Job", "pcjob", pod_spec(priorityClassName="system-cluster-critical")),
        ),
    ):
        attacks.append(Attack(name, "clearance-quota", identity, "create", obj, "allow-list/priority-class"))
    return attacks


def data_attacks() -> list[Attack]:
    """Another tenant's data, by path tricks or by overlapping its path, and data above clearance."""
    canonical = [
        ("dotdot", "/a/../research"),
        ("only-dotdot", ".."),
        ("dot", "/./shared"),
        ("double-slash", "//shared"),
        ("trailing-slash", "/shared/"),
        ("dotdot-end", "/x/.."),
    ]
    who = ("tenant-admin", "workload-author", "pod-sa")
    attacks = [
        Attack(
            f"dataset-{n}",
            "data",
            who[i % 3],
            "create",
            dataset(f"ds-{n}", p),
            "dataset/canonical-path",
            webhook=False,
        )
        for i, (n, p) in enumerate(canonical)
    ]
    for name, path, identity in (
        ("same-path", "/research-data", "tenant-admin"),
        ("parent-path", "", "workload-author"),
        ("child-path", "/research-data/raw", "pod-sa"),
    ):
        attacks.append(
            Attack(
                f"dataset-{name}",
                "data",
                identity,
                "create",
                dataset(f"ds-{name}", path),
                "dataset/tenant-subtree",
                webhook=True,
            )
        )
    attacks += [
        Attack(
            "dataset-foreign-jurisdiction",
            "data",
            "tenant-admin",
            "create",
            dataset("ds-fr", "/fr", jurisdiction="FR"),
            "data-locality/dataset-jurisdiction",
            webhook=True,
        ),
        Attack(
            "dataset-above-clearance",
            "data",
            "workload-author",
            "create",
            dataset("ds-conf", "/conf", classification="confidential"),
            "clearance/dataset",
            webhook=True,
        ),
        Attack(
            "dataset-secret-research",
            "data",
            "tenant-admin",
            "create",
            dataset("ds-sec", "/sec", classification="secret"),
            "clearance/dataset",
            tenant="research",
            webhook=True,
        ),
        Attack(
            "confidential-data-on-internal-pool",
            "data",
            "tenant-admin",
            "create",
            pod(
                "lowpool",
                pod_spec(volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "dataset-vault"}}]),
            ),
            "clearance/pool",
            tenant="research",
            webhook=True,
        ),
        Attack(
            "dataset-status-forged",
            "data",
            "pod-sa",
            "status",
            dataset("ds-forged", "/forged"),
            "guard-rail/operator-objects",
            {"status": {"phase": "Bound", "volumeName": "{research_pv}"}},
            webhook=True,
        ),
        Attack(
            "other-tenant-pod",
            "data",
            "tenant-admin",
            "create",
            pod("intruder"),
            "rbac",
            tenant="research",
            home="citizen",
        ),
        Attack(
            "evict-other-tenant",
            "data",
            "edit-user",
            "eviction",
            pod("victim"),
            "rbac",
            tenant="research",
            home="citizen",
        ),
    ]
    return attacks


def lifecycle_attacks() -> list[Attack]:
    """Writes into namespaces whose factory is gone or whose enforcement has not started."""
    return [
        Attack(
            "orphan-pod",
            "lifecycle",
            "edit-user",
            "create",
            pod("o-pod", pod_spec(None)),
            "lifecycle/orphaned-namespace",
            tenant="orphan",
        ),
        Attack(
            "orphan-placed-pod",
            "lifecycle",
            "edit-user",
            "create",
            pod("o-placed"),
            "lifecycle/orphaned-namespace",
            tenant="orphan",
        ),
        Attack(
            "orphan-deployment",
            "lifecycle",
            "edit-user",
            "create",
            workload("Deployment", "o-dep"),
            "lifecycle/orphaned-namespace",
            tenant="orphan",
        ),
        Attack(
            "orphan-service",
            "lifecycle",
            "edit-user",
            "create",
            service("o-svc", type="LoadBalancer"),
            "lifecycle/orphaned-namespace",
            tenant="orphan",
        ),
        Attack(
            "orphan-network-policy",
            "lifecycle",
            "edit-user",
            "create",
            network_policy("o-np", ingress=[{}], egress=[{}]),
            "lifecycle/orphaned-namespace",
            tenant="orphan",
            alternatives=("guard-rail/network-policy",),
        ),
        Attack(
            "unenforced-pod",
            "lifecycle",
            "edit-user",
            "create",
            pod("u-pod", pod_spec(None)),
            "lifecycle/not-yet-enforced",
            tenant="unenforced",
        ),
        Attack(
            "unenforced-deployment",
            "lifecycle",
            "edit-user",
            "create",
            workload("Deployment", "u-dep"),
            "lifecycle/not-yet-enforced",
            tenant="unenforced",
        ),
        Attack(
            "unenforced-service",
            "lifecycle",
            "edit-user",
            "create",
            service("u-svc", externalIPs=["203.0.113.7"]),
            "lifecycle/not-yet-enforced",
            tenant="unenforced",
        ),
    ]


def air_gap_attacks() -> list[Attack]:
    """Ways out of an air-gapped namespace: Services, network policies, images, volumes, kinds."""
    allow_all = network_policy("open", ingress=[{}], egress=[{}])
    csi = {
        "name": "c",
        "csi": {"driver": "nfs.csi.k8s.io", "volumeAttributes": {"server": "203.0.113.9", "share": "/"}},
    }
    nfs = {"name": "n", "nfs": {"server": "203.0.113.9", "path": "/"}}
    iscsi = {
        "name": "i",
        "iscsi": {"targetPortal": "203.0.113.9:3260", "iqn": "iqn.2001-04.com.example:x", "lun": 0},
    }
    git = {"name": "g", "gitRepo": {"repository": "https://github.com/example/x"}}
    attacks = [
        Attack(
            "service-external-ips",
            "air-gap",
            "tenant-admin",
            "create",
            service("xip", externalIPs=["203.0.113.7"]),
            "air-gap/service-external-ips",
        ),
        Attack(
            "service-add-external-ips",
            "air-gap",
            "workload-author",
            "update",
            service("later-xip"),
            "air-gap/service-external-ips",
            {"spec": {"externalIPs": ["203.0.113.7"]}},
        ),
        Attack(
            "service-load-balancer",
            "air-gap",
            "edit-user",
            "create",
            service("lb", type="LoadBalancer"),
            "air-gap/service-type",
        ),
        Attack(
            "service-node-port",
            "air-gap",
            "pod-sa",
            "create",
            service("np", type="NodePort"),
            "air-gap/service-type",
        ),
        Attack(
            "service-external-name",
            "air-gap",
            "tenant-admin",
            "create",
            {**service("en"), "spec": {"type": "ExternalName", "externalName": "exfil.example.com"}},
            "air-gap/service-type",
        ),
        Attack(
            "service-to-node-port",
            "air-gap",
            "edit-user",
            "update",
            service("later-np"),
            "air-gap/service-type",
            {"spec": {"type": "NodePort"}},
        ),
        Attack(
            "ingress",
            "air-gap",
            "edit-user",
            "create",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "out"},
                "spec": {"defaultBackend": {"service": {"name": "x", "port": {"number": 80}}}},
            },
            "air-gap/ingress",
        ),
        Attack(
            "network-policy-allow-all",
            "air-gap",
            "edit-user",
            "create",
            allow_all,
            "guard-rail/network-policy",
        ),
        Attack(
            "network-policy-egress-anywhere",
            "air-gap",
            "pod-sa",
            "create",
            network_policy(
                "egress", policyTypes=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]
            ),
            "guard-rail/network-policy",
        ),
        Attack(
            "network-policy-widened",
            "air-gap",
            "edit-user",
            "update",
            network_policy("narrow", policyTypes=["Ingress"]),
            "guard-rail/network-policy",
            {"spec": {"ingress": [{}], "egress": [{}], "policyTypes": ["Ingress", "Egress"]}},
        ),
        Attack(
            "delete-default-deny",
            "air-gap",
            "edit-user",
            "delete",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "aifactory-default-deny"},
            },
            "guard-rail/tenant-objects",
            alternatives=("guard-rail/network-policy",),
        ),
        Attack(
            "image-foreign-registry",
            "air-gap",
            "tenant-admin",
            "create",
            pod("img", pod_spec(containers=[container(image="ghcr.io/evil/miner:1")])),
            "air-gap/image-registry",
        ),
        Attack(
            "image-docker-hub-implicit",
            "air-gap",
            "workload-author",
            "create",
            pod("hub", pod_spec(containers=[container(image="busybox:1.36")])),
            "air-gap/image-registry",
        ),
        Attack(
            "image-look-alike-host",
            "air-gap",
            "edit-user",
            "create",
            pod("alike", pod_spec(containers=[container(image="registry.factory.internal.evil.io/x:1")])),
            "air-gap/image-registry",
        ),
        Attack(
            "image-init-container",
            "air-gap",
            "pod-sa",
            "create",
            pod("initimg", pod_spec(initContainers=[container("fetch", image="quay.io/x/fetch:1")])),
            "air-gap/image-registry",
        ),
        Attack(
            "image-changed-in-deployment",
            "air-gap",
            "tenant-admin",
            "update",
            workload("Deployment", "imgdep"),
            "air-gap/image-registry",
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "main", "image": "docker.io/evil/x:1"}]}}
                }
            },
        ),
        Attack(
            "ephemeral-foreign-image",
            "air-gap",
            "workload-author",
            "ephemeralcontainers",
            pod("debugged"),
            "air-gap/image-registry",
            {"image": "busybox:1.36"},
        ),
        Attack(
            "rc-foreign-image",
            "air-gap",
            "edit-user",
            "create",
            workload("ReplicationController", "rcimg", pod_spec(containers=[container(image="evil.io/x:1")])),
            "air-gap/image-registry",
        ),
        Attack(
            "podtemplate-foreign-image",
            "air-gap",
            "pod-sa",
            "create",
            workload("PodTemplate", "ptimg", pod_spec(containers=[container(image="evil.io/x:1")])),
            "air-gap/image-registry",
        ),
        Attack(
            "pod-csi-inline",
            "air-gap",
            "tenant-admin",
            "create",
            pod("csi", pod_spec(volumes=[csi])),
            "allow-list/volume-type",
        ),
        Attack(
            "deployment-csi-inline",
            "air-gap",
            "workload-author",
            "create",
            workload("Deployment", "csidep", pod_spec(volumes=[csi])),
            "allow-list/volume-type",
        ),
        Attack(
            "deployment-nfs",
            "air-gap",
            "tenant-admin",
            "create",
            workload("Deployment", "nfsdep", pod_spec(volumes=[nfs])),
            "allow-list/volume-type",
        ),
        Attack(
            "statefulset-iscsi",
            "air-gap",
            "edit-user",
            "create",
            workload("StatefulSet", "iscsists", pod_spec(volumes=[iscsi])),
            "allow-list/volume-type",
        ),
        Attack(
            "job-git-repo",
            "air-gap",
            "workload-author",
            "create",
            workload("Job", "gitjob", pod_spec(volumes=[git])),
            "allow-list/volume-type",
        ),
        Attack(
            "rc-csi-inline",
            "air-gap",
            "edit-user",
            "create",
            workload("ReplicationController", "rccsi", pod_spec(volumes=[csi])),
            "allow-list/volume-type",
        ),
        Attack(
            "podtemplate-nfs",
            "air-gap",
            "pod-sa",
            "create",
            workload("PodTemplate", "ptnfs", pod_spec(volumes=[nfs])),
            "allow-list/volume-type",
        ),
        Attack(
            "pod-nfs",
            "air-gap",
            "edit-user",
            "create",
            pod("nfs", pod_spec(volumes=[nfs])),
            "pod-security/restricted",
        ),
    ]
    return attacks


def host_escape_attacks() -> list[Attack]:
    """Reaching the node: Pod Security refuses pods first; the policies judge the templates."""
    privileged = pod_spec(containers=[container(securityContext={"privileged": True})])
    host_path = pod_spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    with_port = pod_spec(containers=[container(ports=[{"containerPort": 80, "hostPort": 80}])])
    return [
        Attack(
            "pod-privileged",
            "host-escape",
            "tenant-admin",
            "create",
            pod("priv", privileged),
            "pod-security/restricted",
        ),
        Attack(
            "pod-host-network",
            "host-escape",
            "workload-author",
            "create",
            pod("hnet", pod_spec(hostNetwork=True)),
            "pod-security/restricted",
        ),
        Attack(
            "pod-host-path",
            "host-escape",
            "edit-user",
            "create",
            pod("hpath", host_path),
            "pod-security/restricted",
        ),
        Attack(
            "ephemeral-privileged",
            "host-escape",
            "pod-sa",
            "ephemeralcontainers",
            pod("debugged-priv"),
            "pod-security/restricted",
            {"image": IMAGE, "securityContext": {"privileged": True}},
        ),
        Attack(
            "deployment-privileged",
            "host-escape",
            "tenant-admin",
            "create",
            workload("Deployment", "privdep", privileged),
            "host-escape/privileged",
        ),
        Attack(
            "daemonset-host-network",
            "host-escape",
            "edit-user",
            "create",
            workload("DaemonSet", "hnetds", pod_spec(hostNetwork=True)),
            "host-escape/host-namespace",
        ),
        Attack(
            "job-host-pid",
            "host-escape",
            "workload-author",
            "create",
            workload("Job", "hpidjob", pod_spec(hostPID=True)),
            "host-escape/host-namespace",
        ),
        Attack(
            "replicaset-host-ipc",
            "host-escape",
            "tenant-admin",
            "create",
            workload("ReplicaSet", "hipcrs", pod_spec(hostIPC=True)),
            "host-escape/host-namespace",
        ),
        Attack(
            "statefulset-host-port",
            "host-escape",
            "workload-author",
            "create",
            workload("StatefulSet", "hportsts", with_port),
            "host-escape/host-port",
        ),
        Attack(
            "cronjob-host-path",
            "host-escape",
            "edit-user",
            "create",
            workload("CronJob", "hpathcj", host_path),
            "host-escape/host-path",
        ),
        Attack(
            "rc-privileged",
            "host-escape",
            "edit-user",
            "create",
            workload("ReplicationController", "privrc", privileged),
            "host-escape/privileged",
        ),
        Attack(
            "podtemplate-host-network",
            "host-escape",
            "pod-sa",
            "create",
            workload("PodTemplate", "hnetpt", pod_spec(hostNetwork=True)),
            "host-escape/host-namespace",
        ),
    ]


def operator_object_attacks() -> list[Attack]:
    """The operator's rendered objects (labelled managed-by) and the tenant namespace's labels."""
    deployment = workload("Deployment", "op-serving", labels=MANAGED)
    svc = service("op-svc", labels=MANAGED)
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "op-hpa", "labels": MANAGED},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "op-serving"},
            "minReplicas": 1,
            "maxReplicas": 2,
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "op-pdb", "labels": MANAGED},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "op-serving"}}},
    }
    job = workload("Job", "op-trainer", labels=MANAGED, suspend=True)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "{ns}"}}
    attacks = [
        Attack(
            "operator-deployment-image",
            "operator-objects",
            "tenant-admin",
            "update",
            deployment,
            "guard-rail/operator-objects",
            {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "main", "image": IMAGE.replace(":1", ":2")}]}
                    }
                }
            },
        ),
        Attack(
            "operator-deployment-gpu",
            "operator-objects",
            "workload-author",
            "update",
            deployment,
            "guard-rail/operator-objects",
            {"spec": {"replicas": 5}},
        ),
        Attack(
            "operator-deployment-scale",
            "operator-objects",
            "edit-user",
            "scale",
            deployment,
            "guard-rail/operator-objects",
            {"spec": {"replicas": 8}},
        ),
        Attack(
            "operator-deployment-delete",
            "operator-objects",
            "tenant-admin",
            "delete",
            deployment,
            "guard-rail/operator-objects",
        ),
        Attack(
            "operator-deployment-unlabel",
            "operator-objects",
            "edit-user",
            "label-removal",
            deployment,
            "guard-rail/operator-objects",
            {"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}},
        ),
        Attack(
            "operator-service-selector",
            "operator-objects",
            "tenant-admin",
            "update",
            svc,
            "guard-rail/operator-objects",
            {"spec": {"selector": {"app": "mine"}}},
        ),
        Attack(
            "operator-service-delete",
            "operator-objects",
            "edit-user",
            "delete",
            svc,
            "guard-rail/operator-objects",
        ),
        Attack(
            "operator-hpa-max",
            "operator-objects",
            "tenant-admin",
            "update",
            hpa,
            "guard-rail/operator-objects",
            {"spec": {"maxReplicas": 64}},
        ),
        Attack(
            "operator-pdb-delete",
            "operator-objects",
            "edit-user",
            "delete",
            pdb,
            "guard-rail/operator-objects",
        ),
        Attack(
            "operator-job-unsuspend",
            "operator-objects",
            "workload-author",
            "update",
            job,
            "guard-rail/operator-objects",
            {"spec": {"suspend": False}},
        ),
        Attack(
            "operator-job-delete",
            "operator-objects",
            "tenant-admin",
            "delete",
            job,
            "guard-rail/operator-objects",
        ),
        Attack(
            "namespace-drop-factory-label",
            "operator-objects",
            "pod-sa",
            "label-removal",
            ns,
            "guard-rail/namespace-labels",
            {"metadata": {"labels": {"aifactory.dev/factory": None}}},
        ),
        Attack(
            "namespace-privileged",
            "operator-objects",
            "pod-sa",
            "update",
            ns,
            "guard-rail/namespace-labels",
            {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
        ),
        Attack(
            "namespace-drop-enforced",
            "operator-objects",
            "pod-sa",
            "label-removal",
            ns,
            "guard-rail/namespace-labels",
            {"metadata": {"labels": {"aifactory.dev/enforced": None}}},
        ),
        Attack(
            "namespace-other-tenant",
            "operator-objects",
            "pod-sa",
            "update",
            ns,
            "guard-rail/namespace-labels",
            {
                "metadata": {
                    "labels": {"aifactory.dev/tenant": "research", "aifactory.dev/clearance": "confidential"}
                }
            },
        ),
    ]
    return attacks


def audit_log_attacks() -> list[Attack]:
    """The operator's own identity may only add to the audit log."""
    segment = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "{audit_segment}"}}
    return [
        Attack(
            "audit-rewrite-entry",
            "audit-log",
            "operator-sa",
            "update",
            segment,
            "guard-rail/audit-log",
            {"data": {"{audit_key}": "{}"}},
            tenant="operator",
        ),
        Attack(
            "audit-delete-segment",
            "audit-log",
            "operator-sa",
            "delete",
            segment,
            "guard-rail/audit-log",
            tenant="operator",
        ),
        Attack(
            "audit-unlabel-segment",
            "audit-log",
            "operator-sa",
            "label-removal",
            segment,
            "guard-rail/audit-log",
            {"metadata": {"labels": {"aifactory.dev/audit-log": None}}},
            tenant="operator",
        ),
    ]


ATTACKS: list[Attack] = [
    *placement_attacks(),
    *after_creation_attacks(),
    *clearance_attacks(),
    *data_attacks(),
    *lifecycle_attacks(),
    *air_gap_attacks(),
    *host_escape_attacks(),
    *operator_object_attacks(),
    *audit_log_attacks(),
]


def legitimate_workloads() -> list[Legit]:
    """Everyday work that must be admitted. Every entry carries its placement explicitly, so it is
    admitted with the operator stopped too; the ones marked needs_operator rely on its webhook."""
    h100 = {J_KEY: "DE", POOL_KEY: "h100"}
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
    mounts = pod_spec(
        containers=[
            container(
                volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}, {"name": "key", "mountPath": "/key"}]
            )
        ],
        volumes=[
            {"name": "cfg", "configMap": {"name": "settings"}},
            {"name": "key", "secret": {"secretName": "token"}},
        ],
    )
    sidecar = container("proxy", restartPolicy="Always")
    return [
        Legit("deployment", "tenant-admin", workload("Deployment", "web")),
        Legit("job", "workload-author", workload("Job", "batch")),
        Legit("statefulset", "edit-user", workload("StatefulSet", "store")),
        Legit("cronjob", "tenant-admin", workload("CronJob", "nightly")),
        Legit("replicaset", "workload-author", workload("ReplicaSet", "rs")),
        Legit("plain-pod", "edit-user", pod("plain")),
        Legit("init-containers", "tenant-admin", pod("init", pod_spec(initContainers=[container("fetch")]))),
        Legit(
            "probes",
            "workload-author",
            pod("probed", pod_spec(containers=[container(readinessProbe=probe, livenessProbe=probe)])),
        ),
        Legit("sidecar", "edit-user", pod("sidecar", pod_spec(initContainers=[sidecar]))),
        Legit(
            "gated-pod-released",
            "tenant-admin",
            pod("held", pod_spec(schedulingGates=[{"name": "example.com/hold"}])),
            then={"spec": {"schedulingGates": None}},
        ),
        Legit("cluster-ip-service", "workload-author", service("api")),
        Legit("configmap-secret-mounts", "edit-user", pod("mounts", mounts)),
        Legit(
            "emptydir-projected",
            "tenant-admin",
            pod(
                "scratch",
                pod_spec(
                    volumes=[
                        {"name": "s", "emptyDir": {}},
                        {
                            "name": "p",
                            "projected": {
                                "sources": [
                                    {
                                        "downwardAPI": {
                                            "items": [
                                                {
                                                    "path": "labels",
                                                    "fieldRef": {"fieldPath": "metadata.labels"},
                                                }
                                            ]
                                        }
                                    }
                                ]
                            },
                        },
                    ]
                ),
            ),
        ),
        Legit(
            "research-on-h100",
            "tenant-admin",
            pod("h100", pod_spec(h100, tolerations=TOLERATE_GPU)),
            tenant="research",
        ),
        Legit(
            "affinity-placement",
            "workload-author",
            pod(
                "aff",
                pod_spec(None, affinity=required([expr(J_KEY, "In", "DE"), expr(POOL_KEY, "In", "l40s")])),
            ),
        ),
        Legit(
            "configmap",
            "edit-user",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}},
        ),
        Legit("dataset", "tenant-admin", dataset("corpus", "/corpus"), needs_operator=True),
        Legit(
            "pod-with-dataset-claim",
            "tenant-admin",
            pod(
                "reader",
                pod_spec(
                    volumes=[
                        {
                            "name": "d",
                            "persistentVolumeClaim": {"claimName": "dataset-shelf", "readOnly": True},
                        }
                    ]
                ),
            ),
            needs_operator=True,
        ),
        Legit(
            "plain-deployment-injected",
            "tenant-admin",
            workload("Deployment", "bare", pod_spec(None)),
            needs_operator=True,
            needs_mutation=True,
        ),
        Legit(
            "plain-pod-injected",
            "workload-author",
            pod("bare", pod_spec(None)),
            needs_operator=True,
            needs_mutation=True,
        ),
    ]


LEGITIMATE: list[Legit] = legitimate_workloads()
