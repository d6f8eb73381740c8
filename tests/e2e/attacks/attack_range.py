"""The range the catalogue runs against: a factory like examples/01-aifactory.yaml under unique
names, a foreign node, the identities (with the RBAC each would really hold) and the namespaces."""

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalogue_objects import HOST_KEY, J_KEY, POOL_KEY, REGION_KEY, dataset
from factories import make_existing_node

from aifactory_operator.constants import API_VERSION, OPERATOR_NAMESPACE
from aifactory_operator.kube.auditlog import AuditLog
from aifactory_operator.kube.client import Kube, load_config

Obj = dict[str, Any]
REPO = Path(__file__).resolve().parents[3]
RBAC = "rbac.authorization.k8s.io/v1"
OPERATOR_SA = f"system:serviceaccount:{OPERATOR_NAMESPACE}:aifactory-operator"
AUTHOR_RULES = [
    {
        "apiGroups": [""],
        "resources": [
            "pods",
            "pods/ephemeralcontainers",
            "services",
            "configmaps",
            "secrets",
            "persistentvolumeclaims",
        ],
        "verbs": ["create", "update", "patch", "delete", "get"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "deployments/scale", "statefulsets", "replicasets"],
        "verbs": ["create", "update", "patch", "delete", "get"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["jobs", "cronjobs"],
        "verbs": ["create", "update", "patch", "delete", "get"],
    },
    {
        "apiGroups": ["aifactory.dev"],
        "resources": ["datasets", "trainingjobs", "modelendpoints"],
        "verbs": ["create", "update", "patch", "delete", "get"],
    },
]
# What a compromised CI runner or home-made scheduler's service account tends to hold.
POD_SA_RULES = [
    {
        "apiGroups": [""],
        "resources": [
            "pods",
            "pods/binding",
            "bindings",
            "pods/status",
            "pods/resize",
            "pods/ephemeralcontainers",
            "podtemplates",
            "replicationcontrollers",
            "services",
        ],
        "verbs": ["create", "update", "patch", "delete", "get"],
    },
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["create", "update", "patch", "delete", "get"],
    },
    {
        "apiGroups": ["aifactory.dev"],
        "resources": ["datasets", "datasets/status"],
        "verbs": ["create", "update", "patch", "get"],
    },
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Range:
    factory: str
    namespaces: dict[str, str]  # tenant key (catalogue.TENANTS) -> namespace
    admin_groups: dict[str, str]
    places: dict[str, str]  # placeholder -> value
    kubeconfig: Path
    clients: dict[tuple[str, str], Kube] = field(default_factory=dict)

    def user(self, identity: str, tenant: str) -> tuple[str, str]:
        """The user name and group an identity acts as in a tenant's namespace."""
        if identity == "tenant-admin":
            return f"admin-of-{tenant}", self.admin_groups[tenant]
        if identity == "pod-sa":
            return f"system:serviceaccount:{self.namespaces[tenant]}:runner", "system:serviceaccounts"
        if identity == "operator-sa":
            return OPERATOR_SA, "system:serviceaccounts"
        return f"{identity}-{tenant}", "system:authenticated"

    def client(self, identity: str, tenant: str) -> Kube:
        key = self.user(identity, tenant)
        if key not in self.clients:
            api_client = load_config(str(self.kubeconfig))
            api_client.default_headers["Impersonate-User"] = key[0]
            api_client.default_headers["Impersonate-Group"] = key[1]
            self.clients[key] = Kube(api_client)
        return self.clients[key]

    def fill(self, obj: Obj, tenant: str, suffix: str = "") -> Obj:
        """The entry's object with its placeholders filled in, placed in the tenant's namespace."""
        text = json.dumps(obj)
        places = {**self.places, "ns": self.namespaces[tenant]}
        for key, value in places.items():
            text = text.replace("{" + key + "}", value)
        filled: Obj = json.loads(text)
        if filled["kind"] != "Namespace":
            filled["metadata"]["namespace"] = self.namespaces[tenant]
            if suffix and not filled["metadata"]["name"].startswith("aifactory-"):
                filled["metadata"]["name"] += suffix
        return filled


def factory_body(name: str, citizen: str, research: str, groups: dict[str, str]) -> Obj:
    """examples/01-aifactory.yaml, one node per pool, under unique names."""
    import yaml

    body: Obj = yaml.safe_load((REPO / "examples/01-aifactory.yaml").read_text())
    body["metadata"]["name"] = name
    for pool in body["spec"]["nodePools"]:
        pool["nodes"] = 1
    research_tenant, citizen_tenant = body["spec"]["tenants"]
    research_tenant.update(namespaces=[research], adminGroups=[groups["research"]])
    citizen_tenant.update(namespaces=[citizen], adminGroups=[groups["citizen"]])
    return body


def bind(kube: Kube, namespace: str, name: str, role_kind: str, role: str, subject: Obj) -> None:
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [subject],
        }
    )


def grant_identities(kube: Kube, namespace: str, tenant: str) -> None:
    """The workload author's Role, the built-in edit given by mistake, and the runner service account."""
    user = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User"}
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": "workload-author", "namespace": namespace},
            "rules": AUTHOR_RULES,
        }
    )
    bind(
        kube,
        namespace,
        "workload-author",
        "Role",
        "workload-author",
        {**user, "name": f"workload-author-{tenant}"},
    )
    bind(kube, namespace, "edit-by-mistake", "ClusterRole", "edit", {**user, "name": f"edit-user-{tenant}"})
    kube.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": namespace}}
    )
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": "runner", "namespace": namespace},
            "rules": POD_SA_RULES,
        }
    )
    bind(
        kube,
        namespace,
        "runner",
        "Role",
        "runner",
        {"kind": "ServiceAccount", "name": "runner", "namespace": namespace},
    )


def grant_cluster_roles(kube: Kube, name: str, namespaces: list[str]) -> None:
    """The runner may patch namespaces (granted too broadly); the operator's account edits its own
    namespace, where the audit log lives."""
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch", "update"]}],
        }
    )
    subjects = [{"kind": "ServiceAccount", "name": "runner", "namespace": ns} for ns in namespaces]
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        }
    )
    bind(
        kube,
        OPERATOR_NAMESPACE,
        name,
        "ClusterRole",
        "edit",
        {"kind": "ServiceAccount", "name": "aifactory-operator", "namespace": OPERATOR_NAMESPACE},
    )


def make_namespace(kube: Kube, name: str, labels: dict[str, str]) -> None:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})


def foreign_node(name: str) -> Obj:
    labels = {J_KEY: "FR", REGION_KEY: "fr-par", POOL_KEY: "l40s", HOST_KEY: name}
    return make_existing_node(name, labels, gpus=4)


def datasets(citizen: str, research: str) -> list[Obj]:
    """Data each tenant holds before the attacks: research's confidential vault and its data path."""
    found = []
    for namespace, name, path, level in (
        (research, "vault", "/vault", "confidential"),
        (research, "research-data", "/research-data", "internal"),
        (citizen, "shelf", "/shelf", "internal"),
    ):
        body = dataset(name, path, classification=level)
        body["metadata"]["namespace"] = namespace
        found.append(body)
    return found


def audit_places(kube: Kube) -> dict[str, str]:
    """A segment of the audit log and the key of its first entry."""
    segments = kube.list(
        "v1", "ConfigMap", namespace=OPERATOR_NAMESPACE, label_selector="aifactory.dev/audit-log=true"
    )
    segment = sorted(segments, key=lambda s: s["metadata"]["name"])[0]
    return {
        "audit_segment": segment["metadata"]["name"],
        "audit_key": sorted(segment.get("data") or {"0": ""})[0],
    }


def has_audit_entries(kube: Kube) -> bool:
    return bool(AuditLog(kube).read())


def research_pv(kube: Kube, namespace: str) -> str:
    claim = kube.get("v1", "PersistentVolumeClaim", "dataset-research-data", namespace) or {}
    return str(claim.get("spec", {}).get("volumeName") or "none")


def cleanup(kube: Kube, r: Range) -> None:
    for namespace in r.namespaces.values():
        if namespace == OPERATOR_NAMESPACE:
            continue
        for obj in kube.list(API_VERSION, "Dataset", namespace=namespace):
            kube.delete(API_VERSION, "Dataset", obj["metadata"]["name"], namespace)
    kube.delete(API_VERSION, "AIFactory", r.factory)
    for tenant, namespace in r.namespaces.items():
        if tenant != "operator":
            kube.delete("v1", "Namespace", namespace)
    kube.delete("v1", "Node", r.places["foreign"])
    kube.delete(RBAC, "ClusterRoleBinding", r.factory)
    kube.delete(RBAC, "ClusterRole", r.factory)
    kube.delete(RBAC, "RoleBinding", r.factory, OPERATOR_NAMESPACE)
