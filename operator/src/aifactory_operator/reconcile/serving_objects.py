"""The objects a ModelEndpoint becomes: Deployment, Service, HPA, PDB and NetworkPolicy."""

from typing import Any

from ..api.v1alpha1.aifactory import NodePool
from ..api.v1alpha1.dataset import Dataset
from ..api.v1alpha1.modelendpoint import ModelEndpoint
from ..constants import (
    ANNOTATION_MODEL_DIGEST,
    GPU_RESOURCE,
    LABEL_MODELENDPOINT,
    MODEL_MOUNT,
)
from .ownership import construct_owner_reference, managed_labels
from .pod_placement import construct_node_selector
from .podsecurity import (
    SCRATCH,
    SCRATCH_MOUNT,
    node_share,
    restricted_container_security,
    restricted_pod_security,
)

Obj = dict[str, Any]


def _meta(endpoint: ModelEndpoint, name: str | None = None) -> Obj:
    return {
        "name": name or endpoint.name,
        "namespace": endpoint.namespace,
        "labels": managed_labels(**{LABEL_MODELENDPOINT: endpoint.name}),
        "ownerReferences": [construct_owner_reference(endpoint)],
    }


def model_version(model: Dataset) -> str:
    """What identifies the served model: its digest, else the dataset's uid and generation."""
    return model.spec.digest or f"{model.metadata.get('uid', '')}/{model.generation}"


def construct_deployment(
    endpoint: ModelEndpoint,
    pool: NodePool,
    factory_name: str,
    model: Dataset,
    replicas: int,
    surge: bool,
    jurisdiction: str = "",
) -> Obj:
    """Replicas of the runtime on the pool, the model mounted read-only; a new model or runtime rolls
    the pods without going below replicas.min ready (surge when a GPU is free, else one at a time)."""
    selector = {LABEL_MODELENDPOINT: endpoint.name}
    model_path = f"{MODEL_MOUNT}/{model.name}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(endpoint),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
                if surge
                else {"maxSurge": 0, "maxUnavailable": 1},
            },
            "template": {
                "metadata": {
                    "labels": managed_labels(**selector),
                    "annotations": {ANNOTATION_MODEL_DIGEST: model_version(model)},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": restricted_pod_security(),
                    "nodeSelector": construct_node_selector(factory_name, pool, jurisdiction),
                    "tolerations": [
                        {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
                        for t in pool.taints
                    ],
                    "containers": [construct_runtime_container(endpoint, pool, model_path)],
                    "volumes": [
                        {
                            "name": "model",
                            "persistentVolumeClaim": {"claimName": f"dataset-{model.name}", "readOnly": True},
                        },
                        SCRATCH,
                    ],
                },
            },
        },
    }


def construct_runtime_container(endpoint: ModelEndpoint, pool: NodePool, model_path: str) -> Obj:
    """The serving runtime, its model read-only at `model_path`; ready once its port answers."""
    runtime = endpoint.spec.runtime
    return {
        "name": "runtime",
        "image": runtime.image,
        **({"args": runtime.args} if runtime.args else {}),
        "env": [{"name": "MODEL_PATH", "value": model_path}],
        "ports": [{"name": "http", "containerPort": runtime.port, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": runtime.port}, "periodSeconds": 5},
        # Loading a model takes minutes: restart only a runtime that stays unreachable long after
        # it first answered.
        "livenessProbe": {
            "tcpSocket": {"port": runtime.port},
            "initialDelaySeconds": 60,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": node_share(pool, endpoint.spec.gpus_per_replica, GPU_RESOURCE),
        "securityContext": restricted_container_security(),
        "volumeMounts": [{"name": "model", "mountPath": model_path, "readOnly": True}, SCRATCH_MOUNT],
    }


def construct_service(endpoint: ModelEndpoint) -> Obj:
    port = endpoint.spec.runtime.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(endpoint),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_MODELENDPOINT: endpoint.name},
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def construct_autoscaler(endpoint: ModelEndpoint, max_replicas: int) -> Obj:
    """autoscaling/v2 on CPU utilisation or a per-pod metric; the ceiling is what capacity allows."""
    spec = endpoint.spec
    if spec.autoscaling.metric == "cpu":
        metric = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": spec.autoscaling.target},
            },
        }
    else:
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": "inflight_requests"},
                "target": {"type": "AverageValue", "averageValue": str(spec.autoscaling.target)},
            },
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(endpoint),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": endpoint.name},
            "minReplicas": spec.replicas.min,
            "maxReplicas": max(max_replicas, spec.replicas.min),
            "metrics": [metric],
        },
    }


def construct_disruption_budget(endpoint: ModelEndpoint) -> Obj | None:
    """Voluntary disruptions (drains) never take the endpoint below replicas.min; only with 2+ replicas."""
    if endpoint.spec.replicas.min < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(endpoint),
        "spec": {
            "minAvailable": endpoint.spec.replicas.min,
            "selector": {"matchLabels": {LABEL_MODELENDPOINT: endpoint.name}},
        },
    }


def construct_client_policy(endpoint: ModelEndpoint) -> Obj:
    """Clients only from the endpoint's own namespace and allowedClientNamespaces, on its port."""
    sources: list[Obj] = [{"podSelector": {}}]
    sources += [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
        for ns in endpoint.spec.allowed_client_namespaces
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(endpoint, f"{endpoint.name}-clients"),
        "spec": {
            "podSelector": {"matchLabels": {LABEL_MODELENDPOINT: endpoint.name}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": sources, "ports": [{"protocol": "TCP", "port": endpoint.spec.runtime.port}]}
            ],
        },
    }
