"""Gang admission: which queued training jobs get which nodes, all or nothing (pure).

One decision per factory over the whole queue: priority first, then age; a job is admitted only
when every worker gets a node with enough free GPUs at once and its tenant's quota for the GPU
product allows it. Jobs that fit may backfill past a head job that does not, until the head has
waited `starvation_seconds`; from then on nothing behind it in its pool is admitted, so the
capacity it needs frees up.

A decision admits at most `max_admissions` jobs: what it admits is written before the next decision,
and ten thousand admissions at once would hold every Running report behind tens of thousands of
writes (and ten thousand Job manifests in memory). The jobs past the limit keep their place for the
next one.
"""

import bisect
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice

from .quota_book import QuotaBook
from .resources import FrozenAmounts, short_of
from .topology_index import DomainIndex

LEVEL_WORDS = {"nvlinkDomain": "NVLink domain", "rack": "rack"}


@dataclass(frozen=True)
class NodeSlot:
    """A ready, schedulable node of a pool, with the GPUs nobody has reserved."""

    name: str
    pool: str
    free: int
    domains: dict[str, str] = field(default_factory=dict)  # level -> domain name
    spare: FrozenAmounts = ()  # every other resource left free (CPU, memory, ...), scaled


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
    worker: FrozenAmounts = ()  # what one worker needs besides GPUs, scaled
    preemptible: bool = True  # False: never a victim, and never on borrowed quota

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


# What decides whether a job fits: pool, GPUs per node, nodes, topology mode and level, worker.
Shape = tuple[str, int, int, str, str, FrozenAmounts]


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
    causes: dict[str, str] = field(default_factory=dict)  # key -> behind | quota | capped | capacity
    capped: bool = False  # stopped at max_admissions: the next decision may admit more at once

    def wait(self, key: str, why: str, cause: str) -> None:
        self.waiting[key], self.causes[key] = why, cause


def queue_order(requests: list[Request]) -> list[Request]:
    """Higher priority first, then older first; the key breaks ties so the order is total."""
    return sorted(requests, key=lambda r: (-r.priority, r.created, r.key))


class FreeGPUs:
    """Free GPUs per node, and per pool the node names bucketed by how many GPUs they have free
    (each bucket sorted): best fit and "how many nodes fit" without scanning the pool for every job
    of a deep queue. Per pool and topology level asked for, a DomainIndex does the same for domains."""

    def __init__(self, nodes: list[NodeSlot]) -> None:
        self.free = {n.name: n.free for n in nodes}
        self.spare = {n.name: dict(n.spare) for n in nodes}
        self.slots = {n.name: n for n in nodes}
        self.buckets: dict[str, dict[int, list[str]]] = defaultdict(dict)
        for node in sorted(nodes, key=lambda n: n.name):
            self.buckets[node.pool].setdefault(node.free, []).append(node.name)
        self.indexes: dict[str, dict[str, DomainIndex]] = defaultdict(dict)  # pool -> level -> index

    def domains(self, pool: str, level: str) -> DomainIndex:
        """The pool's nodes grouped by domain at `level`, built on first use: most decisions ask
        for one or two levels of a few pools."""
        if level not in self.indexes[pool]:
            names = [name for bucket in self.buckets[pool].values() for name in bucket]
            domain_of = {name: self.slots[name].domains.get(level, name) for name in names}
            label_of = {name: self.slots[name].domains.get(level, "") for name in names}
            self.indexes[pool][level] = DomainIndex(self.free, domain_of, label_of)
        return self.indexes[pool][level]

    def count(self, pool: str, gpus: int) -> int:
        return sum(len(names) for level, names in self.buckets[pool].items() if level >= gpus)

    def best_fit(self, pool: str, gpus: int) -> Iterator[NodeSlot]:
        """Nodes with room for `gpus`, those with the least room first, then by name."""
        buckets = self.buckets[pool]
        for level in sorted(level for level in buckets if level >= gpus):
            for name in buckets[level]:
                yield self.slots[name]

    def has_spare(self, name: str, worker: FrozenAmounts) -> bool:
        """Room on the node for a worker's CPU, memory and other resources (GPUs aside)."""
        spare = self.spare[name]
        return all(spare.get(resource, 0) >= amount for resource, amount in worker)

    def shortages(self, names: list[str], worker: FrozenAmounts) -> list[str]:
        """Every resource (GPUs aside) some of `names` have too little of for one more worker."""
        need = dict(worker)
        return sorted({resource for name in names for resource in short_of(need, self.spare[name])})

    def take(self, name: str, gpus: int, worker: FrozenAmounts = ()) -> None:
        spare = self.spare[name]
        for resource, amount in worker:
            spare[resource] = spare.get(resource, 0) - amount
        pool, before = self.slots[name].pool, self.free[name]
        names = self.buckets[pool][before]
        del names[bisect.bisect_left(names, name)]
        if not names:
            del self.buckets[pool][before]
        self.free[name] = before - gpus
        bisect.insort(self.buckets[pool].setdefault(before - gpus, []), name)
        for index in self.indexes[pool].values():
            index.move(name, before)


def admit(
    requests: list[Request],
    nodes: list[NodeSlot],
    quota_left: dict[tuple[str, str], int] | QuotaBook,
    *,
    now: datetime,
    starvation_seconds: float,
    max_admissions: int | None = None,
    fairness: "Fairness | None" = None,
) -> Decision:
    """Admits what fits, in queue order, and says for every other job why it waits. `quota_left` is
    a QuotaBook (borrowing and lending, quota_book.py) or what each (tenant, product) has left."""
    free = FreeGPUs(nodes)
    quota = quota_left.copy() if isinstance(quota_left, QuotaBook) else QuotaBook.plain(quota_left)
    blocked: dict[str, str] = {}  # pool -> the starved head job blocking backfill there
    # Free GPUs only shrink during a decision, so a shape that did not fit will not fit later;
    # its explanation (every part of which the shape fixes) holds until the next admission.
    unplaceable: dict[Shape, tuple[int, str]] = {}
    fitting: set[Shape] = set()  # shapes that fit once the decision is capped
    full = f"fits; admitted by the next decision (this one admitted {max_admissions}, its limit)"
    decision = Decision()
    position = 0
    fairness = replace(fairness, used=dict(fairness.used)) if fairness else None  # shares grow on a copy
    order = fair_order(requests, fairness) if fairness else iter(queue_order(requests))
    for request in requests:  # queued work keeps its tenant's idle share from being lent
        quota.want((request.tenant, request.product), request.gpus)
    for request in order:
        shape = shape_of(request)  # one that failed stays failed until a grant
        if request.pool in blocked:
            why = f"waiting behind {blocked[request.pool]}, which has waited longest"
            decision.wait(request.key, why, "behind")
        elif quota.room((request.tenant, request.product), request.preemptible) < request.gpus:
            why = quota.explain((request.tenant, request.product), request.gpus, request.preemptible)
            decision.wait(request.key, why, "quota")
        elif shape in fitting or (decision.capped and shape not in unplaceable and place(request, free)):
            fitting.add(shape)  # nothing is taken once capped, so the shape keeps fitting
            decision.wait(request.key, full, "capped")
        elif shape not in unplaceable and (grant := place(request, free)):
            for name in grant.nodes:
                free.take(name, request.gpus_per_node, request.worker)
            quota.take((request.tenant, request.product), request.gpus)
            if fairness:
                fairness.took(request)
            decision.admitted[request.key] = grant
            decision.capped = max_admissions is not None and len(decision.admitted) >= max_admissions
            continue
        else:
            admitted = len(decision.admitted)
            if unplaceable.get(shape, (-1, ""))[0] != admitted:
                unplaceable[shape] = (admitted, explain_capacity(request, free))
            decision.wait(request.key, unplaceable[shape][1], "capacity")
            waited = (now - request.waiting_since).total_seconds() if request.waiting_since else 0.0
            if waited >= starvation_seconds:
                blocked[request.pool] = request.key
        position += 1
        decision.positions[request.key] = position
    return decision


def shape_of(request: Request) -> Shape:
    return (
        request.pool,
        request.gpus_per_node,
        request.nodes,
        request.topology_mode,
        request.topology_level,
        request.worker,
    )


def place(request: Request, free: FreeGPUs) -> Grant | None:
    """Nodes for every worker, or None. Tightest fit first, so that large free blocks stay whole.
    The GPU indexes find the nodes; a node short of CPU, memory or another resource the worker needs
    is then passed over (rare: pools are sized so GPUs run out first), by a plain scan when the
    indexed choice holds such a node."""
    if free.count(request.pool, request.gpus_per_node) < request.nodes:
        return None
    level = request.topology_level
    if request.topology_mode == "none":
        fitting = (
            s
            for s in free.best_fit(request.pool, request.gpus_per_node)
            if free.has_spare(s.name, request.worker)
        )
        chosen = list(islice(fitting, request.nodes))
        return _grant(chosen, level) if len(chosen) == request.nodes else None
    domains = free.domains(request.pool, level)
    names = domains.whole_domain(request.gpus_per_node, request.nodes)
    if names is None and request.topology_mode == "required":
        return None
    if names is None:
        # Preferred: one domain of the level above (an NVLink-domain gang within one rack), else
        # as few domains as possible, so the domains with the most fitting nodes first.
        names = _within_one_above(request, free) or domains.fewest_domains(
            request.gpus_per_node, request.nodes
        )
    if not all(free.has_spare(name, request.worker) for name in names):
        return _place_scanning(request, free)
    return _grant([free.slots[name] for name in names], level)


# The level a preferred gang that fits in no single domain of its level is kept within next.
LEVEL_ABOVE = {"nvlinkDomain": "rack"}


def _within_one_above(request: Request, free: FreeGPUs) -> list[str] | None:
    """Nodes in the tightest single domain of the level above that holds the gang, filling its
    domains of the gang's level most fitting first; None when no domain above holds it. Kueue's
    placement climbs a level the same way, and kept more preferred gangs together than ours
    (bench/training_quality.py, peer: Kueue)."""
    above = LEVEL_ABOVE.get(request.topology_level)
    if above is None:
        return None
    outer = free.domains(request.pool, above)
    names = outer.whole_domain(request.gpus_per_node, request.nodes)
    if names is None:
        return None
    every = outer.fitting_nodes(outer.domain_of[names[0]], request.gpus_per_node, len(outer.domain_of))
    by_domain: dict[str, list[str]] = defaultdict(list)
    for name in every:
        by_domain[free.slots[name].domains.get(request.topology_level, name)].append(name)
    chosen: list[str] = []
    level = request.topology_level
    for domain in sorted(
        by_domain, key=lambda d: (-len(by_domain[d]), free.slots[by_domain[d][0]].domains.get(level, ""))
    ):
        chosen.extend(by_domain[domain][: request.nodes - len(chosen)])
    return chosen


def _place_scanning(request: Request, free: FreeGPUs) -> Grant | None:
    """Topology placement over the nodes that fit in every resource, by scanning the pool: the same
    choice as the indexes (tightest whole domain, else the domains with most fitting nodes)."""
    level = request.topology_level
    by_domain: dict[str, list[NodeSlot]] = defaultdict(list)
    for slot in free.best_fit(request.pool, request.gpus_per_node):
        if free.has_spare(slot.name, request.worker):
            by_domain[slot.domains.get(level, slot.name)].append(slot)
    whole = [d for d, slots in by_domain.items() if len(slots) >= request.nodes]
    if whole:
        tightest = min(
            whole, key=lambda d: (len(by_domain[d]), sum(free.free[s.name] for s in by_domain[d]), d)
        )
        return _grant(by_domain[tightest][: request.nodes], level)
    if request.topology_mode == "required" or sum(map(len, by_domain.values())) < request.nodes:
        return None
    chosen: list[NodeSlot] = []
    for domain in sorted(by_domain, key=lambda d: (-len(by_domain[d]), d)):
        chosen.extend(by_domain[domain][: request.nodes - len(chosen)])
    return _grant(chosen, level)


def explain_capacity(request: Request, free: FreeGPUs) -> str:
    """A sentence for status.reason, e.g. waiting for 16 H100 GPUs in one rack; largest free block has 8."""
    shape = f"{request.gpus} {request.product} GPUs ({request.nodes} x {request.gpus_per_node})"
    if request.topology_mode == "required":
        largest = free.domains(request.pool, request.topology_level).largest_block(request.gpus_per_node)
        word = LEVEL_WORDS.get(request.topology_level, request.topology_level)
        return f"waiting for {shape} in one {word}; largest free block has {largest * request.gpus_per_node}"
    with_gpus = [slot.name for slot in free.best_fit(request.pool, request.gpus_per_node)]
    told = (
        f"waiting for {shape}; {len(with_gpus)} nodes of pool '{request.pool}' have"
        f" {request.gpus_per_node} GPUs free"
    )
    short = free.shortages(with_gpus, request.worker)
    if not short:
        return told
    fitting = sum(1 for name in with_gpus if free.has_spare(name, request.worker))
    return f"{told}, {fitting} of them with the {' and '.join(short)} a worker requests"


def _grant(nodes: list[NodeSlot], level: str) -> Grant:
    return Grant(nodes=[n.name for n in nodes], domains=sorted({n.domains.get(level, n.name) for n in nodes}))


@dataclass
class Fairness:
    """Fair sharing between tenants of equal priority: the next job is the oldest of the tenant
    with the lowest weighted dominant share, its GPUs in use per product over the product's total
    nominal quota, divided by its weight (1 when not listed). Shares grow as the decision admits."""

    weights: dict[str, float]
    used: dict[tuple[str, str], int]  # (tenant, product) -> GPUs held
    totals: dict[str, int]  # product -> the tenants' nominal quotas together

    def share(self, tenant: str) -> float:
        dominant = max(
            (
                gpus / max(self.totals.get(product, 0), 1)
                for (t, product), gpus in self.used.items()
                if t == tenant
            ),
            default=0.0,
        )
        return dominant / self.weights.get(tenant, 1.0)

    def took(self, request: Request) -> None:
        key = (request.tenant, request.product)
        self.used[key] = self.used.get(key, 0) + request.gpus


def _turn(fairness: Fairness, tenant: str, head: Request) -> tuple[float, float, str, str]:
    """Lowest weighted share first; on a tie the heavier tenant, then the older job."""
    return (fairness.share(tenant), -fairness.weights.get(tenant, 1.0), head.created, head.key)


def fair_order(requests: list[Request], fairness: Fairness) -> Iterator[Request]:
    """Priority first; within a priority, tenant by tenant by weighted share, the heavier tenant on
    a tie (oldest job of the tenant first). Reads the shares afresh for every pick, so what the
    caller admits (and reports with fairness.took) moves its tenant back."""
    by_priority: dict[int, dict[str, list[Request]]] = defaultdict(lambda: defaultdict(list))
    for request in reversed(queue_order(requests)):
        by_priority[request.priority][request.tenant].append(request)  # oldest last: pop() is O(1)
    for priority in sorted(by_priority, reverse=True):
        queues = by_priority[priority]
        while queues:
            tenant = min(queues, key=lambda t: _turn(fairness, t, queues[t][-1]))
            yield queues[tenant].pop()
            if not queues[tenant]:
                del queues[tenant]
