"""Dataset paths: every path canonical, every tenant confined to its own subtree of a storage entry.

The path a Dataset declares used to be glued to the storage export as it was written, so '..' or
another tenant's path produced a volume on someone else's data. Now a path must be canonical
(`dataset/canonical-path`: the CRD's own CEL rule says the same, so it holds with the operator
stopped), the volume of static storage points at <export>/<tenant>/<path> (confinement by
construction, in reconcile/storage.py), and two tenants may not declare overlapping paths on one
storage entry (`dataset/tenant-subtree`). That last rule is defence in depth and clarity: with the
tenant in the volume path, overlapping declarations could no longer reach the same files, but a
refusal tells a tenant at once that the path it chose is not the data it may have meant.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, Tenant
from ..api.v1alpha1.dataset import CANONICAL_PATH, CANONICAL_PATH_MAX_LENGTH, CANONICAL_PATH_MESSAGE
from .violations import Violation

CANONICAL = "dataset/canonical-path"
TENANT_SUBTREE = "dataset/tenant-subtree"
FIELD = "spec.storage.path"
_CANONICAL = re.compile(CANONICAL_PATH)
_SUFFIX = f" [{CANONICAL}]"


@dataclass(frozen=True)
class DeclaredPath:
    """The part of a storage entry one Dataset claims, as it declares it."""

    tenant: str
    namespace: str
    name: str
    storage: str
    path: str
    created: str = ""
    """metadata.creationTimestamp (RFC 3339, so strings order as times); empty before creation."""


def is_canonical(path: str) -> bool:
    """Empty, or '/segment' parts as the CRD's rule states; `fullmatch`, because Python's `$`
    alone would also match before a trailing newline."""
    return len(path) <= CANONICAL_PATH_MAX_LENGTH and _CANONICAL.fullmatch(path) is not None


def check_canonical_path(path: str, field: str = FIELD) -> list[Violation]:
    """The path is canonical; the message states what every path must be and how to write one."""
    if is_canonical(path):
        return []
    if len(path) > CANONICAL_PATH_MAX_LENGTH:
        message = f"is {len(path)} characters long; keep it at most {CANONICAL_PATH_MAX_LENGTH}"
        return [Violation(CANONICAL, field, message)]
    return [Violation(CANONICAL, field, f"{path!r} " + CANONICAL_PATH_MESSAGE.removesuffix(_SUFFIX))]


def overlaps(first: str, second: str) -> bool:
    """Equal, or one a prefix of the other by whole segments; '' (the root) overlaps every path.
    '/corpora/de' and '/corpora/de-2026' do not overlap: they share characters, not a directory."""
    return first == second or second.startswith(first + "/") or first.startswith(second + "/")


def is_older(first: DeclaredPath, second: DeclaredPath) -> bool:
    """Creation time first, then name and namespace: a total order, so exactly one of two
    overlapping datasets yields even when both were created in the same second."""
    return (first.created, first.name, first.namespace) < (second.created, second.name, second.namespace)


def check_tenant_subtree(
    dataset: DeclaredPath, others: Iterable[DeclaredPath], field: str = FIELD
) -> list[Violation]:
    """No other tenant's dataset on the same storage entry overlaps this one's path."""
    return [
        Violation(
            TENANT_SUBTREE,
            field,
            f"{dataset.path!r} overlaps dataset {other.name!r} of tenant {other.tenant!r} on storage"
            f" {other.storage!r}; each tenant's data lives under its own subtree, choose another path",
        )
        for other in others
        if other.tenant != dataset.tenant
        and other.storage == dataset.storage
        and overlaps(dataset.path, other.path)
    ]


def declared_path(tenant: Tenant, body: dict[str, Any]) -> DeclaredPath:
    """A Dataset body (as the API server or an index holds it) as the path it declares."""
    meta, storage = body.get("metadata") or {}, (body.get("spec") or {}).get("storage") or {}
    return DeclaredPath(
        tenant=tenant.name,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        storage=str(storage.get("name") or ""),
        path=str(storage.get("path") or ""),
        created=str(meta.get("creationTimestamp") or ""),
    )


def declared_paths(
    factory: AIFactory, bodies_by_namespace: dict[str, list[dict[str, Any]]]
) -> list[DeclaredPath]:
    """The paths the factory's tenants declare on its static storage. Dynamically provisioned
    storage is left out: each claim there gets a volume of its own and the path is not used."""
    static = {s.name for s in factory.spec.storage if s.static}
    return [
        found
        for tenant in factory.spec.tenants
        for namespace in tenant.namespaces
        for body in bodies_by_namespace.get(namespace, [])
        if (found := declared_path(tenant, body)).storage in static
    ]


def owning_tenant(factory: AIFactory, namespace: str) -> Tenant | None:
    """The tenant whose spec.tenants[].namespaces lists `namespace` (validation keeps it unique)."""
    return next((t for t in factory.spec.tenants if namespace in t.namespaces), None)
