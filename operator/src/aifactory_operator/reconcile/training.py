"""The TrainingJob life cycle of one factory, as one pure decision per tick:
validate -> follow the running attempt -> restart or finish -> admit the queue -> materialise."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from ..api.v1alpha1.aifactory import AIFactory, NodePool, Tenant
from ..api.v1alpha1.dataset import Dataset
from ..api.v1alpha1.modelendpoint import ModelEndpoint
from ..api.v1alpha1.trainingjob import TrainingJob
from ..constants import (
    LABEL_FACTORY,
    LABEL_JURISDICTION,
    LABEL_NVLINK_DOMAIN,
    LABEL_POOL,
    LABEL_RACK,
    LABEL_REGION,
)
from ..policy.data_use import DataUse, check_data_use, check_pool_use
from ..policy.violations import Violation
from .admission import Grant, NodeSlot, Request, admit
from .conditions import Outcome
from .nodepools import Node, PodOnNode, all_taints, allocatable_gpus, is_node_ready
from .serving import DeploymentView, Endpoint, endpoint_request, find_endpoint_problems, finish_endpoint
from .training_objects import construct_job, construct_service, job_name, needs_service

Obj = dict[str, Any]
FINISHED = ("Succeeded", "Failed")
LEVEL_LABELS = {"rack": LABEL_RACK, "nvlinkDomain": LABEL_NVLINK_DOMAIN}


@dataclass(frozen=True)
class TrainingConfig:
    starvation_seconds: float = 300.0
    backoff_seconds: float = 10.0
    backoff_max_seconds: float = 300.0
    admissions_per_tick: int | None = None  # None: no limit


@dataclass(frozen=True)
class BatchJob:
    """What the life cycle needs of an observed batch/v1 Job."""

    name: str
    complete: bool = False
    failed: bool = False
    message: str = ""
    ready: int = 0


class TenantGpus(NamedTuple):
    """A tenant's quota for one GPU product and what admitted work holds of it."""

    quota: int
    in_use: int


@dataclass
class TrainingPlan:
    apply: list[Obj] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)  # (namespace, Job name)
    statuses: dict[str, tuple[Obj, Outcome]] = field(default_factory=dict)  # key -> (status fields, outcome)
    # What the tick decided, for the operator's metrics: jobs still Queued; seconds from creation for
    # each job admitted for the first time; (tenant, GPU product) -> quota and GPUs held after the tick.
    queued: int = 0
    first_admissions: dict[str, float] = field(default_factory=dict)
    tenant_gpus: dict[tuple[str, str], TenantGpus] = field(default_factory=dict)
    # Admission reached admissions_per_tick, so more may fit: decide again without waiting.
    capped: bool = False


@dataclass
class _Tracked:
    job: TrainingJob
    tenant: Tenant
    pool: NodePool
    status: Obj
    has_batch: bool = False  # the current attempt's Job exists


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
) -> TrainingPlan:
    """Every TrainingJob and ModelEndpoint of the factory, one step further, in one GPU accounting;
    `batch_jobs`, `datasets` and `deployments` are keyed by namespace/name of their owner."""
    plan = TrainingPlan()
    tenants = {ns: t for t in factory.spec.tenants for ns in t.namespaces}
    pools = {p.name: p for p in factory.spec.node_pools}
    queued: list[_Tracked] = []
    placed: list[_Tracked] = []
    # Built once: a job that starts running records the labels of its nodes, and looking them up
    # in a fresh map per job was 10,000 jobs x 10,000 nodes when a whole queue started at once.
    labels = {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in nodes}
    for job in jobs:
        status = dict(job.status.to_wire()) if job.status else {}
        status.pop("conditions", None)
        status.pop("observedGeneration", None)
        tenant, pool = tenants.get(job.namespace or ""), pools.get(job.spec.pool)
        if problems := find_problems(factory, job, tenant, pool, datasets):
            plan.statuses[key_of(job)] = refuse(status, problems)
            continue
        assert tenant is not None and pool is not None
        tracked = _Tracked(job, tenant, pool, status)
        _advance(tracked, batch_jobs.get(key_of(job), []), plan, now, config, labels, datasets)
        if tracked.status.get("phase") == "Queued":
            queued.append(tracked)
        elif tracked.status.get("placement"):
            placed.append(tracked)
        else:
            plan.statuses[key_of(job)] = (tracked.status, _outcome(tracked.status))
    serving = _endpoints(factory, endpoints or [], deployments or {}, datasets, tenants, pools, plan)
    _admit_queue(factory, queued, placed, nodes, pods, plan, now, config, serving)
    for tracked in placed:
        _materialise(factory, tracked, plan)
        plan.statuses[key_of(tracked.job)] = (tracked.status, _outcome(tracked.status))
    plan.queued = sum(1 for t in queued if t.status.get("phase") == "Queued")
    return plan


def refuse(status: Obj, problems: list[Violation]) -> tuple[Obj, Outcome]:
    """The status of a job a rule refuses: phase Refused, unless it already finished or holds nodes
    (an attempt that runs is left to end; its phase stays true to what its pods do)."""
    phase = status.get("phase")
    keeps_phase = phase in FINISHED or (phase in ("Admitted", "Running") and status.get("placement"))
    refused = {} if keeps_phase else {"phase": "Refused", "queuePosition": None}
    return (
        {**status, **refused, "reason": problems[0].message},
        Outcome.stalled("Refused", "; ".join(str(p) for p in problems)),
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
    quota = sum(q.gpus for q in tenant.gpu_quota if q.product == pool.gpu_product)
    if quota < job.spec.nodes * job.spec.gpus_per_node:
        problems.append(
            Violation(
                "quota",
                "spec.nodes",
                f"the job needs {job.spec.nodes * job.spec.gpus_per_node} {pool.gpu_product} GPUs"
                f" but tenant '{tenant.name}' may hold {quota}",
            )
        )
    return problems


def _advance(
    tracked: _Tracked,
    observed: list[BatchJob],
    plan: TrainingPlan,
    now: datetime,
    config: TrainingConfig,
    labels: dict[str, dict[str, str]],
    datasets: dict[str, Dataset],
) -> None:
    """Moves one job along: suspend, resume, finish, restart, or stay."""
    job, status = tracked.job, tracked.status
    phase = status.get("phase")
    attempt = int(status.get("attempt", 0))
    current = job_name(job, attempt)
    stale = [b for b in observed if b.name != current]
    plan.delete.extend((job.namespace or "", b.name) for b in stale if phase not in FINISHED)
    batch = next((b for b in observed if b.name == current), None)
    tracked.has_batch = batch is not None
    if phase in FINISHED:
        return
    if job.spec.suspend:
        if batch:
            plan.delete.append((job.namespace or "", batch.name))
        status.update(
            phase="Suspended",
            placement=None,
            reason="suspended; resuming requeues the job",
            queuePosition=None,
        )
        return
    if phase in (None, "Suspended", "Refused") or (phase == "Queued" and not status.get("placement")):
        status.update(phase="Queued", placement=None)
        return
    if not status.get("placement"):
        status.update(phase="Queued")
        return
    if batch and batch.complete:
        status.update(phase="Succeeded", placement=None, reason=None, completionTime=_stamp(now))
    elif batch and batch.failed:
        _restart_or_fail(tracked, batch, plan, now, config)
    elif batch and batch.ready >= job.spec.nodes:
        status.update(phase="Running", reason=None)
        status.setdefault("startTime", _stamp(now))
        status["residency"] = _residency(job, status["placement"]["nodes"], labels, datasets)
    else:
        status.update(phase="Admitted")


def _restart_or_fail(
    tracked: _Tracked, batch: BatchJob, plan: TrainingPlan, now: datetime, config: TrainingConfig
) -> None:
    """A failed attempt: a disruption restarts for free; an application failure spends a restart."""
    job, status = tracked.job, tracked.status
    plan.delete.append((job.namespace or "", batch.name))
    attempt = int(status.get("attempt", 0))
    if "DisruptionTarget" in batch.message:
        status.update(
            phase="Queued",
            placement=None,
            attempt=attempt + 1,
            disruptions=int(status.get("disruptions", 0)) + 1,
            reason=f"restarting after a disruption: {batch.message}",
        )
    elif int(status.get("restarts", 0)) < job.spec.max_restarts:
        restarts = int(status.get("restarts", 0)) + 1
        delay = min(config.backoff_seconds * 2 ** (restarts - 1), config.backoff_max_seconds)
        status.update(
            phase="Queued",
            placement=None,
            attempt=attempt + 1,
            restarts=restarts,
            retryAfter=_stamp(now + timedelta(seconds=delay)),
            reason=f"restart {restarts} of {job.spec.max_restarts} from the last checkpoint"
            f" after: {batch.message}",
        )
    else:
        status.update(
            phase="Failed",
            placement=None,
            completionTime=_stamp(now),
            reason=f"failed after {job.spec.max_restarts} restarts: {batch.message}",
        )


def _admit_queue(
    factory: AIFactory,
    queued: list[_Tracked],
    placed: list[_Tracked],
    nodes: list[Node],
    pods: list[PodOnNode],
    plan: TrainingPlan,
    now: datetime,
    config: TrainingConfig,
    serving: list[Endpoint],
) -> None:
    pools = {p.name: p for p in factory.spec.node_pools}
    ready = [
        n
        for n in nodes
        if is_node_ready(n)
        and n["metadata"]["labels"].get(LABEL_FACTORY) == factory.name
        and (pool := pools.get(n["metadata"].get("labels", {}).get(LABEL_POOL, "")))
        and not has_foreign_blocking_taint(n, pool)
    ]
    free = {n["metadata"]["name"]: allocatable_gpus(n) for n in ready}
    for pod in pods:
        if not pod.training_job and pod.node in free:
            free[pod.node] -= pod.gpus
    quota = {(t.name, q.product): q.gpus for t in factory.spec.tenants for q in t.gpu_quota}
    for tracked in placed:
        for name in tracked.status["placement"]["nodes"]:
            if name in free:
                free[name] -= tracked.job.spec.gpus_per_node
        product = (tracked.tenant.name, tracked.pool.gpu_product)
        quota[product] = quota.get(product, 0) - tracked.job.spec.nodes * tracked.job.spec.gpus_per_node
    slots = [
        NodeSlot(
            n["metadata"]["name"],
            n["metadata"]["labels"][LABEL_POOL],
            free[n["metadata"]["name"]],
            {
                level: n["metadata"]["labels"].get(label, n["metadata"]["name"])
                for level, label in LEVEL_LABELS.items()
            },
        )
        for n in ready
    ]
    for item in serving:
        if item.admitted:
            quota[(item.tenant.name, item.pool.gpu_product)] = (
                quota.get((item.tenant.name, item.pool.gpu_product), 0) - item.gpus
            )
            bound = sum(1 for p in pods if p.endpoint == f"{item.endpoint.namespace}/{item.endpoint.name}")
            _hold(
                free,
                [s for s in slots if s.pool == item.pool.name],
                item.replicas - bound,
                item.endpoint.spec.gpus_per_replica,
            )
    backing_off = [t for t in queued if (_parse(t.status.get("retryAfter")) or now) > now]
    requests = [_request(t) for t in queued if t not in backing_off]
    requests += [endpoint_request(i) for i in serving if not i.admitted]
    decision = admit(
        requests,
        slots,
        quota,
        now=now,
        starvation_seconds=config.starvation_seconds,
        max_admissions=config.admissions_per_tick,
    )
    plan.capped = decision.capped
    sizes = {r.key: r for r in requests}
    for key, given in decision.admitted.items():
        for name in given.nodes:
            free[name] -= sizes[key].gpus_per_node
        granted = (sizes[key].tenant, sizes[key].product)
        quota[granted] = quota.get(granted, 0) - sizes[key].gpus
    plan.tenant_gpus = summarize_tenant_gpus(factory, quota)
    for item in serving:
        _settle_endpoint(factory, item, decision, free, slots, quota, plan)
    for tracked in queued:
        key = key_of(tracked.job)
        if grant := decision.admitted.get(key):
            if not tracked.status.get("admittedTime"):
                plan.first_admissions[key] = seconds_since_creation(tracked.job, now)
            _place(tracked, grant, now)
            placed.append(tracked)
            continue
        if tracked in backing_off:
            tracked.status.update(queuePosition=None)
        else:
            tracked.status.update(queuePosition=decision.positions.get(key), reason=decision.waiting.get(key))
        plan.statuses[key] = (tracked.status, _outcome(tracked.status))


def summarize_tenant_gpus(
    factory: AIFactory, quota_left: dict[tuple[str, str], int]
) -> dict[tuple[str, str], TenantGpus]:
    """(tenant, product) -> quota and GPUs held, from what the accounting left of each quota."""
    quota = {(t.name, q.product): q.gpus for t in factory.spec.tenants for q in t.gpu_quota}
    return {
        key: TenantGpus(quota.get(key, 0), quota.get(key, 0) - quota_left.get(key, 0))
        for key in sorted(quota.keys() | quota_left.keys())
    }


def seconds_since_creation(job: TrainingJob, now: datetime) -> float:
    """How long the job has existed (0 when its creation time is unknown)."""
    created = _parse(job.metadata.get("creationTimestamp"))
    return max((now - created).total_seconds(), 0.0) if created else 0.0


def _endpoints(
    factory: AIFactory,
    endpoints: list[ModelEndpoint],
    deployments: dict[str, DeploymentView],
    datasets: dict[str, Dataset],
    tenants: dict[str, Tenant],
    pools: dict[str, NodePool],
    plan: TrainingPlan,
) -> list[Endpoint]:
    """Endpoints that may take part in the accounting; refused ones get their Stalled status here."""
    items = []
    for endpoint in endpoints:
        status = dict(endpoint.status.to_wire()) if endpoint.status else {}
        status.pop("conditions", None)
        status.pop("observedGeneration", None)
        key = f"{endpoint.namespace}/{endpoint.name}"
        tenant, pool = tenants.get(endpoint.namespace or ""), pools.get(endpoint.spec.pool)
        model = datasets.get(f"{endpoint.namespace}/{endpoint.spec.model}")
        if problems := find_endpoint_problems(factory, endpoint, tenant, pool, model):
            status.update(reason=problems[0].message)
            plan.statuses[f"me:{key}"] = (
                status,
                Outcome.stalled("Refused", "; ".join(str(p) for p in problems)),
            )
            continue
        assert tenant is not None and pool is not None and model is not None
        items.append(Endpoint(endpoint, tenant, pool, model, status, deployments.get(key)))
    return items


def _settle_endpoint(
    factory: AIFactory,
    item: Endpoint,
    decision: Any,
    free: dict[str, int],
    slots: list[NodeSlot],
    quota: dict[tuple[str, str], int],
    plan: TrainingPlan,
) -> None:
    """Admitted (now or before): children and status; still waiting: Reconciling with the reason.
    Waiting for GPUs is not Stalled: the spec is sound and the endpoint starts once capacity frees
    up, so kstatus must see it in progress, not failed."""
    per_replica = max(item.endpoint.spec.gpus_per_replica, 1)
    if not item.admitted and item.key not in decision.admitted:
        reason = decision.waiting.get(item.key, "waiting for capacity")
        item.status.update(reason=f"cannot reserve replicas.min: {reason}", reservedGpus=0)
        plan.statuses[item.key] = (
            item.status,
            Outcome.progressing("InsufficientCapacity", item.status["reason"]),
        )
        return
    room = sum(max(free[s.name], 0) // per_replica for s in slots if s.pool == item.pool.name)
    quota_left = max(quota.get((item.tenant.name, item.pool.gpu_product), 0), 0)
    finish_endpoint(item, factory.name, room, quota_left, factory.spec.sovereignty.jurisdiction)
    plan.apply.extend(item.apply)
    assert item.outcome is not None
    plan.statuses[item.key] = (item.status, item.outcome)


def _hold(free: dict[str, int], slots: list[NodeSlot], replicas: int, gpus: int) -> None:
    """Keeps GPUs for replicas an endpoint is owed but whose pods are not bound yet (best fit)."""
    for _ in range(max(replicas, 0)):
        fitting = sorted((s for s in slots if free[s.name] >= gpus), key=lambda s: (free[s.name], s.name))
        if not fitting:
            return
        free[fitting[0].name] -= gpus


def has_foreign_blocking_taint(node: Node, pool: NodePool) -> bool:
    """A NoSchedule/NoExecute taint the pool does not declare (a failed-GPU mark, a lost node):
    workers would not tolerate it, so the node is not offered to admission."""
    declared = {(t.key, t.effect) for t in pool.taints}
    return any(
        t.get("effect") in ("NoSchedule", "NoExecute") and (t.get("key"), t.get("effect")) not in declared
        for t in all_taints(node)
    )


def _place(tracked: _Tracked, grant: Grant, now: datetime) -> None:
    tracked.status.update(
        phase="Admitted",
        placement={"pool": tracked.pool.name, "nodes": grant.nodes, "domains": grant.domains},
        admittedTime=_stamp(now),
        queuePosition=None,
        reason=None,
        retryAfter=None,
    )


def _materialise(factory: AIFactory, tracked: _Tracked, plan: TrainingPlan) -> None:
    job, status = tracked.job, tracked.status
    if status.get("phase") not in ("Admitted", "Running") or tracked.has_batch:
        return
    attempt = int(status.get("attempt", 0))
    if needs_service(job):
        plan.apply.append(construct_service(job))
    plan.apply.append(
        construct_job(
            job,
            tracked.pool,
            factory.name,
            status["placement"]["nodes"],
            attempt,
            factory.spec.sovereignty.jurisdiction,
        )
    )


def _request(tracked: _Tracked) -> Request:
    job = tracked.job
    since = _parse(tracked.status.get("retryAfter")) or _parse(job.metadata.get("creationTimestamp"))
    return Request(
        key=key_of(job),
        tenant=tracked.tenant.name,
        pool=tracked.pool.name,
        product=tracked.pool.gpu_product,
        nodes=job.spec.nodes,
        gpus_per_node=job.spec.gpus_per_node,
        priority=job.spec.priority,
        created=str(job.metadata.get("creationTimestamp", "")),
        waiting_since=since,
        topology_mode=job.spec.topology.mode,
        topology_level=job.spec.topology.level,
    )


def _residency(
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


def _outcome(status: Obj) -> Outcome:
    phase = status.get("phase")
    if phase in ("Running", "Succeeded"):
        return Outcome.ready(phase, "all workers are running" if phase == "Running" else "the job completed")
    if phase == "Failed":
        return Outcome.stalled("Failed", str(status.get("reason", "")))
    if phase == "Suspended":
        # Not Ready, since nothing runs; not Reconciling or Stalled, since nothing is left to do or
        # wrong. kstatus reads Ready=False as InProgress, as it reads a suspended batch/v1 Job.
        return Outcome.paused("Suspended", str(status.get("reason", "")))
    return Outcome.progressing(str(phase), str(status.get("reason") or f"the job is {phase}"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: Any) -> datetime | None:
    """An RFC 3339 time as the API server writes it. fromisoformat, not strptime: strptime
    normalises the locale on every call, which was a quarter of a tick with 10,000 queued jobs."""
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp)).astimezone(UTC)
