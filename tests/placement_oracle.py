"""An independent oracle for pod placement, written from Kubernetes' node-selection semantics and not
from the operator's code: given a pod spec and a universe of candidate nodes, which nodes could the
scheduler bind it to, and can any of them lie outside the jurisdiction or in a pool the tenant may
not use?

Semantics (kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node and taint-and-toleration):
nodeSelector is an AND of equalities; required node-affinity terms are ORed, the expressions and
fields inside one term ANDed, and an empty term matches nothing; In/NotIn/Exists/DoesNotExist/Gt/Lt
as documented (NotIn and DoesNotExist match a node without the label; Gt/Lt need an integer label);
matchFields only knows metadata.name; a NoSchedule/NoExecute taint keeps off every pod that does not
tolerate it.
"""

import itertools
from dataclasses import dataclass, field
from typing import Any

JURISDICTION_KEY = "node-restriction.kubernetes.io/aifactory.dev-jurisdiction"
POOL_KEY = "aifactory.dev/pool"
REGION_KEY = "topology.kubernetes.io/region"
HOSTNAME_KEY = "kubernetes.io/hostname"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}

JURISDICTIONS = ("DE", "FR", None)
POOLS = ("h100", "l40s", "foreign", None)
REGIONS = ("de-fra", "de-ber", "fr-par", None)
HOSTS_PER_COMBINATION = 2


@dataclass(frozen=True)
class Node:
    name: str
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...] = field(default=())


def make_universe() -> list[Node]:
    """Every combination of jurisdiction x pool x region, twice; h100 nodes carry the GPU taint as
    the factory gives them, wherever they are."""
    nodes = []
    for jurisdiction, pool, region, index in itertools.product(
        JURISDICTIONS, POOLS, REGIONS, range(HOSTS_PER_COMBINATION)
    ):
        name = f"{jurisdiction or 'nj'}-{pool or 'np'}-{region or 'nr'}-{index}".lower()
        labels = {HOSTNAME_KEY: name}
        for key, value in ((JURISDICTION_KEY, jurisdiction), (POOL_KEY, pool), (REGION_KEY, region)):
            if value is not None:
                labels[key] = value
        taints = (GPU_TAINT,) if pool == "h100" else ()
        nodes.append(Node(name, labels, taints))
    return nodes


def matches_expression(labels: dict[str, str], expression: dict[str, Any]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        try:
            label, bound = int(labels[key]), int(values[0])
        except (KeyError, ValueError, IndexError):
            return False
        return label > bound if operator == "Gt" else label < bound
    raise ValueError(f"unknown node selector operator {operator!r}")


def matches_term(node: Node, term: dict[str, Any]) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches no node
    fields_match = all(
        matches_expression({"metadata.name": node.name}, f) for f in fields if f["key"] == "metadata.name"
    ) and all(f["key"] == "metadata.name" for f in fields)
    return fields_match and all(matches_expression(node.labels, e) for e in expressions)


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint["effect"]:
            continue
        operator = toleration.get("operator", "Equal")
        if operator == "Exists" and toleration.get("key", "") in ("", taint["key"]):
            return True
        same = toleration.get("key") == taint["key"] and toleration.get("value", "") == taint["value"]
        if operator == "Equal" and same:
            return True
    return False


def schedulable_on(spec: dict[str, Any], node: Node) -> bool:
    """The scheduler's filters on labels, fields and taints (resources and ports aside)."""
    if spec.get("nodeName"):
        return bool(spec["nodeName"] == node.name)
    if any(node.labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is not None and not any(matches_term(node, t) for t in terms):
        return False
    hard = [t for t in node.taints if t["effect"] in ("NoSchedule", "NoExecute")]
    return all(tolerates(spec.get("tolerations") or [], t) for t in hard)


def escapes(
    spec: dict[str, Any], jurisdiction: str, allowed_pools: set[str], universe: list[Node]
) -> set[str]:
    """How the pod can leave its bounds: 'jurisdiction' when a node it can land on lies outside (or
    carries no jurisdiction), 'pool' when one is in no pool or a pool the tenant may not use."""
    found: set[str] = set()
    for node in universe:
        if not schedulable_on(spec, node):
            continue
        if node.labels.get(JURISDICTION_KEY) != jurisdiction:
            found.add("jurisdiction")
        if node.labels.get(POOL_KEY) not in allowed_pools:
            found.add("pool")
    return found
