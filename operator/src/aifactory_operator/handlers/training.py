"""The per-factory training loop: one serialized admission and life-cycle decision per tick."""

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api.v1alpha1 import AIFactory, Dataset, ModelEndpoint, TrainingJob
from ..constants import API_VERSION, GROUP, VERSION
from ..kube.client import Kube
from ..metrics import RECONCILES, TRAINING_ADMISSION_LATENCY, forget_training, publish_training
from ..reconcile.conditions import Outcome, construct_conditions
from ..reconcile.parsing import InvalidSpec, parse_resource
from ..reconcile.training import BatchJob, TrainingConfig, TrainingPlan, key_of, plan_training
from .indexes import snapshot_nodes, snapshot_pods, snapshot_values
from .runtime import count_error, kube, measured

TICK_SECONDS = float(os.environ.get("AIFACTORY_TRAINING_TICK_SECONDS", "1"))
CONFIG = TrainingConfig(
    starvation_seconds=float(os.environ.get("AIFACTORY_STARVATION_SECONDS", "300")),
    backoff_seconds=float(os.environ.get("AIFACTORY_RESTART_BACKOFF_SECONDS", "10")),
)


@kopf.daemon(GROUP, VERSION, "aifactories", cancellation_timeout=10)
async def run_training(
    stopped: kopf.DaemonStopped, body: kopf.Body, logger: kopf.Logger, **kwargs: Any
) -> None:
    """Admits and follows every TrainingJob of this factory, one decision at a time (kopf passes
    every index among `kwargs`, by name; plan_tick takes those it reads)."""
    admitted: set[str] = set()  # jobs whose first admission was observed, in case the index lags
    parsed = ParsedModels()
    while not stopped:
        try:
            factory = parse_resource(AIFactory, dict(body))
        except InvalidSpec:
            await stopped.wait(TICK_SECONDS)
            continue
        with measured("TrainingJob"):
            await run_tick(factory, logger, admitted, parsed, kwargs)
        await stopped.wait(TICK_SECONDS)
    forget_training(body.metadata.name)


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


async def run_tick(
    factory: AIFactory,
    logger: kopf.Logger,
    admitted: set[str],
    parsed: ParsedModels,
    kwargs: dict[str, Any],
) -> None:
    """Observe (the indexes, in the event loop) -> plan -> write (in a thread) -> report."""
    plan, jobs, endpoints = plan_tick(factory, datetime.now(UTC), parsed=parsed, **kwargs)
    parsed.forget_unasked()
    try:
        await asyncio.to_thread(execute_training, kube(), plan, jobs, endpoints)
    except Exception as error:
        logger.warning(f"Training tick failed factory={factory.name}: {error}")
        count_error("TrainingJob")
        return
    report_tick(factory.name, plan, admitted, {key_of(j) for j in jobs})
    RECONCILES.labels(kind="TrainingJob", outcome="tick").inc()


def plan_tick(
    factory: AIFactory,
    now: datetime,
    *,
    parsed: ParsedModels,
    trainingjobs_by_namespace: kopf.Index[str, dict[str, Any]],
    batch_jobs_by_trainingjob: kopf.Index[str, BatchJob],
    datasets_by_namespace: kopf.Index[str, dict[str, Any]],
    nodes_by_name: kopf.Index[str, Any],
    pods_by_node: kopf.Index[str, Any],
    modelendpoints_by_namespace: kopf.Index[str, dict[str, Any]],
    deployments_by_endpoint: kopf.Index[str, Any],
    **_: Any,
) -> tuple[TrainingPlan, list[TrainingJob], list[ModelEndpoint]]:
    """The factory's jobs and endpoints as the indexes hold them now, and the plan for this tick."""
    namespaces = [ns for tenant in factory.spec.tenants for ns in tenant.namespaces]
    raw_jobs = [j for items in snapshot_values(trainingjobs_by_namespace, namespaces).values() for j in items]
    jobs = [parsed.parse(TrainingJob, j) for j in raw_jobs]
    datasets = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": Dataset.model_validate(d)
        for items in snapshot_values(datasets_by_namespace, namespaces).values()
        for d in items
    }
    batch = snapshot_values(batch_jobs_by_trainingjob, [key_of(j) for j in jobs if j])
    valid = [j for j in jobs if j is not None]
    endpoints = [
        e
        for items in snapshot_values(modelendpoints_by_namespace, namespaces).values()
        for body_ in items
        if (e := parsed.parse(ModelEndpoint, body_)) is not None
    ]
    deployments = {k: v[0] for k, v in snapshot_values(deployments_by_endpoint).items() if v}
    plan = plan_training(
        factory,
        valid,
        batch,
        snapshot_nodes(nodes_by_name),
        snapshot_pods(pods_by_node),
        datasets,
        now=now,
        config=CONFIG,
        endpoints=endpoints,
        deployments=deployments,
    )
    return plan, valid, endpoints


def report_tick(factory: str, plan: TrainingPlan, admitted: set[str], present: set[str]) -> None:
    """Queue length, tenant GPUs and the wait of each job admitted for the first time, once per job."""
    publish_training(factory, plan.queued, plan.tenant_gpus)
    for key, waited in plan.first_admissions.items():
        if key not in admitted:
            TRAINING_ADMISSION_LATENCY.observe(waited)
            admitted.add(key)
    admitted &= present


def execute_training(
    kube: Kube, plan: TrainingPlan, jobs: list[TrainingJob], endpoints: list[ModelEndpoint]
) -> None:
    """Deletes finished attempts, creates new ones, then writes each status that changed."""
    for namespace, name in plan.delete:
        kube.delete("batch/v1", "Job", name, namespace)
    for obj in plan.apply:
        kube.apply(obj)
    owners: dict[str, TrainingJob | ModelEndpoint] = {key_of(j): j for j in jobs}
    owners.update({f"me:{e.namespace}/{e.name}": e for e in endpoints})
    now = datetime.now(UTC)
    for key, (fields, outcome) in plan.statuses.items():
        owner = owners[key]
        if patch := status_patch(owner, fields, outcome, now):
            kube.patch_status(API_VERSION, owner.info.kind, owner.name, owner.namespace, patch)


def status_patch(
    job: TrainingJob | ModelEndpoint, fields: dict[str, Any], outcome: Outcome, now: datetime
) -> dict[str, Any]:
    """The merge patch from the stored status to the wanted one; empty when nothing changed."""
    current = job.status.to_wire() if job.status else {}
    existing = list(current.get("conditions") or [])
    wanted = {
        **fields,
        "observedGeneration": job.generation,
        "conditions": construct_conditions(outcome, existing, generation=job.generation, now=now),
    }
    patch = {k: v for k, v in wanted.items() if current.get(k) != v and not (v is None and k not in current)}
    return patch
