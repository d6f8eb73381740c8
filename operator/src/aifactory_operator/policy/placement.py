"""Positive placement: every pod in a tenant namespace provably runs inside the factory's
jurisdiction, on a pool its tenant is cleared for and holds quota for.

The rule says what every pod must carry, not which shapes are bad: nodes are matched by the
nodeSelector AND any one required node-affinity term, so a pod is confined to a label value when
its nodeSelector names an allowed value, or when every required term carries an `In` on that label
with only allowed values. Nothing else a pod can say (other keys, NotIn, tolerations, terms added
later while gated) can widen that, because every extra requirement only narrows the match.
"""

from dataclasses import dataclass
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, Tenant
from ..constants import LABEL_JURISDICTION, LABEL_POOL
from .podspec import find_pod_spec
from .violations import Violation

Obj = dict[str, Any]
JURISDICTION = "placement/jurisdiction"
POOL = "placement/pool"
BINDING = "placement/binding"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


@dataclass(frozen=True)
class TenantScope:
    """What a tenant's pods may ask for: the jurisdiction label value, the pools they may run on
    and the PriorityClasses they may name."""

    jurisdiction: str
    pools: tuple[str, ...]
    priority_classes: tuple[str, ...] = ()


def scope_of(factory: AIFactory, tenant: Tenant) -> TenantScope:
    """Pools whose classification the tenant is cleared for (an unclassified pool takes any work,
    as `check_pool_use` reads it) and whose GPU product it holds quota for."""
    levels = factory.spec.sovereignty.classification_levels
    rank = {level: i for i, level in enumerate(levels)}
    cleared = rank.get(tenant.clearance, -1)
    products = {q.product for q in tenant.gpu_quota if q.gpus > 0}
    pools = tuple(
        p.name
        for p in factory.spec.node_pools
        if p.gpu_product in products and 0 <= rank.get(p.classification or levels[0], -1) <= cleared
    )
    return TenantScope(factory.spec.sovereignty.jurisdiction, pools, tuple(tenant.priority_classes))


def required_terms(pod_spec: Obj) -> list[Obj]:
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    return list((affinity.get(REQUIRED) or {}).get("nodeSelectorTerms") or [])


def is_confined(pod_spec: Obj, key: str, allowed: tuple[str, ...]) -> bool:
    """Every node the pod can match carries `key` with one of the `allowed` values."""
    if (pod_spec.get("nodeSelector") or {}).get(key) in allowed:
        return True
    terms = required_terms(pod_spec)
    return bool(terms) and all(term_confines(t, key, allowed) for t in terms)


def term_confines(term: Obj, key: str, allowed: tuple[str, ...]) -> bool:
    return any(
        e.get("key") == key
        and e.get("operator") == "In"
        and bool(e.get("values"))
        and all(v in allowed for v in e.get("values") or [])
        for e in term.get("matchExpressions") or []
    )


def names_only_allowed_pools(pod_spec: Obj, pools: tuple[str, ...]) -> bool:
    """Every pool the spec names (nodeSelector, or an `In` of a required term) is one of `pools`."""
    selector = pod_spec.get("nodeSelector") or {}
    if LABEL_POOL in selector and selector[LABEL_POOL] not in pools:
        return False
    return all(
        all(v in pools for v in e.get("values") or [])
        for t in required_terms(pod_spec)
        for e in t.get("matchExpressions") or []
        if e.get("key") == LABEL_POOL and e.get("operator") == "In"
    )


def check_template_pools(obj: Obj, scope: TenantScope) -> list[Violation]:
    """Early word for a workload whose template names a pool its tenant may not use: its pods
    would all be refused."""
    located = find_pod_spec(obj)
    if located is None or obj.get("kind") == "Pod" or names_only_allowed_pools(located[0], scope.pools):
        return []
    return [
        Violation(
            POOL,
            f"{located[1]}.nodeSelector",
            f"names a pool its tenant is not cleared for or holds no quota for; use one of"
            f" {', '.join(scope.pools) or 'none'}",
        )
    ]


def check_placement(pod: Obj, scope: TenantScope) -> list[Violation]:
    """A Pod that is not confined to the jurisdiction and the tenant's pools (other kinds are
    judged at their pods, so any kind that carries a pod template is covered; a template that
    names a pool outside is refused early)."""
    if pod.get("kind") != "Pod":
        return check_template_pools(pod, scope)
    spec = pod.get("spec") or {}
    found = []
    if not is_confined(spec, LABEL_JURISDICTION, (scope.jurisdiction,)):
        found.append(
            Violation(
                JURISDICTION,
                "spec.nodeSelector",
                f"the pod must run inside jurisdiction {scope.jurisdiction}; set nodeSelector"
                f" {LABEL_JURISDICTION}: {scope.jurisdiction} (the operator adds it when it is running)",
            )
        )
    if not is_confined(spec, LABEL_POOL, scope.pools):
        pools = ", ".join(scope.pools) or "none: the tenant has no cleared pool with GPU quota"
        found.append(
            Violation(
                POOL,
                "spec.nodeSelector",
                f"the pod must run on a pool its tenant is cleared for and holds quota for ({pools});"
                f" set nodeSelector {LABEL_POOL} to one of them (the operator adds it when it is running)",
            )
        )
    return found


def place(pod_spec: Obj, scope: TenantScope) -> Obj:
    """The pod spec confined to the scope, adding only what is missing: the jurisdiction as a
    nodeSelector; the pools as a nodeSelector when there is one, otherwise as an `In` on every
    required term (a new term when there are none). A value the author set is never changed: if
    it is outside the scope, the pods policy refuses the pod and says why."""
    placed = dict(pod_spec)
    selector = dict(pod_spec.get("nodeSelector") or {})
    if LABEL_JURISDICTION not in selector:
        selector[LABEL_JURISDICTION] = scope.jurisdiction
    if not is_confined(pod_spec, LABEL_POOL, scope.pools) and scope.pools:
        if len(scope.pools) == 1 and LABEL_POOL not in selector:
            selector[LABEL_POOL] = scope.pools[0]
        elif LABEL_POOL not in selector:
            placed["affinity"] = with_pool_terms(pod_spec, scope.pools)
    if selector:
        placed["nodeSelector"] = selector
    return placed


def with_pool_terms(pod_spec: Obj, pools: tuple[str, ...]) -> Obj:
    """The pod's affinity with `pool In pools` ANDed into each required term."""
    requirement = {"key": LABEL_POOL, "operator": "In", "values": list(pools)}
    terms = [
        {**t, "matchExpressions": [*(t.get("matchExpressions") or []), requirement]}
        for t in required_terms(pod_spec) or [{}]
    ]
    affinity = dict(pod_spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    node_affinity[REQUIRED] = {"nodeSelectorTerms": terms}
    affinity["nodeAffinity"] = node_affinity
    return affinity
