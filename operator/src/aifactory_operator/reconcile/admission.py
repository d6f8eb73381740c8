"""Gang admission: which queued training jobs get which nodes, all or nothing (pure).

One decision per factory over the whole queue: priority first, then age; a job is admitted only
when every worker gets a node with enough free GPUs at once and its tenant's quota for the GPU
product allows it. Jobs that fit may backfill past a head job that does not, until the head has
waited `starvation_seconds`; from then on nothing behind it in its pool is admitted, so the
capacity it needs frees up.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

LEVEL_WORDS = {"nvlinkDomain": "NVLink domain", "rack": "rack"}


@dataclass(frozen=True)
class NodeSlot:
    """A ready, schedulable node of a pool, with the GPUs nobody has reserved."""

    name: str
    pool: str
    free: int
    domains: dict[str, str] = field(default_factory=dict)  # level -> domain name


@dataclass(frozen=True)
class Request:
    """A queued job, as admission sees it."""

    key: str
    tenant: str
    pool: str
    product: str
    nodes: int
    gpus_per_node: int
    priority: int = 0
    created: str = ""
    waiting_since: datetime | None = None
    topology_mode: str = "none"
    topology_level: str = "rack"

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True)
class Grant:
    """The nodes an admitted job gets, one per worker, and the domains they span."""

    nodes: list[str]
    domains: list[str]


@dataclass
class Decision:
    admitted: dict[str, Grant] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # key -> why
    positions: dict[str, int] = field(default_factory=dict)  # key -> 1-based queue position


def queue_order(requests: list[Request]) -> list[Request]:
    """Higher priority first, then older first; the key breaks ties so the order is total."""
    return sorted(requests, key=lambda r: (-r.priority, r.created, r.key))


def admit(
    requests: list[Request],
    nodes: list[NodeSlot],
    quota_left: dict[tuple[str, str], int],
    *,
    now: datetime,
    starvation_seconds: float,
) -> Decision:
    """Admits what fits, in queue order, and says for every other job why it waits."""
    free = {n.name: n.free for n in nodes}
    by_pool: dict[str, list[NodeSlot]] = defaultdict(list)
    for node in nodes:
        by_pool[node.pool].append(node)
    quota = dict(quota_left)
    blocked: dict[str, str] = {}  # pool -> the starved head job blocking backfill there
    decision = Decision()
    position = 0
    for request in queue_order(requests):
        if request.pool in blocked:
            decision.waiting[request.key] = (
                f"waiting behind {blocked[request.pool]}, which has waited longest"
            )
        elif quota.get((request.tenant, request.product), 0) < request.gpus:
            left = quota.get((request.tenant, request.product), 0)
            decision.waiting[request.key] = (
                f"waiting for quota: tenant '{request.tenant}' has {left} {request.product} GPUs left"
                f" and the job needs {request.gpus}"
            )
        elif grant := place(request, by_pool[request.pool], free):
            for name in grant.nodes:
                free[name] -= request.gpus_per_node
            quota[(request.tenant, request.product)] -= request.gpus
            decision.admitted[request.key] = grant
            continue
        else:
            decision.waiting[request.key] = explain_capacity(request, by_pool[request.pool], free)
            waited = (now - request.waiting_since).total_seconds() if request.waiting_since else 0.0
            if waited >= starvation_seconds:
                blocked[request.pool] = request.key
        position += 1
        decision.positions[request.key] = position
    return decision


def place(request: Request, pool_nodes: list[NodeSlot], free: dict[str, int]) -> Grant | None:
    """Nodes for every worker, or None. Tightest fit first, so that large free blocks stay whole."""
    fitting = [n for n in pool_nodes if free[n.name] >= request.gpus_per_node]
    if len(fitting) < request.nodes:
        return None
    level = request.topology_level
    if request.topology_mode == "none":
        return _grant(_best_fit(fitting, free)[: request.nodes], level)
    groups = _group(fitting, level)
    whole = [nodes for nodes in groups.values() if len(nodes) >= request.nodes]
    if whole:
        tightest = min(
            whole, key=lambda ns: (len(ns), sum(free[n.name] for n in ns), ns[0].domains.get(level, ""))
        )
        return _grant(_best_fit(tightest, free)[: request.nodes], level)
    if request.topology_mode == "required":
        return None
    # Preferred: as few domains as possible, so take the domains with the most fitting nodes first.
    chosen: list[NodeSlot] = []
    for nodes in sorted(groups.values(), key=lambda ns: (-len(ns), ns[0].domains.get(level, ""))):
        chosen.extend(_best_fit(nodes, free)[: request.nodes - len(chosen)])
        if len(chosen) == request.nodes:
            break
    return _grant(chosen, level)


def explain_capacity(request: Request, pool_nodes: list[NodeSlot], free: dict[str, int]) -> str:
    """A sentence for status.reason, e.g. waiting for 16 H100 GPUs in one rack; largest free block has 8."""
    fitting = [n for n in pool_nodes if free[n.name] >= request.gpus_per_node]
    shape = f"{request.gpus} {request.product} GPUs ({request.nodes} x {request.gpus_per_node})"
    if request.topology_mode == "required":
        largest = max((len(ns) for ns in _group(fitting, request.topology_level).values()), default=0)
        word = LEVEL_WORDS.get(request.topology_level, request.topology_level)
        return f"waiting for {shape} in one {word}; largest free block has {largest * request.gpus_per_node}"
    return (
        f"waiting for {shape}; {len(fitting)} nodes of pool '{request.pool}' have"
        f" {request.gpus_per_node} GPUs free"
    )


def _group(nodes: list[NodeSlot], level: str) -> dict[str, list[NodeSlot]]:
    groups: dict[str, list[NodeSlot]] = defaultdict(list)
    for node in nodes:
        groups[node.domains.get(level, node.name)].append(node)
    return groups


def _best_fit(nodes: list[NodeSlot], free: dict[str, int]) -> list[NodeSlot]:
    return sorted(nodes, key=lambda n: (free[n.name], n.name))


def _grant(nodes: list[NodeSlot], level: str) -> Grant:
    return Grant(nodes=[n.name for n in nodes], domains=sorted({n.domains.get(level, n.name) for n in nodes}))
