"""ModelEndpoints in the training loop's accounting: which may take part, what they hold, and
their children and status once admitted (pure). Serving and training share one ledger, so a
replica and a gang never count the same GPUs twice."""

from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, NodePool, Tenant
from ..api.v1alpha1.dataset import Dataset
from ..api.v1alpha1.modelendpoint import ModelEndpoint
from ..constants import GPU_RESOURCE
from .admission import Decision, NodeSlot
from .conditions import Outcome
from .ledger import Ledger
from .nodepools import PodOnNode
from .podsecurity import node_share
from .quota_book import QuotaBook
from .resources import Amounts, fits, parse_amounts
from .serving import DeploymentView, Endpoint, find_endpoint_problems, finish_endpoint

Obj = dict[str, Any]
Statuses = dict[str, tuple[Obj, Outcome]]


def endpoint_items(
    factory: AIFactory,
    endpoints: list[ModelEndpoint],
    deployments: dict[str, DeploymentView],
    datasets: dict[str, Dataset],
    tenants: dict[str, Tenant],
    pools: dict[str, NodePool],
    statuses: Statuses,
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
            statuses[f"me:{key}"] = (status, Outcome.stalled("Refused", "; ".join(str(p) for p in problems)))
            continue
        assert tenant is not None and pool is not None and model is not None
        items.append(Endpoint(endpoint, tenant, pool, model, status, deployments.get(key)))
    return items


def replica_amounts(pool: NodePool, gpus: int) -> Amounts:
    """What one replica (or worker) requests, as its pod template asks for it. Parsed once per
    shape: every queued job asks each tick, and quantity parsing is the slow part. Callers must
    not change the dict returned."""
    key = (pool.gpus_per_node, pool.cpus_per_node, pool.memory_per_node, gpus)
    if key not in _SHARES:
        _SHARES[key] = parse_amounts(node_share(pool, gpus, GPU_RESOURCE)["requests"])
    return _SHARES[key]


_SHARES: dict[tuple[int, int, str, int], Amounts] = {}


def hold_replicas(ledger: Ledger, item: Endpoint, slots: list[NodeSlot], pods: list[PodOnNode]) -> None:
    """Keeps room for the replicas an admitted endpoint is owed whose pods are not bound yet, on
    the tightest nodes of its pool (GPUs first), as the scheduler will place them."""
    name = f"{item.endpoint.namespace}/{item.endpoint.name}"
    bound = sum(1 for p in pods if p.endpoint == name)
    need = replica_amounts(item.pool, item.endpoint.spec.gpus_per_replica)
    nodes = [s.name for s in slots if s.pool == item.pool.name]
    for _ in range(max(item.replicas - bound, 0)):
        fitting = [n for n in nodes if fits(need, ledger.free(n))]
        if not fitting:
            return
        chosen = min(fitting, key=lambda n: (ledger.free_gpus(n), n))
        ledger.add(chosen, need.items())


def settle_endpoint(
    factory: AIFactory,
    item: Endpoint,
    decision: Decision,
    free_gpus: dict[str, int],
    quota: QuotaBook,
    statuses: Statuses,
    apply: list[Obj],
    borrow: bool = False,
) -> None:
    """Admitted (now or before): children and status; still waiting: Reconciling with the reason.
    Waiting for GPUs is not Stalled: the spec is sound and the endpoint starts once capacity frees
    up, so kstatus must see it in progress, not failed."""
    per_replica = max(item.endpoint.spec.gpus_per_replica, 1)
    if not item.admitted and item.key not in decision.admitted:
        reason = decision.waiting.get(item.key, "waiting for capacity")
        item.status.update(reason=f"cannot reserve replicas.min: {reason}", reservedGpus=0)
        statuses[item.key] = (item.status, Outcome.progressing("InsufficientCapacity", item.status["reason"]))
        return
    room = sum(max(free, 0) // per_replica for free in free_gpus.values())
    # Endpoints grow within their tenant's own share, and on borrowed quota only when the factory
    # may reclaim it (they then give it back first: shed_borrowed_replicas).
    key = (item.tenant.name, item.pool.gpu_product)
    quota_left = quota.room(key) if borrow else max(quota.left(key), 0)
    finish_endpoint(item, factory.name, room, quota_left, factory.spec.sovereignty.jurisdiction)
    apply.extend(item.apply)
    assert item.outcome is not None
    statuses[item.key] = (item.status, item.outcome)


def shed_borrowed_replicas(items: list[Endpoint], claims: QuotaBook) -> None:
    """Sets `shed` on admitted endpoints whose replicas above min hold borrowed GPUs that their
    lenders want back (`claims` holds what each tenant's queue wants): per product, what borrowers
    hold beyond what lenders leave idle is given back by endpoints first, largest growth first, in
    whole replicas and never below replicas.min. Training gangs are reclaimed only after that."""
    for product in sorted({i.pool.gpu_product for i in items if i.admitted}):
        over = -claims.cohort_free(product)
        growing = [i for i in items if i.admitted and i.pool.gpu_product == product]
        for item in sorted(growing, key=lambda i: (-(i.replicas - i.endpoint.spec.replicas.min), i.key)):
            key = (item.tenant.name, product)
            per_replica = max(item.endpoint.spec.gpus_per_replica, 1)
            owed = min(over, claims.borrowed(key))
            if owed <= 0:
                continue
            item.shed = min(item.replicas - item.endpoint.spec.replicas.min, -(-owed // per_replica))
            claims.give_back(key, item.shed * per_replica)
            over -= item.shed * per_replica
