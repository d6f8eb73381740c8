"""Builders for the objects the attack catalogue sends: a Pod Security "restricted" pod, its
templates in every workload kind, Services, Datasets. Placeholders in braces ({ns}, {foreign},
{other_ns}, {factory}) are filled in by the runner once the range exists."""

from typing import Any

Obj = dict[str, Any]
J_KEY = "node-restriction.kubernetes.io/aifactory.dev-jurisdiction"
POOL_KEY = "aifactory.dev/pool"
REGION_KEY = "topology.kubernetes.io/region"
HOST_KEY = "kubernetes.io/hostname"
IMAGE = "registry.factory.internal/app:1"
PLACED = {J_KEY: "DE", POOL_KEY: "l40s"}
TOLERATE_GPU = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
MANAGED = {"app.kubernetes.io/managed-by": "aifactory-operator"}


def container(name: str = "main", image: str = IMAGE, **fields: Any) -> Obj:
    secure = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {"name": name, "image": image, "securityContext": secure, **fields}


def pod_spec(placement: Obj | None = PLACED, **fields: Any) -> Obj:
    """A restricted pod spec, placed on the l40s pool inside DE unless `placement` says otherwise."""
    spec: Obj = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container()],
    }
    if placement is not None:
        spec["nodeSelector"] = dict(placement)
    return {**spec, **fields}


def required(*terms: list[Obj], fields: list[Obj] | None = None) -> Obj:
    """A required node affinity with one term per argument (each a list of expressions)."""
    node_terms = [{"matchExpressions": t} for t in terms]
    if fields:
        node_terms.append({"matchFields": fields})
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": node_terms}}
    }


def expr(key: str, operator: str, *values: str) -> Obj:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


def pod(name: str, spec: Obj | None = None, labels: Obj | None = None) -> Obj:
    metadata: Obj = {"name": name, "labels": labels or {"app": name}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec or pod_spec()}


TEMPLATE_KINDS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "ReplicationController": "v1",
    "PodTemplate": "v1",
}


def workload(kind: str, name: str, spec: Obj | None = None, labels: Obj | None = None, **extra: Any) -> Obj:
    """`spec` (a pod spec) wrapped in a workload of `kind`, with what that kind requires."""
    spec = spec or pod_spec()
    meta = {"labels": {"app": name}}
    template = {"metadata": meta, "spec": spec}
    body: Obj = {
        "apiVersion": TEMPLATE_KINDS[kind],
        "kind": kind,
        "metadata": {"name": name, "labels": labels or {}},
    }
    if kind == "PodTemplate":
        body["template"] = template
        return body
    if kind in ("Job", "CronJob"):
        template = {"metadata": meta, "spec": {**spec, "restartPolicy": "Never"}}
        job: Obj = {"template": template, **extra}
        body["spec"] = job if kind == "Job" else {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}}
        return body
    selector: Obj = {"app": name} if kind == "ReplicationController" else {"matchLabels": {"app": name}}
    body["spec"] = {"selector": selector, "template": template, **extra}
    if kind != "DaemonSet":
        body["spec"].setdefault("replicas", 1)
    if kind == "StatefulSet":
        body["spec"]["serviceName"] = name
    return body


def service(name: str, labels: Obj | None = None, **spec: Any) -> Obj:
    body = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": body,
    }


def dataset(
    name: str,
    path: str,
    *,
    storage: str = "datasets",
    jurisdiction: str = "DE",
    classification: str = "internal",
) -> Obj:
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {
            "purpose": "training-data",
            "storage": {"name": storage, "path": path},
            "jurisdiction": jurisdiction,
            "classification": classification,
        },
    }


def network_policy(name: str, labels: Obj | None = None, **spec: Any) -> Obj:
    body = {"podSelector": {}, **spec}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": body,
    }


def gpu_limits(count: str = "1", resource: str = "nvidia.com/gpu") -> Obj:
    return {"limits": {resource: count}, "requests": {resource: count}}
