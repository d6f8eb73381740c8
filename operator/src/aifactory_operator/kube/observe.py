"""Reading what the cluster holds for one factory: its labelled children, namespaces and datasets."""

from typing import Any

from ..constants import API_VERSION, LABEL_FACTORY, LABEL_MANAGED_BY, MANAGED_BY, TENANT_ADMIN_ROLE
from .client import Kube

Obj = dict[str, Any]

# The kinds an AIFactory creates directly (nodes come from the watch-fed index instead).
CHILD_KINDS = (
    ("v1", "Namespace"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
)


def list_children(kube: Kube, factory: str) -> list[Obj]:
    """Every object of CHILD_KINDS labelled with the factory: one LIST per kind."""
    selector = f"{LABEL_FACTORY}={factory}"
    return [
        obj
        for api_version, kind in CHILD_KINDS
        for obj in kube.list(api_version, kind, label_selector=selector)
    ]


def list_namespaces(kube: Kube) -> dict[str, Obj]:
    return {ns["metadata"]["name"]: ns for ns in kube.list("v1", "Namespace")}


def list_datasets_by_namespace(kube: Kube) -> dict[str, list[str]]:
    """Which namespaces hold Datasets: those namespaces are never deleted by the operator."""
    found: dict[str, list[str]] = {}
    for dataset in kube.list(API_VERSION, "Dataset"):
        found.setdefault(dataset["metadata"]["namespace"], []).append(dataset["metadata"]["name"])
    return found


def get_tenant_admin_role(kube: Kube) -> Obj | None:
    return kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", TENANT_ADMIN_ROLE)


def list_volumes(kube: Kube, factory: str) -> list[Obj]:
    return kube.list("v1", "PersistentVolume", label_selector=f"{LABEL_FACTORY}={factory}")


def list_factory_bindings(kube: Kube) -> list[Obj]:
    """Every factory's policy bindings (ours, labelled with a factory), whichever factory is gone."""
    selector = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_FACTORY}"
    return kube.list(
        "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", label_selector=selector
    )


def list_factory_names(kube: Kube) -> frozenset[str]:
    return frozenset(f["metadata"]["name"] for f in kube.list(API_VERSION, "AIFactory"))
