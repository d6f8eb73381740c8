"""The per-factory training loop: one serialized admission and life-cycle decision per tick."""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from ..api.v1alpha1 import AIFactory, Dataset, ModelEndpoint, TrainingJob
from ..constants import API_VERSION, GROUP, VERSION
from ..kube.client import AlreadyExists, Kube
from ..metrics import (
    ADMISSION_INVARIANT_VIOLATIONS,
    PREEMPTIONS,
    RECONCILES,
    TRAINING_ADMISSION_LATENCY,
    forget_training,
    publish_training,
)
from ..reconcile.gang_protocol import ProtocolMemory
from ..reconcile.gang_views import UnschedulablePod, batch_job_view
from ..reconcile.lifecycle_events import LifecycleEvent, capitalise
from ..reconcile.parsing import InvalidSpec, parse_resource
from ..reconcile.preemption import Preemption
from ..reconcile.status_writes import StatusWrite, WriteBudget, choose_status_writes
from ..reconcile.training import BatchJob, Creation, TrainingConfig, TrainingPlan, key_of, plan_training
from ..settings import load_settings
from .indexes import snapshot_nodes, snapshot_pods, snapshot_values
from .runtime import count_error, kube, measured
from .webhook import record_audit, record_own_refusal

logger = logging.getLogger(__name__)
SETTINGS = load_settings()
TICK_SECONDS = SETTINGS.training_tick_seconds
CONFIG = TrainingConfig(
    starvation_seconds=SETTINGS.starvation_seconds,
    backoff_seconds=SETTINGS.restart_backoff_seconds,
    # A tick writes all it admits before the next one looks; 10,000 admissions in one tick held
    # every Running report behind ~30,000 writes (minutes) and ~100 MB of Job manifests.
    admissions_per_tick=SETTINGS.tick_admissions,
    unschedulable_grace_seconds=SETTINGS.admission_unschedulable_grace_seconds,
)


@kopf.daemon(GROUP, VERSION, "aifactories", cancellation_timeout=10)
async def run_training(
    stopped: kopf.DaemonStopped, body: kopf.Body, logger: kopf.Logger, **kwargs: Any
) -> None:
    """Admits and follows every TrainingJob of this factory, one decision at a time (kopf passes
    every index among `kwargs`, by name; plan_tick takes those it reads)."""
    memory = LoopMemory()
    while not stopped:
        try:
            factory = parse_resource(AIFactory, dict(body))
        except InvalidSpec:
            await stopped.wait(TICK_SECONDS)
            continue
        started = time.monotonic()
        with measured("TrainingJob"):
            capped = await run_tick(factory, logger, memory, kwargs)
        await stopped.wait(seconds_to_next_tick(time.monotonic() - started, capped))
    forget_training(body.metadata.name)


def seconds_to_next_tick(took: float, capped: bool, period: float = TICK_SECONDS) -> float:
    """Ticks start a period apart, not a period after the last one ended: a tick that wrote for a
    second has seen a second of new jobs, and waiting another second doubled their wait. A tick
    that stopped at its admission limit has jobs that fit now, so the next one goes at once."""
    return 0.0 if capped else max(period - took, 0.0)


class ParsedModels:
    """Each job and endpoint validated once per resourceVersion: with thousands queued, validating
    every body on every tick would be most of the loop's CPU. Forgets what a tick did not ask for."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], Any] = {}
        self.asked: set[tuple[str, str]] = set()

    def parse(self, model: type[TrainingJob] | type[ModelEndpoint], body: dict[str, Any]) -> Any:
        meta = body.get("metadata") or {}
        key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
        self.asked.add(key)
        if key not in self.models:
            try:
                self.models[key] = parse_resource(model, body)
            except InvalidSpec:
                self.models[key] = None
        return self.models[key]

    def forget_unasked(self) -> None:
        self.models = {k: v for k, v in self.models.items() if k in self.asked}
        self.asked = set()


# A waiting job's queuePosition and reason change with every admission ahead of it; rewriting them
# all every tick would cost one write per queued job per tick. The stalest few are refreshed.
QUEUE_REFRESHES_PER_TICK = SETTINGS.queue_refreshes_per_tick
# First statuses of newly queued jobs, oldest first: thousands created at once would otherwise hold
# a tick (and the admissions of the next one) behind a status write each.
QUEUE_ENTRIES_PER_TICK = SETTINGS.queue_entries_per_tick
# Decisions (deletes, creates, changes of phase) are always written; the queue's reports (first
# statuses, then refreshes) get what is left of this many writes a tick, and at least the minimum.
# With a deep queue the API server's write rate is what paces admission: a tick that admits a
# hundred gangs should not also wait for hundreds of "still queued" statuses.
TICK_WRITES = SETTINGS.tick_writes
REPORT_WRITES_MIN = SETTINGS.report_writes_min


@dataclass
class LoopMemory:
    """What a factory's loop remembers between ticks; all of it can be lost (a restart rebuilds it)."""

    admitted: set[str] = field(default_factory=set)  # first admissions seen, in case the index lags
    protocol: ProtocolMemory = field(default_factory=ProtocolMemory)  # our own decisions and writes
    reported: set[tuple[str, str, int]] = field(default_factory=set)  # breaches counted already
    parsed: ParsedModels = field(default_factory=ParsedModels)
    refreshed: dict[str, float] = field(default_factory=dict)  # job key -> last queue refresh
    # Object key -> story_mark of the status whose Events were recorded last: when the watch lags
    # behind our own writes, the next tick plans the same transition again and must not retell it.
    told: dict[str, tuple[Any, ...]] = field(default_factory=dict)


async def run_tick(
    factory: AIFactory, logger: kopf.Logger, memory: LoopMemory, kwargs: dict[str, Any]
) -> bool:
    """Observe (copies of the indexes, in the event loop) -> plan and write (in a thread, so that a
    long plan over thousands of jobs does not hold up the webhook and the watches) -> report.
    True when admission reached its limit, so that more may fit at once."""
    observed = observe_tick(factory, **kwargs)
    try:
        plan, jobs = await asyncio.to_thread(plan_and_execute, factory, memory, observed)
    except Exception as error:
        logger.warning(f"Training tick failed factory={factory.name}: {error}")
        count_error("TrainingJob")
        return False
    report_tick(factory.name, plan, memory.admitted, {key_of(j) for j in jobs})
    RECONCILES.labels(kind="TrainingJob", outcome="tick").inc()
    return plan.capped


@dataclass(frozen=True)
class Observed:
    """What one tick plans from, copied out of kopf's indexes (raw bodies, parsed in the thread)."""

    jobs: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    batch: dict[str, list[BatchJob]]
    nodes: list[dict[str, Any]]
    pods: list[Any]
    deployments: dict[str, Any]
    unschedulable: dict[str, list[UnschedulablePod]] = field(default_factory=dict)
    priority_classes: dict[str, int] = field(default_factory=dict)


def observe_tick(
    factory: AIFactory,
    *,
    trainingjobs_by_namespace: kopf.Index[str, dict[str, Any]],
    batch_jobs_by_trainingjob: kopf.Index[str, BatchJob],
    datasets_by_namespace: kopf.Index[str, dict[str, Any]],
    nodes_by_name: kopf.Index[str, Any],
    pods_by_node: kopf.Index[str, Any],
    modelendpoints_by_namespace: kopf.Index[str, dict[str, Any]],
    deployments_by_endpoint: kopf.Index[str, Any],
    unschedulable_pods_by_trainingjob: kopf.Index[str, UnschedulablePod] | None = None,
    priority_class_values: kopf.Index[str, int] | None = None,
    **_: Any,
) -> Observed:
    """The factory's jobs, endpoints and datasets and the cluster around them, as the indexes hold
    them now (kopf passes every index among the handler's kwargs, by name)."""
    namespaces = [ns for tenant in factory.spec.tenants for ns in tenant.namespaces]

    def flat(index: kopf.Index[str, Any]) -> list[Any]:
        return [v for items in snapshot_values(index, namespaces).values() for v in items]

    jobs, endpoints = flat(trainingjobs_by_namespace), flat(modelendpoints_by_namespace)
    keys = [f"{j['metadata']['namespace']}/{j['metadata']['name']}" for j in jobs]
    # Nodes and pods matter only to jobs and endpoints; an idle factory of 10,000 nodes would
    # otherwise copy and walk all of them every second while it is being built.
    busy = bool(jobs or endpoints)
    return Observed(
        jobs=jobs,
        datasets=flat(datasets_by_namespace),
        endpoints=endpoints,
        batch=snapshot_values(batch_jobs_by_trainingjob, keys),
        nodes=snapshot_nodes(nodes_by_name) if busy else [],
        pods=snapshot_pods(pods_by_node) if busy else [],
        deployments={k: v[0] for k, v in snapshot_values(deployments_by_endpoint).items() if v},
        unschedulable=snapshot_values(unschedulable_pods_by_trainingjob, keys)
        if unschedulable_pods_by_trainingjob is not None
        else {},
        priority_classes={k: v[0] for k, v in snapshot_values(priority_class_values).items() if v}
        if priority_class_values is not None
        else {},
    )


def plan_and_execute(
    factory: AIFactory, memory: LoopMemory, observed: Observed
) -> tuple[TrainingPlan, list[TrainingJob]]:
    return tick_once(kube(), factory, memory, observed, datetime.now(UTC))


def tick_once(
    client: Kube, factory: AIFactory, memory: LoopMemory, observed: Observed, now: datetime
) -> tuple[TrainingPlan, list[TrainingJob]]:
    """One tick of the protocol (docs/gang-admission.md): settle what is uncertain, plan from the
    views, forget what the views caught up with, report breaches, write."""
    resolve_uncertain(client, memory.protocol)
    plan, jobs, endpoints = plan_tick(factory, now, memory.parsed, observed, memory.protocol)
    memory.parsed.forget_unasked()
    for key in plan.settled_decisions:
        memory.protocol.decided.pop(key, None)
    for key in plan.settled_writes:
        memory.protocol.written.pop(key, None)
    quarantined = memory.protocol.quarantined | plan.quarantine
    memory.protocol.quarantined = {node: until for node, until in quarantined.items() if until > now}

    def refused(obj: dict[str, Any], error: ApiException) -> None:
        record_own_refusal(obj, error, factory)

    report_breaches(client, plan, jobs, memory.reported)
    execute_training(
        client, plan, jobs, endpoints, memory.refreshed, refused, told=memory.told, protocol=memory.protocol
    )
    return plan, jobs


def plan_tick(
    factory: AIFactory,
    now: datetime,
    parsed: ParsedModels,
    observed: Observed,
    protocol: ProtocolMemory | None = None,
) -> tuple[TrainingPlan, list[TrainingJob], list[ModelEndpoint]]:
    """The plan for this tick, with the jobs and endpoints that parsed."""
    jobs = [j for body in observed.jobs if (j := parsed.parse(TrainingJob, body)) is not None]
    endpoints = [e for body in observed.endpoints if (e := parsed.parse(ModelEndpoint, body)) is not None]
    datasets = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": Dataset.model_validate(d)
        for d in observed.datasets
    }
    plan = plan_training(
        factory,
        jobs,
        observed.batch,
        observed.nodes,
        observed.pods,
        datasets,
        now=now,
        config=CONFIG,
        endpoints=endpoints,
        deployments=observed.deployments,
        memory=protocol,
        unschedulable=observed.unschedulable,
        priority_classes=observed.priority_classes,
    )
    return plan, jobs, endpoints


def report_tick(factory: str, plan: TrainingPlan, admitted: set[str], present: set[str]) -> None:
    """Queue length, tenant GPUs and the wait of each job admitted for the first time, once per job."""
    publish_training(factory, plan.queued, plan.tenant_gpus)
    for key, waited in plan.first_admissions.items():
        if key not in admitted:
            TRAINING_ADMISSION_LATENCY.observe(waited)
            admitted.add(key)
    admitted &= present


# Writes of one tick go out this many at a time: they are independent of one another, and one at a
# time a tick that admits hundreds of jobs spends most of its time waiting on round trips.
WRITERS = SETTINGS.training_writers
BUDGET = WriteBudget(TICK_WRITES, REPORT_WRITES_MIN, QUEUE_ENTRIES_PER_TICK, QUEUE_REFRESHES_PER_TICK)
Owner = TrainingJob | ModelEndpoint


def execute_training(
    kube: Kube,
    plan: TrainingPlan,
    jobs: list[TrainingJob],
    endpoints: list[ModelEndpoint],
    refreshed: dict[str, float],
    refused: Callable[[dict[str, Any], ApiException], None] | None = None,
    *,
    told: dict[str, tuple[Any, ...]] | None = None,
    protocol: ProtocolMemory | None = None,
) -> None:
    """Writes the plan in the protocol's order (docs/gang-admission.md):
    1. statuses, except those of admissions: an attempt is left in the status before its Job goes;
    2. deletes (of attempts whose status step landed), applies, and Job creates, in parallel;
    3. the statuses of admissions whose Job now exists, so a status never names nodes no Job holds.
    Every write is attempted; the first failure is raised at the end."""
    told = {} if told is None else told
    protocol = ProtocolMemory() if protocol is None else protocol
    owners: dict[str, Owner] = {key_of(j): j for j in jobs}
    owners.update({f"me:{e.namespace}/{e.name}": e for e in endpoints})
    now = datetime.now(UTC)
    sent = len(plan.delete) + len(plan.create) + len(plan.apply)
    writes, chosen = choose_status_writes(plan.statuses, owners, sent, refreshed, told, BUDGET, now)
    errors: list[BaseException] = []
    write_in_order(kube, plan, writes, told, protocol, refused, errors)
    for write in chosen:
        refreshed[write.key] = now.timestamp()
    for memory in (refreshed, told):
        for key in set(memory) - set(owners):
            del memory[key]
    if errors:
        raise errors[0]


def write_in_order(
    kube: Kube,
    plan: TrainingPlan,
    writes: list[StatusWrite],
    told: dict[str, tuple[Any, ...]],
    protocol: ProtocolMemory,
    refused: Callable[[dict[str, Any], ApiException], None] | None,
    errors: list[BaseException],
) -> None:
    """The three phases of execute_training; each write's failure is added to `errors`. Phase 1
    holds only the statuses something of phase 2 waits for (a Job deleted once its attempt is left
    behind) and those of endpoints; the TrainingJob statuses nothing waits for (finished, running,
    queue reports) go in phase 3, so that a tick's Job creates are not queued behind them: when
    many gangs end at once, those reports delayed the next gangs' Jobs by a second or more."""
    after_create = {c.key for c in plan.create if c.admission}
    waited = set(plan.delete_after.values())
    first = [
        w
        for w in writes
        if w.key not in after_create and (w.key in waited or not isinstance(w.owner, TrainingJob))
    ]
    early = {w.key for w in first}
    reports = [w for w in writes if w.key not in early and w.key not in after_create]
    with ThreadPoolExecutor(WRITERS) as writers:

        def status(write: StatusWrite) -> None:
            write_status(kube, write, told, protocol)

        failed = in_parallel(writers, status, first, errors)
        failed_keys = {w.key for w in failed}
        deletes = [ref for ref in plan.delete if plan.delete_after.get(ref) not in failed_keys]
        in_parallel(writers, lambda ref: kube.delete("batch/v1", "Job", ref[1], ref[0]), deletes, errors)
        in_parallel(writers, lambda obj: apply_child(kube, obj, refused), plan.apply, errors)
        unmade = in_parallel(
            writers, lambda c: create_gang_job(kube, c, protocol, refused), plan.create, errors
        )
        landed = {c.key for c in plan.create} - {c.key for c in unmade}
        admitted = [w for w in writes if w.key in after_create and w.key in landed]
        in_parallel(writers, status, admitted + reports, errors)
    tell_preemptions(kube, plan.preemptions, owners_of(writes), failed_keys)


def owners_of(writes: list[StatusWrite]) -> dict[str, Owner]:
    return {w.key: w.owner for w in writes}


def tell_preemptions(
    kube: Kube, preemptions: list[Preemption], owners: dict[str, Owner], failed: set[str]
) -> None:
    """Once a preemption's victims are re-queued (their statuses written; their Events told with
    them): the count, the preemptor's Event, and an audit entry per victim."""
    for preemption in preemptions:
        victims = [(v, rule) for v, rule in preemption.victims if v.key in owners and v.key not in failed]
        if not victims:
            continue
        for _, rule in victims:
            PREEMPTIONS.labels(reason=rule).inc()
        if preemptor := owners.get(preemption.preemptor.key):
            event = LifecycleEvent("Preempting", capitalise(preemption.preemptor_message()))
            record_lifecycle_events(kube, preemptor, [event])
        record_audit(
            [
                {
                    "rule": "preemption",
                    "path": "status.preemptions",
                    "message": preemption.victim_message(victim, rule),
                    "layer": "scheduler",
                    "operation": rule,
                    "kind": "TrainingJob",
                    "namespace": victim.key.split("/", 1)[0],
                    "name": victim.key.split("/", 1)[1],
                    "user": preemption.preemptor.key,
                }
                for victim, rule in victims
            ]
        )


def write_status(
    kube: Kube, write: StatusWrite, told: dict[str, tuple[Any, ...]], protocol: ProtocolMemory
) -> None:
    owner = write.owner
    kube.patch_status(API_VERSION, owner.info.kind, owner.name, owner.namespace, write.patch)
    if isinstance(owner, TrainingJob) and "attempt" in write.patch:
        protocol.written[write.key] = int(write.patch["attempt"] or 0)
    record_lifecycle_events(kube, owner, write.events)
    if write.mark is not None:
        told[write.key] = write.mark


def create_gang_job(
    kube: Kube,
    creation: Creation,
    protocol: ProtocolMemory,
    refused: Callable[[dict[str, Any], ApiException], None] | None = None,
) -> None:
    """Creates an attempt's Job, the durable record of its admission, and remembers the decision
    until the watch shows the Job. Raises unless a Job pinning the decided nodes now exists."""
    protocol.decided[creation.key] = creation.decided
    meta = creation.obj["metadata"]
    try:
        kube.create(creation.obj)
    except AlreadyExists:
        adopt_existing_job(kube, creation, protocol)
    except ApiException as error:
        if error.status is not None and 400 <= error.status < 500 and error.status != 429:
            protocol.decided.pop(creation.key, None)  # refused: nothing was created
            if refused is not None:
                refused(creation.obj, error)
        else:  # a 5xx may have landed: read the Job back before deciding this attempt again
            protocol.decided[creation.key] = replace(creation.decided, uncertain=True)
        raise
    except Exception:
        protocol.decided[creation.key] = replace(creation.decided, uncertain=True)
        raise
    logger.debug("Created Job %s/%s", meta.get("namespace"), meta["name"])


def adopt_existing_job(kube: Kube, creation: Creation, protocol: ProtocolMemory) -> None:
    """The attempt's Job exists already (an earlier try landed, or another operator was first): its
    nodes are the decision. Raises when they differ from this one, so no status names ours."""
    meta = creation.obj["metadata"]
    found = kube.get("batch/v1", "Job", meta["name"], meta.get("namespace"))
    ours = creation.obj["metadata"]["ownerReferences"][0]["uid"]
    view = batch_job_view(found) if found else None
    if view is None or view.owner_uid not in ("", ours):
        protocol.decided.pop(creation.key, None)
        raise RuntimeError(f"Job {meta['name']} belongs to another TrainingJob")
    protocol.decided[creation.key] = replace(creation.decided, nodes=view.nodes, uncertain=False)
    if view.nodes != creation.decided.nodes:
        raise RuntimeError(
            f"Job {meta['name']} already pins {list(view.nodes)}; the status follows it next tick"
        )


def resolve_uncertain(kube: Kube, protocol: ProtocolMemory) -> None:
    """Reads back each Job whose create had no clear answer: it exists (its nodes are the decision)
    or it does not (the attempt is decided afresh)."""
    for key, decided in list(protocol.decided.items()):
        if not decided.uncertain:
            continue
        namespace, name = key.split("/", 1)
        found = kube.get("batch/v1", "Job", f"{name}-{decided.attempt}", namespace)
        if found is None:
            del protocol.decided[key]
        else:
            protocol.decided[key] = replace(decided, nodes=batch_job_view(found).nodes, uncertain=False)


def report_breaches(
    kube: Kube, plan: TrainingPlan, jobs: list[TrainingJob], reported: set[tuple[str, str, int]]
) -> None:
    """Counts each breach of an invariant once per attempt and tells it as a Warning Event."""
    owners = {key_of(j): j for j in jobs}
    for breach in plan.breaches:
        mark = (breach.key, breach.invariant, breach.attempt)
        if mark in reported:
            continue
        reported.add(mark)
        ADMISSION_INVARIANT_VIOLATIONS.labels(invariant=breach.invariant).inc()
        logger.warning(
            "Admission invariant %s broken for %s: %s", breach.invariant, breach.key, breach.message
        )
        if owner := owners.get(breach.key):
            event = LifecycleEvent("AdmissionRepaired", f"{breach.invariant}: {breach.message}", warning=True)
            record_lifecycle_events(kube, owner, [event])
    reported &= {(b.key, b.invariant, b.attempt) for b in plan.breaches}


def record_lifecycle_events(kube: Kube, owner: Owner, events: list[LifecycleEvent]) -> None:
    """Records the Events in order, after the status they narrate is written (so a failed status
    write is retried with its Events next tick, and never told twice). An Event that cannot be
    written is lost, as client-go's recorder loses it: the status still says what happened."""
    involved = {"apiVersion": API_VERSION, "kind": owner.info.kind, "metadata": owner.metadata}
    for event in events:
        try:
            kube.record_event(involved, event.reason, event.message, warning=event.warning)
        except Exception as error:  # a lost Event must not fail the tick that wrote the status
            logger.warning(
                "Failed to record Event reason=%s object=%s/%s: %s",
                event.reason,
                owner.namespace,
                owner.name,
                error,
            )


def apply_child(
    kube: Kube, obj: dict[str, Any], refused: Callable[[dict[str, Any], ApiException], None] | None
) -> None:
    """Applies one child; a refusal is handed to `refused` (the audit) and still fails the tick."""
    try:
        kube.apply(obj)
    except ApiException as error:
        if refused is not None:
            refused(obj, error)
        raise


def in_parallel(
    writers: ThreadPoolExecutor, write: Callable[[Any], Any], items: list[Any], errors: list[BaseException]
) -> list[Any]:
    """Attempts every write; returns the items whose write failed, their errors added to `errors`."""
    futures = [(item, writers.submit(write, item)) for item in items]
    failed = []
    for item, future in futures:
        if (error := future.exception()) is not None:
            failed.append(item)
            errors.append(error)
    return failed
