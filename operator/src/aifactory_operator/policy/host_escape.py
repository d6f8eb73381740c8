"""Host escape: tenant pods never share the node's namespaces, files, ports or privileges."""

from typing import Any

from .podspec import find_pod_spec, list_containers
from .violations import Violation

Obj = dict[str, Any]
HOST_NAMESPACE = "host-escape/host-namespace"
HOST_PATH = "host-escape/host-path"
PRIVILEGED = "host-escape/privileged"
HOST_PORT = "host-escape/host-port"
HOST_NAMESPACE_FIELDS = ("hostNetwork", "hostPID", "hostIPC")


def check_host_escape(obj: Obj) -> list[Violation]:
    """Every host-escape rule for a pod or pod template."""
    located = find_pod_spec(obj)
    if located is None:
        return []
    pod_spec, prefix = located
    found = [
        Violation(HOST_NAMESPACE, f"{prefix}.{field}", f"{field} shares the node's namespace; remove it")
        for field in HOST_NAMESPACE_FIELDS
        if pod_spec.get(field)
    ]
    found += [
        Violation(
            HOST_PATH,
            f"{prefix}.volumes[name={volume.get('name', '')}].hostPath",
            "hostPath mounts the node's files; use a PersistentVolumeClaim (a Dataset) instead",
        )
        for volume in pod_spec.get("volumes") or []
        if "hostPath" in volume
    ]
    for container, path in list_containers(pod_spec, prefix):
        if (container.get("securityContext") or {}).get("privileged"):
            found.append(
                Violation(
                    PRIVILEGED,
                    f"{path}.securityContext.privileged",
                    "privileged containers control the node; remove privileged: true",
                )
            )
        if any(port.get("hostPort") for port in container.get("ports") or []):
            found.append(
                Violation(
                    HOST_PORT,
                    f"{path}.ports",
                    "hostPort opens a port on the node; remove it and expose the pod through a Service",
                )
            )
    return found
