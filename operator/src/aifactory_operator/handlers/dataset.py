"""Dataset handlers: parse -> observe -> plan -> apply -> report."""

from typing import Any

import kopf

from ..api.v1alpha1 import AIFactory, Dataset
from ..constants import API_VERSION, GROUP, LABEL_FACTORY, VERSION
from ..kube.client import Kube
from ..metrics import RECONCILES
from ..policy.dataset_paths import declared_paths
from ..reconcile.conditions import Outcome
from ..reconcile.datasets import DatasetPlan, plan_dataset
from ..reconcile.parsing import InvalidSpec, parse_resource
from ..reconcile.storage import claim_name, volume_name
from .indexes import snapshot_values
from .runtime import RESYNC_SECONDS, instrumented, kube, report, retry_if_progressing

PLURAL = Dataset.info.plural
Obj = dict[str, Any]


def factory_namespaces(factory: AIFactory) -> list[str]:
    return [namespace for tenant in factory.spec.tenants for namespace in tenant.namespaces]


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.timer(
    GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, idle=RESYNC_SECONDS
)
@instrumented("Dataset")
def reconcile_dataset(
    body: kopf.Body, patch: kopf.Patch, datasets_by_namespace: kopf.Index[str, Obj], **_: Any
) -> None:
    """Binds the dataset's claim inside the jurisdiction, or says why it may not."""
    try:
        dataset = parse_resource(Dataset, dict(body))
    except InvalidSpec as invalid:
        RECONCILES.labels(kind="Dataset", outcome="stalled").inc()
        report(patch, body, invalid.outcome)
        return
    plan = reconcile_dataset_once(kube(), dataset, datasets_by_namespace)
    RECONCILES.labels(kind="Dataset", outcome=plan.outcome.state).inc()
    report(patch, body, plan.outcome, **plan.status)
    retry_if_progressing(plan.outcome)


def reconcile_dataset_once(kube: Kube, dataset: Dataset, datasets: kopf.Index[str, Obj]) -> DatasetPlan:
    namespace = kube.get("v1", "Namespace", dataset.namespace or "") or {"metadata": {}}
    labels = namespace["metadata"].get("labels") or {}
    factory_body = (
        kube.get(API_VERSION, "AIFactory", labels[LABEL_FACTORY]) if labels.get(LABEL_FACTORY) else None
    )
    try:
        factory = parse_resource(AIFactory, factory_body) if factory_body else None
    except InvalidSpec:
        return DatasetPlan(
            outcome=Outcome.progressing("FactoryInvalid", "the factory's spec is being corrected")
        )
    claim = kube.get("v1", "PersistentVolumeClaim", claim_name(dataset), dataset.namespace)
    volume = kube.get("v1", "PersistentVolume", volume_name(factory, dataset)) if factory else None
    # The factory's datasets as the watch-fed index holds them: the paths other tenants declare.
    declared = (
        declared_paths(factory, snapshot_values(datasets, factory_namespaces(factory))) if factory else []
    )
    plan = plan_dataset(dataset, labels, factory, claim, volume, declared)
    for obj in plan.apply:
        kube.apply(obj)
    return plan
