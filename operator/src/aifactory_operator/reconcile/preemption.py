"""Preemption: which running gangs a queued job may stop, and the fewest it needs (pure).

The rules every chosen victim satisfies, stated positively (docs/sharing.md#preemption):
- it is preemptible, of the same GPU product, and its current attempt was admitted at least
  `min_runtime_seconds` ago;
- of the job's own tenant: the factory allows preemption within tenants and the victim's priority
  is lower than the job's;
- of another tenant: the factory allows reclaim, the job fits its own tenant's nominal quota (it
  takes back what it lent, it does not borrow), the victim's priority is lower unless reclaim is
  Any, and what the job takes from that tenant is at most what the tenant borrows: nobody is taken
  below its own share for another's benefit.

A victim set is the first that lets the job fit (quota and nodes) when its candidates are added
lowest priority first (a stopped gang of middling priority would stop the next one down in turn),
then fewest GPUs, then youngest; then every victim whose release the job does not need is dropped
again, so no victim can be spared (the set is minimal by inclusion).
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from ..constants import GPU_RESOURCE
from .admission import FreeGPUs, Grant, NodeSlot, Request, place
from .quota_book import QuotaBook
from .resources import SCALE, Amounts, FrozenAmounts, freeze

WITHIN_TENANT = "WithinTenant"
RECLAIM = "Reclaim"


@dataclass(frozen=True)
class Policy:
    within_tenant: str = "Never"  # Never | LowerPriority
    reclaim: str = "Never"  # Never | LowerPriority | Any
    min_runtime_seconds: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.within_tenant != "Never" or self.reclaim != "Never"


@dataclass(frozen=True)
class Gang:
    """A gang holding nodes now: a candidate victim."""

    key: str
    tenant: str
    product: str
    pool: str
    priority: int
    nodes: tuple[str, ...]
    gpus_per_node: int
    worker: FrozenAmounts = ()  # what one worker needs besides GPUs, scaled
    admitted: datetime | None = None  # its current attempt's admission; None: unknown, so protected
    preemptible: bool = True

    @property
    def gpus(self) -> int:
        return len(self.nodes) * self.gpus_per_node


@dataclass(frozen=True)
class Preemption:
    """A queued job, the gangs it stops, and why each may be stopped."""

    preemptor: Request
    victims: tuple[tuple[Gang, str], ...]  # (victim, WITHIN_TENANT or RECLAIM)

    def victim_message(self, victim: Gang, rule: str) -> str:
        r = self.preemptor
        if rule == RECLAIM:
            return (
                f"preempted by {r.key} (tenant '{r.tenant}') to reclaim {r.gpus} {r.product} GPUs"
                f" it lent to tenant '{victim.tenant}'"
            )
        return f"preempted by {r.key} (priority {r.priority} over {victim.priority}) of the same tenant"

    def preemptor_message(self) -> str:
        names = ", ".join(v.key for v, _ in self.victims)
        freed = sum(v.gpus for v, _ in self.victims)
        return f"preempting {names} ({freed} {self.preemptor.product} GPUs) to start"


def rule_for(request: Request, gang: Gang, policy: Policy, now: datetime) -> str | None:
    """Why `gang` may be stopped for `request` on its own; None when it may not."""
    if not gang.preemptible or gang.key == request.key or gang.product != request.product:
        return None
    if gang.admitted is None or (now - gang.admitted).total_seconds() < policy.min_runtime_seconds:
        return None
    if gang.tenant == request.tenant:
        lower = gang.priority < request.priority
        return WITHIN_TENANT if policy.within_tenant == "LowerPriority" and lower else None
    if policy.reclaim == "Any" or (policy.reclaim == "LowerPriority" and gang.priority < request.priority):
        return RECLAIM
    return None


def try_place(
    request: Request, slots: dict[str, NodeSlot], quota: QuotaBook, victims: Iterable[Gang]
) -> Grant | None:
    """The job's nodes once `victims` are gone, or None: quota first, then placement."""
    book = quota.copy()
    freed: dict[str, list[Gang]] = {}
    for victim in victims:
        book.give_back((victim.tenant, victim.product), victim.gpus)
        for node in victim.nodes:
            freed.setdefault(node, []).append(victim)
    if book.room((request.tenant, request.product), request.preemptible) < request.gpus:
        return None
    pool = [_released(slot, freed.get(name, ())) for name, slot in slots.items() if slot.pool == request.pool]
    return place(request, FreeGPUs(pool))


def _released(slot: NodeSlot, gangs: Iterable[Gang]) -> NodeSlot:
    gangs = list(gangs)
    if not gangs:
        return slot
    spare = dict(slot.spare)
    for gang in gangs:
        for resource, amount in gang.worker:
            spare[resource] = spare.get(resource, 0) + amount
    return replace(slot, free=slot.free + sum(g.gpus_per_node for g in gangs), spare=freeze(spare))


def choose_victims(
    request: Request,
    gangs: list[Gang],
    slots: dict[str, NodeSlot],
    quota: QuotaBook,
    policy: Policy,
    now: datetime,
) -> tuple[tuple[Gang, str], ...] | None:
    """The fewest gangs to stop so that `request` fits, or None when no allowed set makes it fit."""
    key = (request.tenant, request.product)
    reclaiming = quota.left(key) >= request.gpus  # within its own share: it takes back, never borrows
    rules = {g.key: rule for g in gangs if (rule := rule_for(request, g, policy, now))}
    candidates = [g for g in gangs if g.key in rules and (reclaiming or rules[g.key] != RECLAIM)]
    # Lowest priority first, so a victim is not one that would in turn preempt the next gang down.
    candidates.sort(key=lambda g: (g.priority, g.gpus, -(g.admitted or now).timestamp(), g.key))
    budget = {t: quota.borrowed((t, request.product)) for t in {g.tenant for g in candidates}}
    chosen: list[Gang] = []
    for gang in candidates:
        if rules[gang.key] == RECLAIM:
            if budget[gang.tenant] < gang.gpus:
                continue  # stopping it would take its tenant below its share
            budget[gang.tenant] -= gang.gpus
        chosen.append(gang)
        if try_place(request, slots, quota, chosen):
            break
    else:
        return None
    for gang in reversed(list(chosen)):
        rest = [g for g in chosen if g is not gang]
        if try_place(request, slots, quota, rest):
            chosen = rest
    return tuple((g, rules[g.key]) for g in chosen)


def may_preempt(waiting: list[Request], gangs: list[Gang], quota: QuotaBook, policy: Policy) -> list[Request]:
    """The waiting jobs (in the order given) that some allowed victim could exist for: a gang of
    their tenant of lower priority, or, for a job within its tenant's share, another tenant that
    borrows. The rest are skipped, so a deep queue of jobs that cannot preempt (a borrower's) does
    not hide the lender behind it that can reclaim."""
    lowest: dict[tuple[str, str], int] = {}
    for gang in gangs:
        if gang.preemptible:
            key = (gang.tenant, gang.product)
            lowest[key] = min(lowest.get(key, gang.priority), gang.priority)
    borrowing = {g.product for g in gangs if quota.borrowed((g.tenant, g.product)) > 0}

    def could(request: Request) -> bool:
        key = (request.tenant, request.product)
        if policy.within_tenant != "Never" and lowest.get(key, request.priority) < request.priority:
            return True
        reclaiming = quota.left(key) >= request.gpus and request.product in borrowing
        return policy.reclaim != "Never" and reclaiming

    return [r for r in waiting if could(r)]


@dataclass
class PreemptionPlan:
    preemptions: list[Preemption]
    releasing: dict[str, str]  # job key -> why it waits: what it needs is being released


def plan_preemptions(
    waiting: list[Request],
    gangs: list[Gang],
    slots: list[NodeSlot],
    releasing: dict[str, Amounts],
    quota: QuotaBook,
    policy: Policy,
    now: datetime,
    limit: int = 16,
) -> PreemptionPlan:
    """For the waiting jobs in queue order: a job that will fit once the GPUs already being
    released (pods of stopped gangs, still terminating) are free waits for them (and is told so
    when it would not fit without them); otherwise it preempts the fewest allowed gangs. Each
    job's nodes are then set aside, so the next job neither counts on them nor stops more gangs
    for capacity already promised."""
    plan = PreemptionPlan([], {})
    free = {s.name: _plus(s, releasing.get(s.name, {})) for s in slots}
    book, left = quota.copy(), list(gangs)
    for request in waiting:  # as in admit(): queued work keeps its tenant's idle share from lending
        book.want((request.tenant, request.product), request.gpus)
    for request in waiting:
        if len(plan.preemptions) >= limit:
            break
        grant = try_place(request, free, book, ())
        victims: tuple[tuple[Gang, str], ...] = ()
        if grant is not None and _needs_releasing(request, free, releasing, book):
            plan.releasing[request.key] = (
                f"waiting for {request.gpus} {request.product} GPUs that stopped gangs are releasing"
                " (their workers have the factory's gracePeriodSeconds to checkpoint)"
            )
        elif policy.enabled and (victims := choose_victims(request, left, free, book, policy, now) or ()):
            gone = [g for g, _ in victims]
            for gang in gone:
                book.give_back((gang.tenant, gang.product), gang.gpus)
            free = {n: _released(s, [g for g in gone if n in g.nodes]) for n, s in free.items()}
            left = [g for g in left if all(g.key != v.key for v in gone)]
            grant = try_place(request, free, book, ())
            plan.preemptions.append(Preemption(request, victims))
        if grant is not None:
            _set_aside(free, grant, request)
            book.take((request.tenant, request.product), request.gpus)
    return plan


def _needs_releasing(
    request: Request, free: dict[str, NodeSlot], releasing: dict[str, Amounts], book: QuotaBook
) -> bool:
    """The job fits only with what terminating pods still hold: without it, it would not be
    waiting for them (admission and this step saw the cluster a moment apart)."""
    now = {n: _plus(s, releasing.get(n, {}), sign=-1) for n, s in free.items()}
    return try_place(request, now, book, ()) is None


def _plus(slot: NodeSlot, freed: Amounts, sign: int = 1) -> NodeSlot:
    """The node once pods requesting `freed` (scaled, GPUs included) are gone (sign -1: the node
    while they still hold it)."""
    if not freed:
        return slot
    spare = dict(slot.spare)
    for resource, amount in freed.items():
        if resource != GPU_RESOURCE:
            spare[resource] = spare.get(resource, 0) + sign * amount
    gpus = sign * (freed.get(GPU_RESOURCE, 0) // SCALE)
    return replace(slot, free=slot.free + gpus, spare=freeze(spare))


def _set_aside(free: dict[str, NodeSlot], grant: Grant, request: Request) -> None:
    for name in grant.nodes:
        slot = free[name]
        spare = dict(slot.spare)
        for resource, amount in request.worker:
            spare[resource] = spare.get(resource, 0) - amount
        free[name] = replace(slot, free=slot.free - request.gpus_per_node, spare=freeze(spare))
