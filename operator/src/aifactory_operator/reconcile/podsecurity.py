"""Pod Security "restricted" and the hardening every workload the operator creates carries: a high
fixed UID, a read-only root filesystem with a scratch /tmp, and CPU and memory stated up front."""

from typing import Any

from ..api.v1alpha1.aifactory import NodePool
from .parsing import quantity_bytes

# A fixed non-root identity above the range host accounts use: images need not declare a numeric
# USER for runAsNonRoot to hold.
WORKLOAD_UID = 10001
SCRATCH = {"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}}
SCRATCH_MOUNT = {"name": "scratch", "mountPath": "/tmp"}
# Leave a tenth of each node to the kubelet, system daemons and DaemonSets.
NODE_SHARE = 0.9


def restricted_pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": WORKLOAD_UID,
        "runAsGroup": WORKLOAD_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
    }


def node_share(pool: NodePool, gpus: int, gpu_resource: str) -> dict[str, Any]:
    """Requests and limits for a pod holding `gpus` of a pool's nodes: that share of the node's
    CPU and memory, so GPU work never starves for the host resources next to its GPUs."""
    share = NODE_SHARE * gpus / pool.gpus_per_node
    cpu = f"{max(1, int(pool.cpus_per_node * share))}"
    memory = f"{max(1, int(quantity_bytes(pool.memory_per_node) * share) // 2**20)}Mi"
    amounts = {"cpu": cpu, "memory": memory, gpu_resource: str(gpus)}
    return {"requests": dict(amounts), "limits": dict(amounts)}
