"""Allow-lists for what a tenant pod may use: volume sources, PriorityClasses and resources.

Each rule names what is allowed, so a source, class or resource Kubernetes adds later is refused
until someone decides it is safe, instead of slipping past a list of known-bad shapes.
"""

from typing import Any

from .placement import TenantScope
from .podspec import find_pod_spec, list_containers
from .violations import Violation

Obj = dict[str, Any]
VOLUME_TYPE = "allow-list/volume-type"
PRIORITY_CLASS = "allow-list/priority-class"
EXTENDED_RESOURCES = "allow-list/extended-resources"
# In-cluster sources only: claims (Datasets and scratch), the pod's own config and identity, and
# scratch space. Inline CSI, NFS, iSCSI, hostPath, image and gitRepo volumes reach past the
# factory's StorageClasses or the node, so they are not here.
ALLOWED_VOLUME_SOURCES = (
    "persistentVolumeClaim",
    "configMap",
    "secret",
    "emptyDir",
    "projected",
    "downwardAPI",
    "ephemeral",
)
# Core resources every pod may request; anything else (nvidia.com/gpu, RDMA, any device plug-in)
# is capacity the operator accounts for, so only its own children may ask for it.
CORE_RESOURCE_DOMAIN = "kubernetes.io"


def check_volume_sources(obj: Obj) -> list[Violation]:
    located = find_pod_spec(obj)
    if located is None:
        return []
    spec, prefix = located
    found = []
    for volume in spec.get("volumes") or []:
        sources = sorted(set(volume) - {"name"})
        if any(s not in ALLOWED_VOLUME_SOURCES for s in sources):
            found.append(
                Violation(
                    VOLUME_TYPE,
                    f"{prefix}.volumes[name={volume.get('name', '')}]",
                    f"volume source {', '.join(sources)} is not allowed in a tenant pod; use one of"
                    f" {', '.join(ALLOWED_VOLUME_SOURCES)} (data comes through a Dataset's claim)",
                )
            )
    return found


def check_priority_class(obj: Obj, scope: TenantScope) -> list[Violation]:
    located = find_pod_spec(obj)
    if located is None:
        return []
    spec, prefix = located
    name = spec.get("priorityClassName")
    if not name or name in scope.priority_classes:
        return []
    allowed = ", ".join(scope.priority_classes) or "none"
    return [
        Violation(
            PRIORITY_CLASS,
            f"{prefix}.priorityClassName",
            f"PriorityClass '{name}' is not one the tenant may use ({allowed}); remove it or ask the"
            " platform team to list it in the tenant's priorityClasses",
        )
    ]


def check_training_priority_class(name: str, tenant: str, allowed: list[str]) -> list[Violation]:
    """A TrainingJob's priorityClassName must be one of its tenant's priorityClasses: it decides
    whom the job may preempt."""
    if not name or name in allowed:
        return []
    return [
        Violation(
            PRIORITY_CLASS,
            "spec.priorityClassName",
            f"PriorityClass '{name}' is not one tenant '{tenant}' may use ({', '.join(allowed) or 'none'});"
            " ask the platform team to list it in the tenant's priorityClasses",
        )
    ]


def is_core_resource(name: str) -> bool:
    if "/" not in name:
        return True
    domain = name.split("/", 1)[0]
    return domain == CORE_RESOURCE_DOMAIN or domain.endswith("." + CORE_RESOURCE_DOMAIN)


def check_extended_resources(obj: Obj, *, by_operator: bool) -> list[Violation]:
    """GPUs and other devices only through TrainingJobs and ModelEndpoints: a pod or template
    not written by the operator (or by a controller copying one of its templates) may request
    core resources only, and may not claim devices through DRA resourceClaims."""
    located = find_pod_spec(obj)
    if located is None or by_operator:
        return []
    spec, prefix = located
    found = []
    for container, path in list_containers(spec, prefix):
        resources = container.get("resources") or {}
        names = sorted({*(resources.get("requests") or {}), *(resources.get("limits") or {})})
        extended = [n for n in names if not is_core_resource(n)]
        if extended:
            found.append(
                Violation(
                    EXTENDED_RESOURCES,
                    f"{path}.resources",
                    f"{', '.join(extended)} can be used only through a TrainingJob or ModelEndpoint,"
                    " which the operator admits against the tenant's quota per GPU product",
                )
            )
    if spec.get("resourceClaims"):
        found.append(
            Violation(
                EXTENDED_RESOURCES,
                f"{prefix}.resourceClaims",
                "devices can be claimed only through a TrainingJob or ModelEndpoint, which the"
                " operator admits against the tenant's quota per GPU product",
            )
        )
    return found
