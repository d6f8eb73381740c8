"""A workload using a dataset: the data's jurisdiction, the tenant's clearance and the pool's
classification must all allow it. Shared by the webhook and the TrainingJob/ModelEndpoint plans."""

from dataclasses import dataclass
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, NodePool, Tenant
from ..constants import LABEL_POOL
from .clearance import POOL, check_clearance
from .locality import check_dataset_jurisdiction
from .podspec import find_pod_spec
from .violations import Violation

Obj = dict[str, Any]


@dataclass(frozen=True)
class DataUse:
    """One dataset a workload mounts, as the dataset declares it."""

    path: str
    jurisdiction: str
    classification: str


def check_pool_use(factory: AIFactory, tenant: Tenant, pool: NodePool, path: str) -> list[Violation]:
    """A tenant runs only in pools classified at or below its clearance."""
    levels = factory.spec.sovereignty.classification_levels
    if not pool.classification:
        return []
    return check_clearance(pool.classification, tenant.clearance, levels, path, rule=POOL)


def check_data_use(
    factory: AIFactory, tenant: Tenant, pool: NodePool | None, use: DataUse
) -> list[Violation]:
    """The data stays in its jurisdiction and under the tenant's (and the pool's) classification."""
    levels = factory.spec.sovereignty.classification_levels
    found = check_dataset_jurisdiction(use.jurisdiction, factory.spec.sovereignty.jurisdiction, use.path)
    found += check_clearance(use.classification, tenant.clearance, levels, use.path)
    if pool is not None and pool.classification:
        holder = f"the classification of pool '{pool.name}'"
        found += check_clearance(
            use.classification, pool.classification, levels, use.path, rule=POOL, holder=holder
        )
    return found


def check_mounted_data(
    obj: Obj, factory: AIFactory, tenant: Tenant, datasets_by_claim: dict[str, DataUse]
) -> list[Violation]:
    """A pod or pod template that mounts a dataset's claim: the same rules as a TrainingJob, with
    the pool read from the pod's aifactory.dev/pool node selector when it names one."""
    located = find_pod_spec(obj)
    if located is None:
        return []
    pod_spec, prefix = located
    pool_name = (pod_spec.get("nodeSelector") or {}).get(LABEL_POOL)
    pool = next((p for p in factory.spec.node_pools if p.name == pool_name), None)
    found = []
    for volume in pod_spec.get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim in datasets_by_claim:
            use = datasets_by_claim[claim]
            path = f"{prefix}.volumes[name={volume.get('name', '')}].persistentVolumeClaim"
            found += check_data_use(
                factory, tenant, pool, DataUse(path, use.jurisdiction, use.classification)
            )
    return found
