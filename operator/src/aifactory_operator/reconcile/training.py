"""The TrainingJob life cycle of one factory, as one pure decision per tick: validate -> read each
attempt from its most durable record -> follow it -> check the books -> admit the queue ->
materialise. The protocol between decisions and writes is in docs/gang-admission.md."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from ..api.v1alpha1.aifactory import AIFactory, NodePool, Tenant
from ..api.v1alpha1.dataset import Dataset
from ..api.v1alpha1.modelendpoint import ModelEndpoint
from ..api.v1alpha1.trainingjob import Placement, Residency, TrainingJob, TrainingJobStatus
from ..constants import (
    GPU_RESOURCE,
    LABEL_FACTORY,
    LABEL_JURISDICTION,
    LABEL_NVLINK_DOMAIN,
    LABEL_POOL,
    LABEL_RACK,
    LABEL_REGION,
)
from ..policy.allow_lists import PRIORITY_CLASS, check_training_priority_class
from ..policy.data_use import DataUse, check_data_use, check_pool_use
from ..policy.violations import Violation
from . import training_lifecycle as life
from .admission import Decision, Fairness, NodeSlot, Request, admit, queue_order
from .conditions import Outcome
from .gang_invariants import UNSCHEDULABLE, Breach, check_overcommit, check_unschedulable, mismatch_breach
from .gang_protocol import (
    AttemptView,
    Decided,
    ProtocolMemory,
    decided_hold,
    is_mismatch,
    job_holds,
    recorded_placement,
    settled_decisions,
    view_attempt,
)
from .gang_views import BatchJob, UnschedulablePod
from .ledger import GangHold, Ledger, construct_ledger
from .nodepools import Node, PodOnNode, all_taints, is_node_ready
from .preemption import Gang, Policy, Preemption, may_preempt, plan_preemptions
from .quota_book import QuotaBook, Share
from .resources import Amounts, freeze, parse_amounts
from .serving import DeploymentView, Endpoint, endpoint_request
from .serving_admission import (
    endpoint_items,
    hold_replicas,
    replica_amounts,
    settle_endpoint,
    shed_borrowed_replicas,
)
from .training_objects import construct_job, construct_service, job_name, needs_service

__all__ = ["BatchJob", "TenantGpus", "TrainingConfig", "TrainingPlan", "key_of", "plan_training"]

Obj = dict[str, Any]
Status = TrainingJobStatus
LEVEL_LABELS = {"rack": LABEL_RACK, "nvlinkDomain": LABEL_NVLINK_DOMAIN}


@dataclass(frozen=True)
class TrainingConfig:
    starvation_seconds: float = 300.0
    backoff_seconds: float = 10.0
    backoff_max_seconds: float = 300.0
    admissions_per_tick: int | None = None  # None: no limit
    unschedulable_grace_seconds: float = 120.0


class TenantGpus(NamedTuple):
    """A tenant's quota for one GPU product, what admitted work holds, and how much of that is
    borrowed from other tenants' idle quota."""

    quota: int
    in_use: int
    borrowed: int = 0


@dataclass(frozen=True)
class Creation:
    """A gang Job to create: the durable record of an admission."""

    key: str
    obj: Obj
    decided: Decided
    admission: bool  # decided this tick: its status is written only once the Job exists


@dataclass
class TrainingPlan:
    apply: list[Obj] = field(default_factory=list)  # Services and endpoint children (applied)
    create: list[Creation] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)  # (namespace, Job name)
    # Job -> the job key whose status must be written first: an attempt is left in the status
    # before its Job goes, so a lost status write never lets a later tick recreate it.
    delete_after: dict[tuple[str, str], str] = field(default_factory=dict)
    statuses: dict[str, tuple[Obj, Outcome]] = field(default_factory=dict)  # key -> (status fields, outcome)
    breaches: list[Breach] = field(default_factory=list)
    # Keys whose memory the view has caught up with (gang_protocol.settled_decisions).
    settled_decisions: set[str] = field(default_factory=set)
    settled_writes: set[str] = field(default_factory=set)
    # What the tick decided, for the operator's metrics: jobs still Queued; seconds from creation for
    # each job admitted for the first time; (tenant, GPU product) -> quota and GPUs held after the tick.
    queued: int = 0
    first_admissions: dict[str, float] = field(default_factory=dict)
    tenant_gpus: dict[tuple[str, str], TenantGpus] = field(default_factory=dict)
    # Admission reached admissions_per_tick, so more may fit: decide again without waiting.
    capped: bool = False
    # Nodes newly quarantined by a gang-unschedulable repair, and until when (ProtocolMemory.quarantined).
    quarantine: dict[str, datetime] = field(default_factory=dict)
    # Gangs stopped for queued jobs: told (Event, audit, metric) once the victims' statuses land.
    preemptions: list[Preemption] = field(default_factory=list)


@dataclass
class _Tracked:
    job: TrainingJob
    tenant: Tenant | None
    pool: NodePool | None
    before: Status
    view: AttemptView
    observed: list[BatchJob]
    status: Status = field(default_factory=Status)
    refused: bool = False
    materialise: bool = False  # holds nodes by its status alone: its Job is to be created
    priority: int = 0  # spec.priority, or the value of its PriorityClass

    @property
    def key(self) -> str:
        return key_of(self.job)

    @property
    def active(self) -> bool:
        """The loop decides for it this tick (not refused, not seen through a stale view)."""
        return not self.refused and not self.view.stale


@dataclass
class _Books:
    ledger: Ledger
    slots: list[NodeSlot]
    holds: list[GangHold]
    quota: QuotaBook


def key_of(job: TrainingJob) -> str:
    return f"{job.namespace}/{job.name}"


def plan_training(
    factory: AIFactory,
    jobs: list[TrainingJob],
    batch_jobs: dict[str, list[BatchJob]],
    nodes: list[Node],
    pods: list[PodOnNode],
    datasets: dict[str, Dataset],
    *,
    now: datetime,
    config: TrainingConfig,
    endpoints: list[ModelEndpoint] | None = None,
    deployments: dict[str, DeploymentView] | None = None,
    memory: ProtocolMemory | None = None,
    unschedulable: dict[str, list[UnschedulablePod]] | None = None,
    priority_classes: dict[str, int] | None = None,
) -> TrainingPlan:
    """Every TrainingJob and ModelEndpoint of the factory, one step further, in one ledger;
    `batch_jobs`, `datasets`, `deployments` and `unschedulable` are keyed by namespace/name of
    their owner; `memory` is the loop's record of its own writes (gang_protocol.ProtocolMemory)."""
    plan = TrainingPlan()
    memory = memory if memory is not None else ProtocolMemory()
    tenants = {ns: t for t in factory.spec.tenants for ns in t.namespaces}
    pools = {p.name: p for p in factory.spec.node_pools}
    # Built once: a job that starts running records the labels of its nodes, and looking them up
    # in a fresh map per job was 10,000 jobs x 10,000 nodes when a whole queue started at once.
    labels = {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in nodes}
    tracked = [
        _follow(
            factory,
            job,
            tenants,
            pools,
            batch_jobs.get(key_of(job), []),
            datasets,
            memory,
            plan,
            now,
            config,
            labels,
            priority_classes or {},
        )
        for job in jobs
    ]
    serving = endpoint_items(
        factory, endpoints or [], deployments or {}, datasets, tenants, pools, plan.statuses
    )
    books = _account(factory, tracked, nodes, pods, serving)
    _repair(tracked, books, pods, unschedulable or {}, plan, now, config)
    books.slots = [s for s in books.slots if s.name not in _quarantined(memory, plan, now)]
    released = _releasing(tracked, pods, memory, serving)
    _admit_queue(factory, tracked, books, serving, plan, now, config, released)
    for t in tracked:
        if t.materialise and life.holds_nodes(t.status):
            _materialise(factory, t, plan, admission=False)
        if t.active:
            plan.statuses[t.key] = (life.status_fields(t.before, t.status), life.outcome(t.status))
    plan.queued = sum(1 for t in tracked if t.active and t.status.phase == life.Phase.QUEUED)
    seen = {t.key: (t.before.attempt, t.view.job is not None) for t in tracked}
    plan.settled_decisions, plan.settled_writes = settled_decisions(memory, seen)
    return plan


def _quarantined(memory: ProtocolMemory, plan: TrainingPlan, now: datetime) -> set[str]:
    """Nodes not offered to admission: a gang's worker stayed unschedulable there."""
    return {n for n, until in memory.quarantined.items() if until > now} | set(plan.quarantine)


def _follow(
    factory: AIFactory,
    job: TrainingJob,
    tenants: dict[str, Tenant],
    pools: dict[str, NodePool],
    observed: list[BatchJob],
    datasets: dict[str, Dataset],
    memory: ProtocolMemory,
    plan: TrainingPlan,
    now: datetime,
    config: TrainingConfig,
    labels: dict[str, dict[str, str]],
    priority_classes: dict[str, int],
) -> _Tracked:
    """One job one step further, from its attempt's most durable record."""
    key, before = key_of(job), job.status or Status()
    tenant, pool = tenants.get(job.namespace or ""), pools.get(job.spec.pool)
    view = view_attempt(job, before, observed, memory, key)
    tracked = _Tracked(job, tenant, pool, before, view, observed, status=before)
    tracked.priority = priority_classes.get(job.spec.priority_class_name or "", job.spec.priority)
    problems = find_problems(factory, job, tenant, pool, datasets)
    if tenant is not None:
        problems += priority_class_problems(job, tenant, priority_classes)
    if problems:
        tracked.refused = True
        status, outcome = life.refuse(before, problems)
        plan.statuses[key] = (life.status_fields(before, status), outcome)
        return tracked
    if view.stale:
        return tracked
    _delete_superseded(tracked, plan)
    tracked.status = _next_status(tracked, plan, now, config, labels, datasets)
    return tracked


def _delete_superseded(tracked: _Tracked, plan: TrainingPlan) -> None:
    """Jobs of attempts the stored status has moved past (kept once the job finished, for its logs)."""
    if life.is_finished(tracked.before):
        return
    uid = str(tracked.job.metadata.get("uid", ""))
    current = job_name(tracked.job, tracked.view.attempt)
    for batch in tracked.observed:
        if batch.name != current and batch.owner_uid in ("", uid) and batch.attempt < tracked.view.attempt:
            plan.delete.append((tracked.job.namespace or "", batch.name))


def _withdraw_job(tracked: _Tracked, plan: TrainingPlan) -> None:
    """Deletes the current attempt's Job once the status that leaves the attempt is written."""
    ref = (tracked.job.namespace or "", job_name(tracked.job, tracked.view.attempt))
    plan.delete.append(ref)
    plan.delete_after[ref] = tracked.key


def _next_status(
    tracked: _Tracked,
    plan: TrainingPlan,
    now: datetime,
    config: TrainingConfig,
    labels: dict[str, dict[str, str]],
    datasets: dict[str, Dataset],
) -> Status:
    """Suspend, queue, adopt, finish, restart, run, or stay."""
    job, status, view = tracked.job, tracked.before, tracked.view
    assert tracked.pool is not None
    if life.is_finished(status):
        return status
    holding = view.job is not None or view.decided is not None or life.holds_nodes(status)
    if job.spec.suspend:
        if holding:
            _withdraw_job(tracked, plan)
            status = status.model_copy(update={"attempt": status.attempt + 1})
        return life.suspend(status)
    if view.foreign:
        name = job_name(job, view.attempt)
        return life.queue(status).model_copy(
            update={"reason": f"waiting for Job {name} of an earlier TrainingJob of this name to be deleted"}
        )
    placement = recorded_placement(view, status, tracked.pool.name)
    fresh = view.job is None and view.decided is None
    if placement is None or (fresh and status.phase not in life.HOLDING):
        return life.queue(status)
    if is_mismatch(status, view):
        assert status.placement is not None and view.job is not None
        plan.breaches.append(
            mismatch_breach(tracked.key, view.attempt, status.placement.nodes, view.job.nodes)
        )
    status = life.adopt(status, placement, view.decided.admitted if view.decided else None)
    batch = view.job
    if batch is None:
        tracked.materialise = view.decided is None
        return status
    if batch.complete:
        return life.succeed(status, now)
    if batch.failed:
        _withdraw_job(tracked, plan)
        return _restart_or_fail(job, status, batch.message, now, config)
    if batch.ready >= job.spec.nodes:
        return life.run(
            status, Residency.model_validate(residency_of(job, placement.nodes, labels, datasets)), now
        )
    return status


def _restart_or_fail(
    job: TrainingJob, status: Status, message: str, now: datetime, config: TrainingConfig
) -> Status:
    """A failed attempt: a disruption restarts for free; an application failure spends a restart."""
    if "DisruptionTarget" in message:
        return life.disrupt(status, message)
    if status.restarts < job.spec.max_restarts:
        delay = min(config.backoff_seconds * 2**status.restarts, config.backoff_max_seconds)
        return life.restart(status, message, job.spec.max_restarts, timedelta(seconds=delay), now)
    return life.fail(status, message, job.spec.max_restarts, now)


def worker_amounts(job: TrainingJob, pool: NodePool) -> Amounts:
    """What one worker of the job requests, as its Job's pod template will ask for it."""
    return replica_amounts(pool, job.spec.gpus_per_node)


def _account(
    factory: AIFactory,
    tracked: list[_Tracked],
    nodes: list[Node],
    pods: list[PodOnNode],
    serving: list[Endpoint],
) -> _Books:
    """The ledger from what exists: nodes' allocatable, bound pods, what gangs' Jobs (or, until
    they are seen, the loop's own decisions) hold, and what admitted endpoints are owed."""
    ready = _offered_nodes(factory, nodes)
    allocatable = {
        n["metadata"]["name"]: n.get("allocatableAmounts")
        or parse_amounts(n.get("status", {}).get("allocatable") or {})
        for n in ready
    }
    holds = [hold for t in tracked for hold in _holds(t)]
    ledger = construct_ledger(allocatable, pods, holds)
    quota = quota_book(factory)
    for t in tracked:
        if (
            t.tenant is not None
            and t.pool is not None
            and (life.holds_nodes(t.status) or (t.view.stale and _holds(t)))
        ):
            quota.take((t.tenant.name, t.pool.gpu_product), t.job.spec.nodes * t.job.spec.gpus_per_node)
    slots = [_slot(n, ledger) for n in ready]
    for item in serving:
        if item.admitted:
            quota.take((item.tenant.name, item.pool.gpu_product), item.gpus)
            hold_replicas(ledger, item, slots, pods)
    return _Books(ledger, [_slot(n, ledger) for n in ready], holds, quota)


def _offered_nodes(factory: AIFactory, nodes: list[Node]) -> list[Node]:
    """Ready nodes of the factory's pools that workers would tolerate."""
    pools = {p.name: p for p in factory.spec.node_pools}
    return [
        n
        for n in nodes
        if is_node_ready(n)
        and n["metadata"]["labels"].get(LABEL_FACTORY) == factory.name
        and (pool := pools.get(n["metadata"].get("labels", {}).get(LABEL_POOL, "")))
        and not has_foreign_blocking_taint(n, pool)
    ]


def _holds(tracked: _Tracked) -> list[GangHold]:
    status, view = tracked.status, tracked.view
    holds = job_holds(tracked.key, tracked.observed, status.admitted_time or "")
    if view.job is None and view.decided is not None:
        worker = freeze(worker_amounts(tracked.job, tracked.pool)) if tracked.pool else ()
        holds.append(decided_hold(tracked.key, view.decided, worker))
    elif view.job is None and life.holds_nodes(status) and tracked.pool is not None and status.placement:
        worker = freeze(worker_amounts(tracked.job, tracked.pool))
        holds.append(
            GangHold(
                tracked.key, status.attempt, tuple(status.placement.nodes), worker, status.admitted_time or ""
            )
        )
    return holds


def _slot(node: Node, ledger: Ledger) -> NodeSlot:
    name, labels = node["metadata"]["name"], node["metadata"]["labels"]
    free = ledger.free(name)
    return NodeSlot(
        name,
        labels[LABEL_POOL],
        free.get(GPU_RESOURCE, 0) // 1000,
        {level: labels.get(label, name) for level, label in LEVEL_LABELS.items()},
        freeze({k: v for k, v in free.items() if k != GPU_RESOURCE}),
    )


def _repair(
    tracked: list[_Tracked],
    books: _Books,
    pods: list[PodOnNode],
    unschedulable: dict[str, list[UnschedulablePod]],
    plan: TrainingPlan,
    now: datetime,
    config: TrainingConfig,
) -> None:
    """Checks the books (gang_invariants.py) and withdraws the attempts that cannot start."""
    admitted = {t.key: t for t in tracked if t.active and t.status.phase == life.Phase.ADMITTED}
    breaches: list[Breach] = []
    if books.ledger.overcommitted():  # the check withdraws on a copy: the real books keep the holds
        checked = Ledger(books.ledger.allocatable, {n: dict(u) for n, u in books.ledger.taken.items()})
        breaches = check_overcommit(checked, books.holds, pods, set(admitted))
    started = {k: t.status.attempt for k, t in admitted.items() if t.view.job is not None}
    breaches += check_unschedulable(started, unschedulable, now, config.unschedulable_grace_seconds)
    for breach in breaches:
        t = admitted.get(breach.key)
        if t is None or t.status.attempt != breach.attempt or t.status.phase != life.Phase.ADMITTED:
            continue
        if breach.invariant == UNSCHEDULABLE and t.view.job is not None:
            until = now + timedelta(seconds=config.unschedulable_grace_seconds)
            plan.quarantine |= dict.fromkeys(
                _unbound_nodes(t.key, breach.attempt, t.view.job.nodes, pods), until
            )
        _withdraw_job(t, plan)
        t.status = life.withdraw(t.status, breach.message)
        t.materialise = False
    plan.breaches += breaches


def _unbound_nodes(key: str, attempt: int, nodes: tuple[str, ...], pods: list[PodOnNode]) -> list[str]:
    """The attempt's pinned nodes where none of its workers is bound."""
    bound = {p.node for p in pods if p.training_job == key and p.attempt == str(attempt)}
    return [n for n in nodes if n not in bound]


def _admit_queue(
    factory: AIFactory,
    tracked: list[_Tracked],
    books: _Books,
    serving: list[Endpoint],
    plan: TrainingPlan,
    now: datetime,
    config: TrainingConfig,
    releasing: "_Releasing",
) -> None:
    """ledger -> admit() -> each grant recorded as a Job to create and an Admitted status; then
    the gangs the waiting jobs may preempt (preemption.py)."""
    queued = [t for t in tracked if t.active and t.status.phase == life.Phase.QUEUED and not t.view.foreign]
    backing_off = {t.key for t in queued if (parse_time(t.status.retry_after) or now) > now}
    requests = [_request(t) for t in queued if t.key not in backing_off]
    requests += [
        replace(
            endpoint_request(i),
            worker=freeze(_non_gpu(replica_amounts(i.pool, i.endpoint.spec.gpus_per_replica))),
            preemptible=False,  # replicas.min is never given back, so it never borrows
        )
        for i in serving
        if not i.admitted
    ]
    decision = admit(
        requests,
        books.slots,
        books.quota,
        now=now,
        starvation_seconds=config.starvation_seconds,
        max_admissions=config.admissions_per_tick,
        fairness=fairness_of(factory, books.quota),
    )
    plan.capped = decision.capped
    _book_grants(decision, requests, books)
    plan.tenant_gpus = summarize_tenant_gpus(books.quota)
    policy = preemption_policy(factory)
    _settle_serving(factory, serving, decision, requests, books, plan, policy)
    for t in queued:
        if grant := decision.admitted.get(t.key):
            assert t.pool is not None
            if not t.before.admitted_time:
                plan.first_admissions[t.key] = seconds_since_creation(t.job, now)
            placement = Placement(pool=t.pool.name, nodes=grant.nodes, domains=grant.domains)
            t.status = life.admit(t.status, placement, now)
            _materialise(factory, t, plan, admission=True)
        elif t.key in backing_off:
            t.status = t.status.model_copy(update={"queue_position": None})
        else:
            t.status = t.status.model_copy(
                update={
                    "queue_position": decision.positions.get(t.key),
                    "reason": decision.waiting.get(t.key),
                }
            )
    if any(item.shed for item in serving) or releasing.shrinking:
        policy = replace(policy, reclaim="Never")  # endpoints give borrowed GPUs back first
    if policy.enabled:
        _preempt(tracked, books, decision, requests, releasing, policy, plan, now)


def _settle_serving(
    factory: AIFactory,
    serving: list[Endpoint],
    decision: Decision,
    requests: list[Request],
    books: _Books,
    plan: TrainingPlan,
    policy: Policy,
) -> None:
    """Every endpoint's children and status. When the factory may reclaim, endpoints grow on
    borrowed quota too, and give it back first when its lender's queue wants it."""
    claims = books.quota.copy()  # with what the queue still wants: a lender's claim on its share
    for request in requests:
        if request.key not in decision.admitted:
            claims.want((request.tenant, request.product), request.gpus)
    reclaim = policy.reclaim != "Never"
    if reclaim:
        shed_borrowed_replicas(serving, claims)
    for item in serving:
        free = {s.name: books.ledger.free_gpus(s.name) for s in books.slots if s.pool == item.pool.name}
        quota = claims if reclaim else books.quota
        settle_endpoint(factory, item, decision, free, quota, plan.statuses, plan.apply, borrow=reclaim)


# Waiting jobs that may preempt, per tick, from the head of the queue: each try places the job
# over its pool once per candidate set, and a deep queue's tail would not be reached anyway.
PREEMPTORS_PER_TICK = 16


def _preempt(
    tracked: list[_Tracked],
    books: _Books,
    decision: Decision,
    requests: list[Request],
    releasing: "_Releasing",
    policy: Policy,
    plan: TrainingPlan,
    now: datetime,
) -> None:
    """The victims of the jobs at the head of the queue: each is re-queued (its Job deleted once
    that status is written, its workers given the grace period) and its preemptor says so."""
    by_key = {t.key: t for t in tracked}
    gangs = [g for t in tracked if (g := _gang(t)) is not None]
    quota = books.quota.copy()
    for held, gpus in releasing.quota.items():
        quota.give_back(held, gpus)
    blocked = [
        r
        for r in queue_order(requests)
        if r.key in by_key and decision.causes.get(r.key) in ("quota", "capacity")
    ]
    waiting = may_preempt(blocked, gangs, quota, policy)[:PREEMPTORS_PER_TICK]
    found = plan_preemptions(waiting, gangs, books.slots, releasing.amounts, quota, policy, now)
    for key, why in found.releasing.items():
        by_key[key].status = by_key[key].status.model_copy(update={"reason": why})
    for preemption in found.preemptions:
        preemptor = by_key[preemption.preemptor.key]
        preemptor.status = preemptor.status.model_copy(update={"reason": preemption.preemptor_message()})
        for victim, rule in preemption.victims:
            t = by_key[victim.key]
            _withdraw_job(t, plan)
            t.status = life.preempt(t.status, preemption.victim_message(victim, rule))
            t.materialise = False
        plan.preemptions.append(preemption)


def _gang(t: _Tracked) -> Gang | None:
    """A gang whose Job holds nodes now, as a candidate victim."""
    if not (t.active and life.holds_nodes(t.status) and t.view.job and t.tenant and t.pool):
        return None
    assert t.status.placement is not None
    return Gang(
        key=t.key,
        tenant=t.tenant.name,
        product=t.pool.gpu_product,
        pool=t.pool.name,
        priority=t.priority,
        nodes=tuple(t.status.placement.nodes),
        gpus_per_node=t.job.spec.gpus_per_node,
        worker=freeze(_non_gpu(worker_amounts(t.job, t.pool))),
        admitted=parse_time(t.status.admitted_time),
        preemptible=t.job.spec.preemptible,
    )


@dataclass
class _Releasing:
    """What stopped attempts give back once their pods are gone: what the pods request per node
    (GPUs, CPU, memory), and the quota of jobs a stale view still shows holding (the loop's own
    write moved them past that attempt)."""

    amounts: dict[str, Amounts] = field(default_factory=dict)
    quota: dict[tuple[str, str], int] = field(default_factory=dict)
    shrinking: bool = False  # an endpoint has more replicas running than it is to keep


def _shrinking(item: Endpoint, pods: list[PodOnNode]) -> bool:
    """More of the endpoint's pods bound than its Deployment keeps (one more during a surge)."""
    key = f"{item.endpoint.namespace}/{item.endpoint.name}"
    surge = 1 if item.deployment is None or item.deployment.surge else 0
    return item.admitted and sum(1 for p in pods if p.endpoint == key) > item.replicas + surge


def _releasing(
    tracked: list[_Tracked], pods: list[PodOnNode], memory: ProtocolMemory, serving: list[Endpoint]
) -> _Releasing:
    """GPUs per node held by training pods of attempts that no longer hold nodes (preempted,
    suspended, withdrawn): they terminate within the grace period and free their nodes. Pods of a
    job seen through a stale view count when the loop's own write moved the job past them."""
    by_key = {t.key: t for t in tracked}
    released = _Releasing(shrinking=any(_shrinking(item, pods) for item in serving))
    for t in tracked:
        moved = memory.written.get(t.key, -1) > t.before.attempt
        if not t.active and moved and life.holds_nodes(t.before) and t.tenant and t.pool:
            key = (t.tenant.name, t.pool.gpu_product)
            released.quota[key] = released.quota.get(key, 0) + t.job.spec.nodes * t.job.spec.gpus_per_node
    releasing = released.amounts
    for pod in pods:
        owner = by_key.get(pod.training_job) if pod.training_job else None
        if owner is None or not pod.attempt.isdigit():
            continue
        attempt = int(pod.attempt)
        if owner.active:
            gone = not (life.holds_nodes(owner.status) and owner.status.attempt == attempt)
        else:
            gone = attempt < memory.written.get(owner.key, -1)
        if gone:
            freed = releasing.setdefault(pod.node, {})
            for resource, amount in pod.requests or ((GPU_RESOURCE, pod.gpus * 1000),):
                freed[resource] = freed.get(resource, 0) + amount
    return released


def preemption_policy(factory: AIFactory) -> Policy:
    scheduling = factory.spec.scheduling
    if scheduling is None:
        return Policy()
    return Policy(
        scheduling.preemption.within_tenant,
        scheduling.preemption.reclaim,
        float(scheduling.min_runtime_seconds),
    )


def _book_grants(decision: Decision, requests: list[Request], books: _Books) -> None:
    """What this decision admitted, taken from the ledger and the quotas."""
    sizes = {r.key: r for r in requests}
    for key, grant in decision.admitted.items():
        request = sizes[key]
        taken = ((GPU_RESOURCE, request.gpus_per_node * 1000), *request.worker)
        for name in grant.nodes:
            books.ledger.add(name, taken)
        books.quota.take((request.tenant, request.product), request.gpus)


def _non_gpu(amounts: Amounts) -> Amounts:
    return {k: v for k, v in amounts.items() if k != GPU_RESOURCE}


def _materialise(factory: AIFactory, tracked: _Tracked, plan: TrainingPlan, *, admission: bool) -> None:
    """The attempt's Job (and Service) from its placement, to be created."""
    job, status, pool = tracked.job, tracked.status, tracked.pool
    assert pool is not None and status.placement is not None
    if needs_service(job):
        plan.apply.append(construct_service(job))
    nodes = status.placement.nodes
    grace = factory.spec.scheduling.grace_period_seconds if factory.spec.scheduling else 30
    obj = construct_job(
        job, pool, factory.name, nodes, status.attempt, factory.spec.sovereignty.jurisdiction, grace
    )
    decided = Decided(
        status.attempt, tuple(sorted(nodes)), tuple(status.placement.domains), status.admitted_time or ""
    )
    plan.create.append(Creation(tracked.key, obj, decided, admission))


def _request(tracked: _Tracked) -> Request:
    job, pool, tenant = tracked.job, tracked.pool, tracked.tenant
    assert pool is not None and tenant is not None
    since = parse_time(tracked.status.retry_after) or parse_time(job.metadata.get("creationTimestamp"))
    return Request(
        key=key_of(job),
        tenant=tenant.name,
        pool=pool.name,
        product=pool.gpu_product,
        nodes=job.spec.nodes,
        gpus_per_node=job.spec.gpus_per_node,
        priority=tracked.priority,
        created=str(job.metadata.get("creationTimestamp", "")),
        waiting_since=since,
        topology_mode=job.spec.topology.mode,
        topology_level=job.spec.topology.level,
        worker=freeze(_non_gpu(worker_amounts(job, pool))),
        preemptible=job.spec.preemptible,
    )


def find_problems(
    factory: AIFactory,
    job: TrainingJob,
    tenant: Tenant | None,
    pool: NodePool | None,
    datasets: dict[str, Dataset],
) -> list[Violation]:
    """Reasons the job can never run here: unknown pool, too big, data outside or above clearance."""
    if tenant is None:
        return [
            Violation(
                "tenancy", "metadata.namespace", f"'{job.namespace}' is not a tenant namespace of the factory"
            )
        ]
    if pool is None:
        names = [p.name for p in factory.spec.node_pools]
        return [
            Violation("pool", "spec.pool", f"the factory has no pool '{job.spec.pool}'; use one of {names}")
        ]
    problems = []
    if job.spec.gpus_per_node > pool.gpus_per_node:
        problems.append(
            Violation(
                "capacity",
                "spec.gpusPerNode",
                f"{job.spec.gpus_per_node} exceeds the {pool.gpus_per_node} GPUs of a '{pool.name}' node",
            )
        )
    if job.spec.nodes > pool.nodes:
        problems.append(
            Violation(
                "capacity",
                "spec.nodes",
                f"{job.spec.nodes} exceeds the {pool.nodes} nodes of pool '{pool.name}'",
            )
        )
    problems += check_pool_use(factory, tenant, pool, "spec.pool")
    mounted = [(f"spec.datasets[{i}].name", m.name) for i, m in enumerate(job.spec.datasets)]
    if job.spec.checkpoint:
        mounted.append(("spec.checkpoint.dataset", job.spec.checkpoint.dataset))
    for path, name in mounted:
        dataset = datasets.get(f"{job.namespace}/{name}")
        if dataset is None:
            problems.append(Violation("dataset", path, f"no Dataset '{name}' in namespace {job.namespace}"))
            continue
        use = DataUse(path, dataset.spec.jurisdiction, dataset.spec.classification)
        problems += check_data_use(factory, tenant, pool, use)
    problems += quota_problems(job, tenant, pool)
    return problems


def priority_class_problems(
    job: TrainingJob, tenant: Tenant, priority_classes: dict[str, int]
) -> list[Violation]:
    """A priorityClassName must be one the tenant may use, and exist."""
    name = job.spec.priority_class_name
    if not name:
        return []
    if refused := check_training_priority_class(name, tenant.name, tenant.priority_classes):
        return refused
    if name not in priority_classes:
        return [Violation(PRIORITY_CLASS, "spec.priorityClassName", f"there is no PriorityClass '{name}'")]
    return []


def quota_problems(job: TrainingJob, tenant: Tenant, pool: NodePool) -> list[Violation]:
    """A job larger than its tenant's share plus borrowing limit can never run (its share alone,
    when it may not be preempted: such a job never borrows)."""
    shares = [q for q in tenant.gpu_quota if q.product == pool.gpu_product]
    borrowing = sum(q.borrowing_limit for q in shares) if job.spec.preemptible else 0
    quota = sum(q.gpus for q in shares) + borrowing
    if quota >= job.spec.nodes * job.spec.gpus_per_node:
        return []
    return [
        Violation(
            "quota",
            "spec.nodes",
            f"the job needs {job.spec.nodes * job.spec.gpus_per_node} {pool.gpu_product} GPUs"
            f" but tenant '{tenant.name}' may hold {quota}"
            + (f" (its share {quota - borrowing} and borrowing limit {borrowing})" if borrowing else ""),
        )
    ]


def summarize_tenant_gpus(quota: QuotaBook) -> dict[tuple[str, str], TenantGpus]:
    """(tenant, product) -> nominal quota, GPUs held and GPUs of it borrowed from other tenants."""
    return {
        key: TenantGpus(quota.share(key).nominal, quota.used.get(key, 0), quota.borrowed(key))
        for key in sorted(quota.shares.keys() | quota.used.keys())
    }


def fairness_of(factory: AIFactory, quota: QuotaBook) -> Fairness | None:
    """The factory's fair sharing, with what each tenant holds now; None when it has none."""
    scheduling = factory.spec.scheduling
    if scheduling is None or scheduling.fair_sharing is None:
        return None
    totals: dict[str, int] = {}
    for (_, product), share in quota.shares.items():
        totals[product] = totals.get(product, 0) + share.nominal
    weights = {tenant: float(weight) for tenant, weight in scheduling.fair_sharing.weights.items()}
    return Fairness(weights, dict(quota.used), totals)


def quota_book(factory: AIFactory) -> QuotaBook:
    """Every tenant's share of every product, with its borrowing and lending limits; nothing used."""
    return QuotaBook(
        {
            (t.name, q.product): Share(q.gpus, q.borrowing_limit, q.lending_limit)
            for t in factory.spec.tenants
            for q in t.gpu_quota
        }
    )


def seconds_since_creation(job: TrainingJob, now: datetime) -> float:
    """How long the job has existed (0 when its creation time is unknown)."""
    created = parse_time(job.metadata.get("creationTimestamp"))
    return max((now - created).total_seconds(), 0.0) if created else 0.0


def has_foreign_blocking_taint(node: Node, pool: NodePool) -> bool:
    """A NoSchedule/NoExecute taint the pool does not declare (a failed-GPU mark, a lost node):
    workers would not tolerate it, so the node is not offered to admission."""
    declared = {(t.key, t.effect) for t in pool.taints}
    return any(
        t.get("effect") in ("NoSchedule", "NoExecute") and (t.get("key"), t.get("effect")) not in declared
        for t in all_taints(node)
    )


def residency_of(
    job: TrainingJob, placed: list[str], by_name: dict[str, dict[str, str]], datasets: dict[str, Dataset]
) -> Obj:
    """Where the job's pods run and which data they read: node labels by node name."""
    names = [m.name for m in job.spec.datasets] + (
        [job.spec.checkpoint.dataset] if job.spec.checkpoint else []
    )
    return {
        "nodes": [
            {
                "name": n,
                "region": by_name.get(n, {}).get(LABEL_REGION, ""),
                "jurisdiction": by_name.get(n, {}).get(LABEL_JURISDICTION, ""),
            }
            for n in placed
        ],
        "datasets": [
            {"name": d.name, "jurisdiction": d.spec.jurisdiction, "digest": d.spec.digest or ""}
            for name in names
            if (d := datasets.get(f"{job.namespace}/{name}"))
        ],
    }


def parse_time(stamp: Any) -> datetime | None:
    """An RFC 3339 time as the API server writes it. fromisoformat, not strptime: strptime
    normalises the locale on every call, which was a quarter of a tick with 10,000 queued jobs."""
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp)).astimezone(UTC)
