"""Where the pod spec sits in each kind that runs pods, so every rule reads all of them alike."""

from typing import Any

Obj = dict[str, Any]

# The field path of the pod spec inside each kind that carries one.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def find_pod_spec(obj: Obj) -> tuple[Obj, str] | None:
    """The pod spec of `obj` and its dotted path, or None for kinds that run no pods."""
    steps = POD_SPEC_PATHS.get(str(obj.get("kind", "")))
    if steps is None:
        return None
    node: Any = obj
    for step in steps:
        node = node.get(step) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else {}), ".".join(steps)


def list_containers(pod_spec: Obj, prefix: str) -> list[tuple[Obj, str]]:
    """Every container (regular, init, ephemeral) with the path of its entry."""
    found = []
    for field in CONTAINER_LISTS:
        for container in pod_spec.get(field) or []:
            found.append((container, f"{prefix}.{field}[name={container.get('name', '')}]"))
    return found
