"""The per-factory training loop: one serialized admission and life-cycle decision per tick."""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from ..api.v1alpha1 import AIFactory, Dataset, ModelEndpoint, TrainingJob
from ..constants import API_VERSION, GROUP, VERSION
from ..kube.client import Kube
from ..metrics import RECONCILES, TRAINING_ADMISSION_LATENCY, forget_training, publish_training
from ..reconcile.conditions import Outcome, construct_conditions
from ..reconcile.lifecycle_events import (
    LifecycleEvent,
    construct_lifecycle_events,
    merge_status,
    story_mark,
)
from ..reconcile.parsing import InvalidSpec, parse_resource
from ..reconcile.training import BatchJob, TrainingConfig, TrainingPlan, key_of, plan_training
from ..settings import load_settings
from .indexes import snapshot_nodes, snapshot_pods, snapshot_values
from .runtime import count_error, kube, measured
from .webhook import record_own_refusal

logger = logging.getLogger(__name__)
SETTINGS = load_settings()
TICK_SECONDS = SETTINGS.training_tick_seconds
CONFIG = TrainingConfig(
    starvation_seconds=SETTINGS.starvation_seconds,
    backoff_seconds=SETTINGS.restart_backoff_seconds,
    # A tick writes all it admits before the next one looks; 10,000 admissions in one tick held
    # every Running report behind ~30,000 writes (minutes) and ~100 MB of Job manifests.
    admissions_per_tick=SETTINGS.tick_admissions,
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
    )


def plan_and_execute(
    factory: AIFactory, memory: LoopMemory, observed: Observed
) -> tuple[TrainingPlan, list[TrainingJob]]:
    plan, jobs, endpoints = plan_tick(factory, datetime.now(UTC), memory.parsed, observed)
    memory.parsed.forget_unasked()

    def refused(obj: dict[str, Any], error: ApiException) -> None:
        record_own_refusal(obj, error, factory)

    execute_training(kube(), plan, jobs, endpoints, memory.refreshed, refused, told=memory.told)
    return plan, jobs


def plan_tick(
    factory: AIFactory, now: datetime, parsed: ParsedModels, observed: Observed
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


@dataclass(frozen=True)
class StatusWrite:
    """One status patch of a tick and the Events it tells; each costs one write."""

    key: str
    owner: TrainingJob | ModelEndpoint
    patch: dict[str, Any]
    events: list[LifecycleEvent] = field(default_factory=list)
    mark: tuple[Any, ...] | None = None  # story_mark of the written status; None: tells nothing

    @property
    def writes(self) -> int:
        return 1 + len(self.events)


def execute_training(
    kube: Kube,
    plan: TrainingPlan,
    jobs: list[TrainingJob],
    endpoints: list[ModelEndpoint],
    refreshed: dict[str, float],
    refused: Callable[[dict[str, Any], ApiException], None] | None = None,
    *,
    told: dict[str, tuple[Any, ...]] | None = None,
) -> None:
    """Deletes finished attempts, creates new ones, then writes each status that changed, followed by
    the Events its change of phase or condition tells: every such change at once; the first statuses
    of newly queued jobs (oldest first) and mere queue refreshes (stalest first) only within what the
    tick's write budget leaves, an Event counting as a write.
    Each step finishes before the next starts, so a status never names a Job not yet written."""
    told = {} if told is None else told
    owners: dict[str, TrainingJob | ModelEndpoint] = {key_of(j): j for j in jobs}
    owners.update({f"me:{e.namespace}/{e.name}": e for e in endpoints})
    now = datetime.now(UTC)
    changes: list[StatusWrite] = []
    refreshes: list[tuple[float, str, StatusWrite]] = []
    entries: list[tuple[str, str, StatusWrite]] = []
    for key, (fields, outcome) in plan.statuses.items():
        owner = owners[key]
        current = owner.status.to_wire() if owner.status else {}
        if not (patch := status_patch(owner, current, fields, outcome, now)):
            continue
        if is_queue_refresh(current, patch):
            # A refresh changes no phase or condition, so it tells nothing; with thousands queued,
            # working out its Events every tick would cost for nothing.
            refreshes.append((refreshed.get(key, 0.0), key, StatusWrite(key, owner, patch)))
            continue
        write = plan_status_write(key, owner, current, patch, told.get(key))
        if is_queue_entry(current, patch):
            entries.append((str(owner.metadata.get("creationTimestamp", "")), key, write))
        else:
            changes.append(write)
    decided = len(plan.delete) + len(plan.apply) + sum(w.writes for w in changes)
    room = max(TICK_WRITES - decided, REPORT_WRITES_MIN)
    entered = take_within([w for *_, w in sorted(entries, key=lambda e: e[:2])], QUEUE_ENTRIES_PER_TICK, room)
    left = room - sum(w.writes for w in entered)
    chosen = take_within(
        [w for *_, w in sorted(refreshes, key=lambda r: r[:2])], QUEUE_REFRESHES_PER_TICK, left
    )
    changes += entered + chosen

    def write_status(write: StatusWrite) -> None:
        owner = write.owner
        kube.patch_status(API_VERSION, owner.info.kind, owner.name, owner.namespace, write.patch)
        record_lifecycle_events(kube, owner, write.events)
        if write.mark is not None:
            told[write.key] = write.mark

    with ThreadPoolExecutor(WRITERS) as writers:
        in_parallel(writers, lambda ref: kube.delete("batch/v1", "Job", ref[1], ref[0]), plan.delete)
        in_parallel(writers, lambda obj: apply_child(kube, obj, refused), plan.apply)
        in_parallel(writers, write_status, changes)
    for write in chosen:
        refreshed[write.key] = now.timestamp()
    for memory in (refreshed, told):
        for key in set(memory) - set(owners):
            del memory[key]


def plan_status_write(
    key: str,
    owner: TrainingJob | ModelEndpoint,
    current: dict[str, Any],
    patch: dict[str, Any],
    told: tuple[Any, ...] | None,
) -> StatusWrite:
    """The write of `patch` with the Events it tells, none when they were told already."""
    kind = owner.info.kind
    mark = story_mark(kind, merge_status(current, patch))
    events = [] if mark == told else construct_lifecycle_events(kind, current, patch)
    return StatusWrite(key, owner, patch, events, mark)


def take_within(writes: list[StatusWrite], limit: int, room: int) -> list[StatusWrite]:
    """The first writes, at most `limit` of them and at most `room` API writes in all."""
    taken: list[StatusWrite] = []
    for write in writes[:limit]:
        if write.writes > room:
            break
        taken.append(write)
        room -= write.writes
    return taken


def record_lifecycle_events(
    kube: Kube, owner: TrainingJob | ModelEndpoint, events: list[LifecycleEvent]
) -> None:
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


def in_parallel(writers: ThreadPoolExecutor, write: Callable[[Any], Any], items: list[Any]) -> None:
    """Every write is attempted; the first failure is raised once all have finished."""
    failures = [f.exception() for f in [writers.submit(write, item) for item in items]]
    if errors := [e for e in failures if e is not None]:
        raise errors[0]


def is_queue_entry(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    """A job the loop has not reported on yet (`current`: its stored status), to be reported as queued."""
    return not current.get("phase") and patch.get("phase") == "Queued"


def is_queue_refresh(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    """A queued job staying queued, with its conditions' types, states and reasons unchanged: only
    its position or the wording of why it waits moved."""
    if current.get("phase") != "Queued" or patch.get("phase", "Queued") != "Queued":
        return False

    def states(conditions: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {(c.get("type"), c.get("status"), c.get("reason")) for c in conditions}

    return "conditions" not in patch or states(patch["conditions"]) == states(current.get("conditions") or [])


def status_patch(
    job: TrainingJob | ModelEndpoint,
    current: dict[str, Any],
    fields: dict[str, Any],
    outcome: Outcome,
    now: datetime,
) -> dict[str, Any]:
    """The merge patch from the stored status (`current`, as on the wire) to the wanted one; empty
    when nothing changed."""
    existing = list(current.get("conditions") or [])
    wanted = {
        **fields,
        "observedGeneration": job.generation,
        "conditions": construct_conditions(outcome, existing, generation=job.generation, now=now),
    }
    patch = {k: v for k, v in wanted.items() if current.get(k) != v and not (v is None and k not in current)}
    return patch
