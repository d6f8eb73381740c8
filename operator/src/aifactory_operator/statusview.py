"""`aifactory status` as plain aligned tables (pure): objects as the API server returns them in, text out.

Every number comes from what the operator already reports (factory and workload status) or from the
objects themselves (node labels and allocatable GPUs, pods' GPU requests); nothing is recomputed
differently from the operator, so the tables and the metrics agree.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .api.v1alpha1.trainingjob import TrainingJobSpec
from .constants import LABEL_FACTORY, LABEL_NVLINK_DOMAIN, LABEL_POOL, LABEL_RACK
from .reconcile.nodepools import allocatable_gpus, is_node_ready, requested_gpus

Obj = dict[str, Any]
FINISHED = ("Succeeded", "Failed")
NONE = "(none)"
# What the API server stores when a TrainingJob leaves them out (the CRD's defaults).
DEFAULT_NODES = int(TrainingJobSpec.model_fields["nodes"].default)
DEFAULT_GPUS_PER_NODE = int(TrainingJobSpec.model_fields["gpus_per_node"].default)


@dataclass
class _Domain:
    """One topology domain's nodes and GPUs."""

    nodes_ready: int = 0
    nodes: int = 0
    gpus_allocatable: int = 0
    gpus_in_use: int = 0


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, two spaces apart, like kubectl get; "(none)" when empty."""
    if not rows:
        return NONE
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def format_factories(factories: list[Obj]) -> str:
    rows = [
        [
            _name(f),
            _ready(f),
            f"{_status(f).get('gpusReady', 0)}/{_status(f).get('gpusDesired', 0)}",
            _status(f).get("gpusInUse", 0),
            len(_spec(f).get("nodePools") or []),
            len(_spec(f).get("tenants") or []),
        ]
        for f in _by_name(factories)
    ]
    return format_table(["FACTORY", "READY", "GPUS READY/DESIRED", "GPUS IN USE", "POOLS", "TENANTS"], rows)


def format_pools(factories: list[Obj]) -> str:
    """One row per declared pool, with the numbers the operator wrote into status.pools."""
    rows = []
    for factory in _by_name(factories):
        reported = {p.get("name"): p for p in _status(factory).get("pools") or []}
        for pool in _spec(factory).get("nodePools") or []:
            seen = reported.get(pool["name"], {})
            rows.append(
                [
                    _name(factory),
                    pool["name"],
                    pool.get("gpuProduct", ""),
                    f"{seen.get('nodesReady', 0)}/{pool.get('nodes', 0)}",
                    seen.get("gpusAllocatable", 0),
                    seen.get("gpusInUse", 0),
                ]
            )
    headers = ["FACTORY", "POOL", "GPU PRODUCT", "NODES READY/DESIRED", "GPUS ALLOCATABLE", "GPUS IN USE"]
    return format_table(headers, rows)


def format_topology(nodes: list[Obj], pods: list[Obj]) -> str:
    """GPUs per topology domain (rack, then NVLink domain) of every factory node: allocatable on
    ready nodes, and requested by the pods bound to them."""
    in_use = gpus_by_node(pods)
    domains: dict[tuple[str, ...], _Domain] = defaultdict(_Domain)
    for node in nodes:
        labels = node["metadata"].get("labels") or {}
        if not labels.get(LABEL_FACTORY):
            continue
        keys = (LABEL_FACTORY, LABEL_POOL, LABEL_RACK, LABEL_NVLINK_DOMAIN)
        domain = domains[tuple(labels.get(k, "") for k in keys)]
        ready = is_node_ready(node)
        domain.nodes += 1
        domain.nodes_ready += int(ready)
        domain.gpus_allocatable += allocatable_gpus(node) if ready else 0
        domain.gpus_in_use += in_use.get(node["metadata"]["name"], 0)
    rows = [
        [*key, f"{d.nodes_ready}/{d.nodes}", d.gpus_allocatable, d.gpus_in_use]
        for key, d in sorted(domains.items())
    ]
    headers = ["FACTORY", "POOL", "RACK", "NVLINK DOMAIN", "NODES READY", "GPUS ALLOCATABLE", "GPUS IN USE"]
    return format_table(headers, rows)


def format_tenants(factories: list[Obj], jobs: list[Obj], endpoints: list[Obj]) -> str:
    """Quota per GPU product and what admitted TrainingJobs and ModelEndpoints hold of it."""
    held = gpus_held(factories, jobs, endpoints)
    rows = []
    for factory in _by_name(factories):
        for tenant in _spec(factory).get("tenants") or []:
            quota = {q["product"]: int(q.get("gpus", 0)) for q in tenant.get("gpuQuota") or []}
            used = held.get((_name(factory), tenant["name"]), {})
            for product in sorted(quota.keys() | used.keys()) or [""]:
                rows.append(
                    [
                        _name(factory),
                        tenant["name"],
                        ",".join(tenant.get("namespaces") or []),
                        product,
                        quota.get(product, 0),
                        used.get(product, 0),
                    ]
                )
    headers = ["FACTORY", "TENANT", "NAMESPACES", "GPU PRODUCT", "QUOTA", "IN USE"]
    return format_table(headers, rows)


def format_queue(jobs: list[Obj], now: datetime) -> str:
    """TrainingJobs not finished: queued ones first, in queue order, then the admitted and running."""
    live = [j for j in jobs if _status(j).get("phase") not in FINISHED]
    live.sort(key=lambda j: (_status(j).get("queuePosition") or 1_000_000_000, _key(j)))
    rows = [
        [
            _key(j),
            _status(j).get("phase") or "Pending",
            _status(j).get("queuePosition") or "-",
            _gang_gpus(j),
            _spec(j).get("priority", 0),
            format_age(j["metadata"].get("creationTimestamp"), now),
        ]
        for j in live
    ]
    return format_table(["TRAININGJOB", "PHASE", "QUEUE POSITION", "GPUS", "PRIORITY", "AGE"], rows)


def format_endpoints(endpoints: list[Obj]) -> str:
    rows = [
        [
            _key(e),
            f"{_status(e).get('readyReplicas', 0)}/{_status(e).get('desiredReplicas', 0)}",
            _status(e).get("url") or "-",
            _phase(e),
        ]
        for e in sorted(endpoints, key=_key)
    ]
    return format_table(["MODELENDPOINT", "READY/DESIRED", "URL", "PHASE"], rows)


def format_status(
    factories: list[Obj],
    nodes: list[Obj],
    pods: list[Obj],
    jobs: list[Obj],
    endpoints: list[Obj],
    *,
    now: datetime,
) -> str:
    """Every section of `aifactory status`, each under its title."""
    sections = [
        ("Factories", format_factories(factories)),
        ("Pools", format_pools(factories)),
        ("GPUs by topology domain", format_topology(nodes, pods)),
        ("Tenants", format_tenants(factories, jobs, endpoints)),
        ("Training queue", format_queue(jobs, now)),
        ("Model endpoints", format_endpoints(endpoints)),
    ]
    return "\n\n".join(f"{title}\n{table}" for title, table in sections) + "\n"


def gpus_by_node(pods: list[Obj]) -> dict[str, int]:
    """GPUs requested by the pods bound to each node that have not finished."""
    found: dict[str, int] = defaultdict(int)
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in FINISHED:
            found[node] += requested_gpus(pod.get("spec") or {})
    return found


def gpus_held(
    factories: list[Obj], jobs: list[Obj], endpoints: list[Obj]
) -> dict[tuple[str, str], dict[str, int]]:
    """(factory, tenant) -> GPU product -> GPUs held: placed TrainingJobs (nodes x gpusPerNode) and
    admitted ModelEndpoints (reservedGpus), as the operator's admission counts them."""
    owners: dict[str, tuple[str, str, dict[str, str]]] = {}
    for body in factories:
        products = {p["name"]: p.get("gpuProduct", "") for p in _spec(body).get("nodePools") or []}
        for tenant in _spec(body).get("tenants") or []:
            for namespace in tenant.get("namespaces") or []:
                owners[namespace] = (_name(body), tenant["name"], products)
    held: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    workloads = [(j, _job_gpus(j)) for j in jobs] + [
        (e, int(_status(e).get("reservedGpus", 0))) for e in endpoints
    ]
    for obj, gpus in workloads:
        owner = owners.get(obj["metadata"].get("namespace", ""))
        if owner and gpus:
            factory, tenant, products = owner
            held[(factory, tenant)][products.get(_spec(obj).get("pool", ""), "")] += gpus
    return held


def format_age(stamp: str | None, now: datetime) -> str:
    """kubectl's short ages: 45s, 12m, 3h, 5d."""
    if not stamp:
        return "-"
    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = max(int((now - created).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _job_gpus(job: Obj) -> int:
    """GPUs a TrainingJob holds: its whole gang while it has a placement."""
    if _status(job).get("phase") in FINISHED or not _status(job).get("placement"):
        return 0
    return _gang_gpus(job)


def _gang_gpus(job: Obj) -> int:
    spec = _spec(job)
    return int(spec.get("nodes", DEFAULT_NODES)) * int(spec.get("gpusPerNode", DEFAULT_GPUS_PER_NODE))


def _phase(obj: Obj) -> str:
    """Ready's reason when ready; otherwise Stalled's or Reconciling's reason, marked as such."""
    conditions = {c.get("type"): c for c in _status(obj).get("conditions") or []}
    if conditions.get("Ready", {}).get("status") == "True":
        return str(conditions["Ready"].get("reason") or "Ready")
    for type_ in ("Stalled", "Reconciling"):
        if conditions.get(type_, {}).get("status") == "True":
            return f"{type_}: {conditions[type_].get('reason', '')}"
    return "Pending"


def _ready(obj: Obj) -> str:
    conditions = {c.get("type"): c for c in _status(obj).get("conditions") or []}
    ready = conditions.get("Ready")
    if ready is None:
        return "Unknown"
    return "True" if ready.get("status") == "True" else f"False ({ready.get('reason', '')})"


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _by_name(objs: list[Obj]) -> list[Obj]:
    return sorted(objs, key=_name)


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _key(obj: Obj) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}
