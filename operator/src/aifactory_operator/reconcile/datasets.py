"""The Dataset plan: where its claim (and static volume) go, or why it is refused."""

from dataclasses import dataclass, field
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory
from ..api.v1alpha1.dataset import Dataset
from ..constants import LABEL_FACTORY, LABEL_TENANT
from ..policy.clearance import check_clearance
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
) -> DatasetPlan:
    """Refuse what breaks locality or clearance; otherwise the claim (and volume) to apply."""
    if refusal := find_refusal(dataset, namespace_labels, factory):
        return DatasetPlan(status={"phase": "Refused"}, outcome=refusal)
    assert factory is not None
    storage = next(s for s in factory.spec.storage if s.name == dataset.spec.storage.name)
    desired = [construct_claim(factory, storage, dataset)]
    observed = [claim]
    if storage.static:
        desired.insert(0, construct_static_volume(factory, storage, dataset))
        observed.insert(0, volume)
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
    dataset: Dataset, namespace_labels: dict[str, str], factory: AIFactory | None
) -> Outcome | None:
    """Stalled outcomes for a dataset the operator must not place, naming the field and the fix."""
    if not namespace_labels.get(LABEL_FACTORY):
        return Outcome.stalled(
            "NotATenantNamespace",
            f"metadata.namespace: '{dataset.namespace}' belongs to no AIFactory tenant;"
            " list it in spec.tenants[].namespaces of the factory",
        )
    if factory is None:
        return Outcome.stalled(
            "FactoryNotFound", f"AIFactory '{namespace_labels[LABEL_FACTORY]}' does not exist"
        )
    sovereignty = factory.spec.sovereignty
    tenant = next((t for t in factory.spec.tenants if t.name == namespace_labels.get(LABEL_TENANT)), None)
    clearance = tenant.clearance if tenant else sovereignty.classification_levels[0]
    violations = [
        *check_dataset_jurisdiction(dataset.spec.jurisdiction, sovereignty.jurisdiction, "spec.jurisdiction"),
        *check_clearance(
            dataset.spec.classification, clearance, sovereignty.classification_levels, "spec.classification"
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
    return None
