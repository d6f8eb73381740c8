"""Data locality: data stays inside its jurisdiction, and so do the pods that process it."""

from typing import Any

from ..api.v1alpha1.aifactory import Sovereignty
from ..constants import LABEL_JURISDICTION, LABEL_REGION
from .podspec import find_pod_spec
from .violations import Violation

Obj = dict[str, Any]
DATASET_JURISDICTION = "data-locality/dataset-jurisdiction"
NODE_NAME = "data-locality/node-name"
NODE_AFFINITY = "data-locality/node-affinity"
RULE = DATASET_JURISDICTION


def check_dataset_jurisdiction(
    dataset_jurisdiction: str, factory_jurisdiction: str, path: str
) -> list[Violation]:
    """A dataset may live only in a factory that serves its jurisdiction."""
    if dataset_jurisdiction == factory_jurisdiction:
        return []
    return [
        Violation(
            DATASET_JURISDICTION,
            path,
            f"the data belongs to jurisdiction {dataset_jurisdiction} but this factory serves"
            f" {factory_jurisdiction}; keep it in a factory of {dataset_jurisdiction}",
        )
    ]


def allowed_values(key: str, sovereignty: Sovereignty) -> list[str] | None:
    """The values of a placement label that stay inside the jurisdiction; None for other labels."""
    if key == LABEL_JURISDICTION:
        return [sovereignty.jurisdiction]
    if key == LABEL_REGION:
        return list(sovereignty.regions)
    return None


def check_node_targeting(obj: Obj, sovereignty: Sovereignty, *, operation: str = "CREATE") -> list[Violation]:
    """Pods are placed by the scheduler, and may not ask for nodes outside the jurisdiction by
    nodeSelector or by a required node-affinity term (terms are ORed, so any one is enough).
    A pod's nodeName is judged when it is created: the scheduler's binding sets it later."""
    located = find_pod_spec(obj)
    if located is None:
        return []
    pod_spec, prefix = located
    found = []
    binds_itself = obj.get("kind") != "Pod" or operation == "CREATE"
    if pod_spec.get("nodeName") and binds_itself:
        found.append(
            Violation(
                NODE_NAME,
                f"{prefix}.nodeName",
                "a pod in a tenant namespace is placed by the scheduler, which keeps it inside the"
                f" jurisdiction; remove nodeName and select nodes with nodeSelector ({LABEL_REGION}"
                " or aifactory.dev/pool)",
            )
        )
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        allowed = allowed_values(key, sovereignty)
        if allowed is not None and value not in allowed:
            found.append(_outside(f"{prefix}.nodeSelector[{key}]", key, allowed))
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for t, term in enumerate(affinity.get("nodeSelectorTerms") or []):
        for e, expression in enumerate(term.get("matchExpressions") or []):
            key = str(expression.get("key", ""))
            allowed = allowed_values(key, sovereignty)
            if allowed is not None and not _stays_inside(expression, allowed):
                path = (
                    f"{prefix}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                    f".nodeSelectorTerms[{t}].matchExpressions[{e}]"
                )
                found.append(_outside(path, key, allowed))
    return found


def _stays_inside(expression: Obj, allowed: list[str]) -> bool:
    operator = expression.get("operator")
    if operator == "In":
        return all(value in allowed for value in expression.get("values") or [])
    return operator != "DoesNotExist"


def _outside(path: str, key: str, allowed: list[str]) -> Violation:
    return Violation(
        NODE_AFFINITY,
        path,
        f"targets nodes outside the jurisdiction; use only {', '.join(allowed)} for {key}",
    )
