"""Objects that a sovereign factory's tenant namespace must admit or refuse, each with the rules it
breaks. The pure functions, the ValidatingAdmissionPolicies and the webhook must all agree on them."""

import copy
from dataclasses import dataclass, field
from typing import Any

REGISTRY = "registry.factory.internal"
JURISDICTION_LABEL = "node-restriction.kubernetes.io/aifactory.dev-jurisdiction"
REGION_LABEL = "topology.kubernetes.io/region"
DIGEST = "@sha256:" + "ab" * 32

# The sovereignty profiles the fixtures are judged under (as in the AIFactory spec).
PROFILES: dict[str, dict[str, Any]] = {
    "default": {
        "jurisdiction": "DE",
        "regions": ["de-fra", "de-ber"],
        "airGapped": True,
        "allowedRegistries": [REGISTRY],
    },
    "digests": {
        "jurisdiction": "DE",
        "regions": ["de-fra", "de-ber"],
        "airGapped": True,
        "allowedRegistries": [REGISTRY],
        "requireImageDigests": True,
    },
    "connected": {"jurisdiction": "DE", "regions": ["de-fra", "de-ber"], "airGapped": False},
}


@dataclass(frozen=True)
class Fixture:
    id: str
    obj: dict[str, Any]
    rules: frozenset[str] = field(default_factory=frozenset)
    profile: str = "default"

    @property
    def allowed(self) -> bool:
        return not self.rules


def make_container(name: str = "main", image: str = f"{REGISTRY}/app:1", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        **fields,
    }


def make_pod_spec(**fields: Any) -> dict[str, Any]:
    """A pod spec that passes Pod Security "restricted" and every sovereignty rule."""
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [make_container()],
        "restartPolicy": "Never",
        **fields,
    }


def make_pod(name: str = "pod", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": make_pod_spec(**fields)}


def wrap(kind: str, pod_spec: dict[str, Any], name: str = "workload") -> dict[str, Any]:
    """The pod spec inside a workload of `kind`, as its controller expects it."""
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    meta = {"name": name}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        spec = {
            "selector": {"matchLabels": labels},
            "template": {**template, "spec": {**pod_spec, "restartPolicy": "Always"}},
        }
        if kind == "StatefulSet":
            spec["serviceName"] = name
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "ReplicationController":
        spec = {"selector": labels, "template": {**template, "spec": {**pod_spec, "restartPolicy": "Always"}}}
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": template}}
    if kind == "CronJob":
        job = {"template": template}
        spec = {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}}
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": spec}
    raise ValueError(kind)


def with_spec(**fields: Any) -> dict[str, Any]:
    spec = make_pod_spec()
    spec.update(fields)
    return spec


def required_affinity(key: str, operator: str, values: list[str] | None = None) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        expression["values"] = values
    terms = [{"matchExpressions": [expression]}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def service(name: str, type_: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"port": 80}], "selector": {"app": "x"}, **spec}
    if type_:
        body["type"] = type_
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def trainingjob(image: str) -> dict[str, Any]:
    spec = {"image": image, "pool": "l40s", "nodes": 1, "gpusPerNode": 4}
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "tj"},
        "spec": spec,
    }


def modelendpoint(image: str) -> dict[str, Any]:
    spec = {"model": "absent-model", "pool": "l40s", "runtime": {"image": image}}
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "me"},
        "spec": spec,
    }


def denied(id_: str, obj: dict[str, Any], *rules: str, profile: str = "default") -> Fixture:
    return Fixture(id_, obj, frozenset(rules), profile)


def allowed(id_: str, obj: dict[str, Any], profile: str = "default") -> Fixture:
    return Fixture(id_, obj, frozenset(), profile)


def evil_init() -> dict[str, Any]:
    return with_spec(initContainers=[make_container("fetch", "ghcr.io/someone/fetch:1")])


OTHER_REGISTRY = "air-gap/image-registry"
VOLUME_TYPE = "allow-list/volume-type"
EXTENDED = "allow-list/extended-resources"
FIXTURES: list[Fixture] = [
    allowed("pod from the factory registry", make_pod()),
    allowed("pod selecting a region inside", make_pod(nodeSelector={REGION_LABEL: "de-fra"})),
    allowed("pod selecting the jurisdiction", make_pod(nodeSelector={JURISDICTION_LABEL: "DE"})),
    allowed(
        "pod with affinity inside",
        make_pod(affinity=required_affinity(REGION_LABEL, "In", ["de-fra", "de-ber"])),
    ),
    allowed(
        "pod with affinity to a pool",
        make_pod(affinity=required_affinity("aifactory.dev/pool", "In", ["h100"])),
    ),
    allowed(
        "pod with a container port", make_pod(containers=[make_container(ports=[{"containerPort": 8080}])])
    ),
    allowed("pod with an approved init container", make_pod(initContainers=[make_container("init")])),
    denied("pod from docker hub", make_pod(containers=[make_container(image="nginx:1.27")]), OTHER_REGISTRY),
    denied(
        "pod from a look-alike host",
        make_pod(containers=[make_container(image=f"{REGISTRY}.evil.io/app:1")]),
        OTHER_REGISTRY,
    ),
    denied(
        "pod naming the registry as a path",
        make_pod(containers=[make_container(image=f"evil.io/{REGISTRY}/app:1")]),
        OTHER_REGISTRY,
    ),
    denied(
        "pod from the registry on another port",
        make_pod(containers=[make_container(image=f"{REGISTRY}:5000/app:1")]),
        OTHER_REGISTRY,
    ),
    denied("pod with an unapproved init container", {**make_pod(), "spec": evil_init()}, OTHER_REGISTRY),
    denied("pod on the host network", make_pod(hostNetwork=True), "host-escape/host-namespace"),
    denied("pod sharing host pids", make_pod(hostPID=True), "host-escape/host-namespace"),
    denied("pod sharing host ipc", make_pod(hostIPC=True), "host-escape/host-namespace"),
    denied(
        "pod mounting a host path",
        make_pod(volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
        "host-escape/host-path",
        VOLUME_TYPE,
    ),
    denied(
        "pod with an inline CSI volume",
        make_pod(volumes=[{"name": "x", "csi": {"driver": "evil.example.com"}}]),
        VOLUME_TYPE,
    ),
    denied(
        "pod with an NFS volume",
        make_pod(volumes=[{"name": "x", "nfs": {"server": "a", "path": "/"}}]),
        VOLUME_TYPE,
    ),
    allowed(
        "pod with every allowed volume source",
        make_pod(
            volumes=[
                {"name": "c", "configMap": {"name": "c"}},
                {"name": "s", "secret": {"secretName": "s"}},
                {"name": "e", "emptyDir": {}},
                {"name": "d", "downwardAPI": {"items": []}},
                {"name": "p", "projected": {"sources": []}},
            ]
        ),
    ),
    denied(
        "pod asking for a GPU outside the operator",
        make_pod(containers=[make_container(resources={"limits": {"nvidia.com/gpu": "1"}})]),
        EXTENDED,
    ),
    denied(
        "job asking for an RDMA device outside the operator",
        wrap("Job", with_spec(containers=[make_container(resources={"limits": {"rdma/hca": "1"}})])),
        EXTENDED,
    ),
    allowed(
        "pod asking for cpu, memory and hugepages",
        make_pod(
            containers=[
                make_container(resources={"limits": {"cpu": "1", "memory": "1Gi", "hugepages-2Mi": "2Mi"}})
            ]
        ),
    ),
    denied(
        "privileged pod",
        make_pod(containers=[make_container(securityContext={"privileged": True})]),
        "host-escape/privileged",
    ),
    denied(
        "pod with a host port",
        make_pod(containers=[make_container(ports=[{"containerPort": 80, "hostPort": 80}])]),
        "host-escape/host-port",
    ),
    denied("pod naming its node", make_pod(nodeName="gpu-node-outside"), "data-locality/node-name"),
    denied(
        "pod selecting a region outside",
        make_pod(nodeSelector={REGION_LABEL: "fr-par"}),
        "data-locality/node-affinity",
    ),
    denied(
        "pod selecting another jurisdiction",
        make_pod(nodeSelector={JURISDICTION_LABEL: "FR"}),
        "data-locality/node-affinity",
    ),
    denied(
        "pod with affinity outside",
        make_pod(affinity=required_affinity(REGION_LABEL, "In", ["de-fra", "us-east-1"])),
        "data-locality/node-affinity",
    ),
    denied(
        "pod with affinity to nodes without a jurisdiction",
        make_pod(affinity=required_affinity(JURISDICTION_LABEL, "DoesNotExist")),
        "data-locality/node-affinity",
    ),
    allowed("deployment from the factory registry", wrap("Deployment", make_pod_spec())),
    allowed("statefulset from the factory registry", wrap("StatefulSet", make_pod_spec())),
    allowed("replicaset from the factory registry", wrap("ReplicaSet", make_pod_spec())),
    allowed("daemonset from the factory registry", wrap("DaemonSet", make_pod_spec())),
    allowed("job from the factory registry", wrap("Job", make_pod_spec())),
    allowed("cronjob from the factory registry", wrap("CronJob", make_pod_spec())),
    denied(
        "deployment from docker hub",
        wrap("Deployment", with_spec(containers=[make_container(image="vllm/vllm-openai")])),
        OTHER_REGISTRY,
    ),
    denied(
        "statefulset on the host network",
        wrap("StatefulSet", with_spec(hostNetwork=True)),
        "host-escape/host-namespace",
    ),
    denied(
        "daemonset with a privileged container",
        wrap("DaemonSet", with_spec(containers=[make_container(securityContext={"privileged": True})])),
        "host-escape/privileged",
    ),
    denied(
        "replicaset mounting a host path",
        wrap("ReplicaSet", with_spec(volumes=[{"name": "h", "hostPath": {"path": "/var/run"}}])),
        "host-escape/host-path",
        VOLUME_TYPE,
    ),
    denied(
        "replicationcontroller on the host network",
        wrap("ReplicationController", with_spec(hostNetwork=True)),
        "host-escape/host-namespace",
    ),
    denied("job naming its node", wrap("Job", with_spec(nodeName="n1")), "data-locality/node-name"),
    denied(
        "cronjob whose nested template pulls from elsewhere", wrap("CronJob", evil_init()), OTHER_REGISTRY
    ),
    denied(
        "cronjob whose nested template opens a host port",
        wrap("CronJob", with_spec(containers=[make_container(ports=[{"containerPort": 1, "hostPort": 1}])])),
        "host-escape/host-port",
    ),
    allowed("cluster-ip service", service("internal")),
    allowed("headless service", service("headless", clusterIP="None")),
    denied(
        "service with external IPs",
        service("ext-ip", externalIPs=["8.8.8.8"]),
        "air-gap/service-external-ips",
    ),
    denied("load-balancer service", service("lb", "LoadBalancer"), "air-gap/service-type"),
    denied("node-port service", service("np", "NodePort"), "air-gap/service-type"),
    denied(
        "external-name service",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        },
        "air-gap/service-type",
    ),
    denied(
        "ingress",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web"},
            "spec": {"defaultBackend": {"service": {"name": "internal", "port": {"number": 80}}}},
        },
        "air-gap/ingress",
    ),
    allowed("trainingjob from the factory registry", trainingjob(f"{REGISTRY}/train:1")),
    allowed("modelendpoint from the factory registry", modelendpoint(f"{REGISTRY}/vllm:1")),
    denied("trainingjob from docker hub", trainingjob("pytorch/pytorch:2.5"), OTHER_REGISTRY),
    denied(
        "modelendpoint from a look-alike host", modelendpoint(f"{REGISTRY}.evil.io/vllm:1"), OTHER_REGISTRY
    ),
    # A factory that requires digests.
    allowed(
        "pod pinned by digest",
        make_pod(containers=[make_container(image=f"{REGISTRY}/app{DIGEST}")]),
        "digests",
    ),
    denied(
        "pod with a tag where a digest is required", make_pod(), "air-gap/image-digest", profile="digests"
    ),
    denied(
        "init container with a tag where a digest is required",
        make_pod(
            containers=[make_container(image=f"{REGISTRY}/app{DIGEST}")],
            initContainers=[make_container("init", f"{REGISTRY}/init:2")],
        ),
        "air-gap/image-digest",
        profile="digests",
    ),
    denied(
        "trainingjob with a tag where a digest is required",
        trainingjob(f"{REGISTRY}/train:1"),
        "air-gap/image-digest",
        profile="digests",
    ),
    allowed("trainingjob pinned by digest", trainingjob(f"{REGISTRY}/train{DIGEST}"), "digests"),
    # A connected factory: any registry, and services may be exposed.
    allowed(
        "connected: pod from docker hub",
        make_pod(containers=[make_container(image="nginx:1.27")]),
        "connected",
    ),
    allowed("connected: node-port service", service("np", "NodePort"), "connected"),
    denied(
        "connected: pod on the host network",
        make_pod(hostNetwork=True),
        "host-escape/host-namespace",
        profile="connected",
    ),
]


def instance(fixture: Fixture, namespace: str) -> dict[str, Any]:
    """A copy of the fixture's object placed in `namespace`."""
    obj = copy.deepcopy(fixture.obj)
    obj["metadata"]["namespace"] = namespace
    return obj
