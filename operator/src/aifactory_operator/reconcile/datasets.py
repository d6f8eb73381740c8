"""The Dataset plan: where its claim (and static volume) go, or why it is refused."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, Storage, Tenant
from ..api.v1alpha1.dataset import Dataset
from ..constants import LABEL_FACTORY
from ..policy.clearance import check_clearance
from ..policy.dataset_paths import (
    DeclaredPath,
    check_canonical_path,
    check_tenant_subtree,
    declared_path,
    is_older,
    owning_tenant,
)
from ..policy.locality import check_dataset_jurisdiction
from .conditions import Outcome
from .diff import is_satisfied
from .storage import claim_name, construct_claim, construct_static_volume, storage_class_name

Obj = dict[str, Any]


@dataclass(frozen=True)
class DatasetPlan:
    apply: list[Obj] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    outcome: Outcome = field(default_factory=lambda: Outcome.progressing("Reconciling", ""))


def plan_dataset(
    dataset: Dataset,
    namespace_labels: dict[str, str],
    factory: AIFactory | None,
    claim: Obj | None,
    volume: Obj | None,
    declared: Sequence[DeclaredPath] = (),
) -> DatasetPlan:
    """Refuse what breaks locality, clearance or the tenant's subtree; otherwise the claim (and
    volume) to apply. `declared` holds the paths the factory's datasets declare on its static
    storage (policy/dataset_paths.declared_paths)."""
    if refusal := find_refusal(dataset, namespace_labels, factory, declared):
        return DatasetPlan(status={"phase": "Refused"}, outcome=refusal)
    assert factory is not None
    tenant = owning_tenant(factory, dataset.namespace or "")
    assert tenant is not None
    storage = next(s for s in factory.spec.storage if s.name == dataset.spec.storage.name)
    desired = [construct_claim(factory, storage, dataset)]
    observed = [claim]
    if storage.static:
        desired.insert(0, construct_static_volume(factory, storage, dataset, tenant))
        observed.insert(0, volume)
        if stale := find_stale_volume(desired[0], volume):
            return DatasetPlan(status={"phase": "Refused"}, outcome=stale)
    apply = [d for d, o in zip(desired, observed, strict=True) if not is_satisfied(d, o)]
    phase = (claim or {}).get("status", {}).get("phase")
    status: Obj = {
        "claimName": claim_name(dataset),
        "storageClass": storage_class_name(factory, storage),
        "phase": "Bound" if phase == "Bound" else "Pending",
    }
    if bound := (claim or {}).get("spec", {}).get("volumeName"):
        status["volumeName"] = bound
    if claim is None:
        return DatasetPlan(
            apply, status, Outcome.progressing("CreatingClaim", f"creating claim {claim_name(dataset)}")
        )
    if phase == "Bound" or not storage.static:
        # Dynamically provisioned claims bind when their first pod is scheduled (WaitForFirstConsumer).
        message = (
            f"claim {claim_name(dataset)} is {phase or 'Pending'} on storage class {status['storageClass']}"
        )
        return DatasetPlan(apply, status, Outcome.ready("ClaimReady", message))
    return DatasetPlan(
        apply, status, Outcome.progressing("Binding", f"claim {claim_name(dataset)} is {phase}")
    )


def find_refusal(
    dataset: Dataset,
    namespace_labels: dict[str, str],
    factory: AIFactory | None,
    declared: Sequence[DeclaredPath] = (),
) -> Outcome | None:
    """Stalled outcomes for a dataset the operator must not place, naming the field and the fix."""
    tenant = owning_tenant(factory, dataset.namespace or "") if factory else None
    if not namespace_labels.get(LABEL_FACTORY) or (factory is not None and tenant is None):
        return Outcome.stalled(
            "NotATenantNamespace",
            f"metadata.namespace: '{dataset.namespace}' belongs to no AIFactory tenant;"
            " list it in spec.tenants[].namespaces of the factory",
        )
    if factory is None or tenant is None:
        return Outcome.stalled(
            "FactoryNotFound", f"AIFactory '{namespace_labels[LABEL_FACTORY]}' does not exist"
        )
    sovereignty = factory.spec.sovereignty
    violations = [
        *check_dataset_jurisdiction(dataset.spec.jurisdiction, sovereignty.jurisdiction, "spec.jurisdiction"),
        *check_clearance(
            dataset.spec.classification,
            tenant.clearance,
            sovereignty.classification_levels,
            "spec.classification",
        ),
    ]
    if violations:
        reason = "OutsideJurisdiction" if violations[0].rule.startswith("data-locality") else "AboveClearance"
        return Outcome.stalled(reason, "; ".join(str(v) for v in violations))
    names = [s.name for s in factory.spec.storage]
    if dataset.spec.storage.name not in names:
        return Outcome.stalled(
            "StorageNotFound",
            f"spec.storage.name: factory '{factory.name}' has no storage '{dataset.spec.storage.name}';"
            f" use one of {names}",
        )
    storage = next(s for s in factory.spec.storage if s.name == dataset.spec.storage.name)
    return find_path_refusal(dataset, tenant, storage, declared)


def find_path_refusal(
    dataset: Dataset, tenant: Tenant, storage: Storage, declared: Sequence[DeclaredPath]
) -> Outcome | None:
    """A non-canonical path (written before the CRD's rule, or past it) and, on static storage, a
    path overlapping an older dataset of another tenant. The webhook refuses the overlap, but two
    creates racing through it both pass; the younger one stalls here. Its data would be safe anyway:
    its volume points into its own tenant's subtree (reconcile/storage.tenant_volume_path), so the
    stall is about a clear answer, not about keeping the two tenants apart."""
    if violations := check_canonical_path(dataset.spec.storage.path):
        return Outcome.stalled("PathNotCanonical", "; ".join(str(v) for v in violations))
    if not storage.static:
        return None
    this = declared_path(tenant, dataset.to_wire())
    older = [other for other in declared if is_older(other, this)]
    if violations := check_tenant_subtree(this, older):
        return Outcome.stalled("PathOverlapsAnotherTenant", "; ".join(str(v) for v in violations))
    return None


def find_stale_volume(desired: Obj, observed: Obj | None) -> Outcome | None:
    """A volume the operator made before datasets were confined to their tenant's subtree points
    elsewhere; a PersistentVolume's source cannot be changed, so an administrator moves the data
    and deletes the volume, and the next reconcile creates it at the confined path."""
    if observed is None:
        return None
    source = next(k for k in ("nfs", "local") if k in desired["spec"])
    want = desired["spec"][source]["path"]
    have = (observed.get("spec", {}).get(source) or {}).get("path")
    if have in (None, want):
        return None
    return Outcome.stalled(
        "VolumeOutsideTenantSubtree",
        f"PersistentVolume '{desired['metadata']['name']}' points at {have!r}, outside the tenant's"
        f" subtree; move the data to {want!r} and delete the volume (its claim stays), the operator"
        " then creates it there",
    )
