"""ModelEndpoints in the factory's shared GPU accounting (pure): reserve replicas.min x GPUs like a
gang, let the autoscaler grow only into free capacity and quota, and roll without going below min."""

from dataclasses import dataclass, field
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, NodePool, Tenant
from ..api.v1alpha1.dataset import Dataset
from ..api.v1alpha1.modelendpoint import ModelEndpoint
from ..policy.data_use import DataUse, check_data_use, check_pool_use
from ..policy.violations import Violation
from .admission import Request
from .conditions import Outcome
from .serving_objects import (
    construct_autoscaler,
    construct_client_policy,
    construct_deployment,
    construct_disruption_budget,
    construct_service,
    model_version,
)

Obj = dict[str, Any]
SERVING_PRIORITY = 1_000_000_000  # an endpoint's minimum is admitted before queued training


@dataclass(frozen=True)
class DeploymentView:
    """What the plan needs of an observed Deployment."""

    replicas: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0
    generation: int = 0
    observed_generation: int = 0
    version: str = ""
    surge: bool = True


@dataclass
class Endpoint:
    endpoint: ModelEndpoint
    tenant: Tenant
    pool: NodePool
    model: Dataset
    status: Obj
    deployment: DeploymentView | None
    outcome: Outcome | None = None
    apply: list[Obj] = field(default_factory=list)
    shed: int = 0  # replicas to give back this tick: borrowed GPUs their lender reclaims

    @property
    def key(self) -> str:
        return f"me:{self.endpoint.namespace}/{self.endpoint.name}"

    @property
    def admitted(self) -> bool:
        return int(self.status.get("reservedGpus", 0)) > 0

    @property
    def replicas(self) -> int:
        spec = self.endpoint.spec.replicas
        observed = self.deployment.replicas if self.deployment else spec.min
        return max(spec.min, min(observed, spec.max))

    @property
    def gpus(self) -> int:
        return self.replicas * self.endpoint.spec.gpus_per_replica


def find_endpoint_problems(
    factory: AIFactory,
    endpoint: ModelEndpoint,
    tenant: Tenant | None,
    pool: NodePool | None,
    model: Dataset | None,
) -> list[Violation]:
    """Reasons the endpoint can never serve here, each with its field path."""
    if tenant is None:
        return [
            Violation("tenancy", "metadata.namespace", f"'{endpoint.namespace}' is not a tenant namespace")
        ]
    if pool is None:
        names = [p.name for p in factory.spec.node_pools]
        return [
            Violation(
                "pool", "spec.pool", f"the factory has no pool '{endpoint.spec.pool}'; use one of {names}"
            )
        ]
    if model is None:
        return [
            Violation("dataset", "spec.model", f"no Dataset '{endpoint.spec.model}' in {endpoint.namespace}")
        ]
    problems = []
    if model.spec.purpose != "model":
        problems.append(
            Violation(
                "dataset", "spec.model", f"Dataset '{model.name}' has purpose {model.spec.purpose}, not model"
            )
        )
    if endpoint.spec.gpus_per_replica > pool.gpus_per_node:
        problems.append(
            Violation(
                "capacity",
                "spec.gpusPerReplica",
                f"{endpoint.spec.gpus_per_replica} exceeds the {pool.gpus_per_node} GPUs of a node",
            )
        )
    use = DataUse("spec.model", model.spec.jurisdiction, model.spec.classification)
    problems += check_data_use(factory, tenant, pool, use)
    problems += check_pool_use(factory, tenant, pool, "spec.pool")
    return problems + find_minimum_problems(endpoint, tenant, pool)


def find_minimum_problems(endpoint: ModelEndpoint, tenant: Tenant, pool: NodePool) -> list[Violation]:
    """A minimum that no amount of waiting can reserve: more replicas than the whole pool holds, or
    more GPUs than the tenant may ever hold. (One that only waits for GPUs in use is not a problem:
    it is Reconciling, not Stalled.)"""
    spec = endpoint.spec
    problems = []
    per_node = pool.gpus_per_node // spec.gpus_per_replica if spec.gpus_per_replica else spec.replicas.min
    if 0 < spec.gpus_per_replica <= pool.gpus_per_node and spec.replicas.min > pool.nodes * per_node:
        problems.append(
            Violation(
                "capacity",
                "spec.replicas.min",
                f"{spec.replicas.min} replicas of {spec.gpus_per_replica} GPUs exceed the"
                f" {pool.nodes * per_node} that pool '{pool.name}' holds",
            )
        )
    quota = sum(q.gpus for q in tenant.gpu_quota if q.product == pool.gpu_product)
    if quota < spec.replicas.min * spec.gpus_per_replica:
        problems.append(
            Violation(
                "quota",
                "spec.replicas.min",
                f"the endpoint needs {spec.replicas.min * spec.gpus_per_replica} {pool.gpu_product} GPUs"
                f" but tenant '{tenant.name}' may hold {quota}",
            )
        )
    return problems


def endpoint_request(item: Endpoint) -> Request:
    """An endpoint's minimum, as a gang the admission places like training (any node of the pool)."""
    spec = item.endpoint.spec
    return Request(
        key=item.key,
        tenant=item.tenant.name,
        pool=item.pool.name,
        product=item.pool.gpu_product,
        nodes=spec.replicas.min,
        gpus_per_node=spec.gpus_per_replica,
        priority=SERVING_PRIORITY,
        created=str(item.endpoint.metadata.get("creationTimestamp", "")),
    )


def finish_endpoint(
    item: Endpoint, factory_name: str, room: int, quota_left: int, jurisdiction: str = ""
) -> None:
    """Children and status of an admitted endpoint; `room` = further replicas free capacity holds."""
    allowed, replicas = replica_bounds(item, room, quota_left)
    surge = room >= 1 or replicas == item.endpoint.spec.replicas.min
    queue_children(item, factory_name, allowed, replicas, surge, jurisdiction)
    report_serving(item, allowed, replicas, model_version(item.model))


def replica_bounds(item: Endpoint, room: int, quota_left: int) -> tuple[int, int]:
    """(the autoscaler's ceiling, the replicas to run): never below min, never beyond what free GPUs
    and the tenant's quota hold on top of the replicas already running, less what it sheds."""
    spec = item.endpoint.spec
    per_replica = max(spec.gpus_per_replica, 1)
    allowed = min(spec.replicas.max, item.replicas + room, item.replicas + quota_left // per_replica)
    if item.shed:
        allowed = min(allowed, item.replicas - item.shed)
    allowed = max(allowed, spec.replicas.min)
    return allowed, min(item.replicas, allowed)


def queue_children(
    item: Endpoint, factory_name: str, allowed: int, replicas: int, surge: bool, jurisdiction: str
) -> None:
    """Queues each child only when what it is made from changed: capacity moving the autoscaler's
    ceiling rewrites the HPA alone, never the Deployment (which would roll the pods)."""
    version = model_version(item.model)
    deployment = item.deployment
    observed_generation = item.endpoint.status.observed_generation if item.endpoint.status else None
    new_spec = deployment is None or observed_generation != item.endpoint.generation
    shape = (deployment.replicas, deployment.surge, deployment.version) if deployment else None
    if new_spec or shape != (replicas, surge, version):
        item.apply.append(
            construct_deployment(
                item.endpoint, item.pool, factory_name, item.model, replicas, surge, jurisdiction
            )
        )
    if new_spec or int(item.status.get("maxReplicasAllowed", 0)) != allowed:
        item.apply.append(construct_autoscaler(item.endpoint, allowed))
    if new_spec:
        budget = construct_disruption_budget(item.endpoint)
        item.apply += [
            construct_service(item.endpoint),
            construct_client_policy(item.endpoint),
            *([budget] if budget else []),
        ]


def report_serving(item: Endpoint, allowed: int, replicas: int, version: str) -> None:
    """Status and outcome from the Deployment as observed: the digest served changes only once the
    rollout of the new one has finished."""
    spec = item.endpoint.spec
    deployment = item.deployment
    ready = deployment.ready if deployment else 0
    rolled = (
        deployment is not None
        and deployment.version == version
        and deployment.observed_generation >= deployment.generation
        and deployment.updated >= deployment.replicas
    )
    served = version if rolled else item.status.get("servedDigest")
    held = (
        f"scaling held back at {allowed} of {spec.replicas.max} replicas by free GPUs or quota"
        if allowed < spec.replicas.max
        else None
    )
    item.status.update(
        readyReplicas=ready,
        desiredReplicas=replicas,
        url=f"http://{item.endpoint.name}.{item.endpoint.namespace}.svc:{spec.runtime.port}",
        reservedGpus=replicas * spec.gpus_per_replica,
        maxReplicasAllowed=allowed,
        reason=held,
        rollingOutDigest=None if rolled else version if version.startswith("sha256:") else None,
        servedDigest=served if served and str(served).startswith("sha256:") else None,
    )
    if ready >= spec.replicas.min:
        item.outcome = Outcome.ready("Serving", f"{ready} of {replicas} replicas ready")
    else:
        item.outcome = Outcome.progressing(
            "Starting", f"{ready} of {spec.replicas.min} minimum replicas ready"
        )
