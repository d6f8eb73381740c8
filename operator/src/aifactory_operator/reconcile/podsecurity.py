"""Pod Security "restricted", as every workload the operator creates carries it."""

from typing import Any

# A fixed non-root identity: images need not declare a numeric USER for runAsNonRoot to hold.
WORKLOAD_UID = 1000


def restricted_pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": WORKLOAD_UID,
        "runAsGroup": WORKLOAD_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}
