"""AIFactory handlers: parse -> observe -> plan -> apply -> report."""

import asyncio
from collections import defaultdict
from typing import Any

import kopf

from ..api.v1alpha1 import AIFactory
from ..constants import GROUP, VERSION
from ..kube.client import Kube
from ..kube.observe import (
    get_tenant_admin_role,
    list_children,
    list_datasets_by_namespace,
    list_factory_bindings,
    list_factory_names,
    list_namespaces,
    list_volumes,
)
from ..metrics import RECONCILES, forget_pools, publish_pools
from ..reconcile.aifactory import FactoryObservation, FactoryPlan, plan_factory, plan_factory_deletion
from ..reconcile.conditions import Outcome
from ..reconcile.enforcement import construct_enforcement_probe, enforce_patch, is_refused_by_factory
from ..reconcile.nodepools import Node, PodOnNode
from ..reconcile.parsing import InvalidSpec, parse_resource
from ..reconcile.validation import find_factory_problems
from .indexes import snapshot_nodes, snapshot_pods
from .runtime import INSTALLED_BY_HELM, RESYNC_SECONDS, instrumented, kube, report, retry_if_progressing

PLURAL = AIFactory.info.plural
# kopf runs a timer beside the change handlers of the same object, so a resync could overlap a
# slow reconcile (one waiting out a 429) and send the same writes twice; one at a time per factory.
RECONCILING: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.timer(
    GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, idle=RESYNC_SECONDS
)
@instrumented("AIFactory")
async def reconcile_factory(
    body: kopf.Body,
    patch: kopf.Patch,
    logger: kopf.Logger,
    nodes_by_name: kopf.Index[str, Node],
    pods_by_node: kopf.Index[str, PodOnNode],
    **_: Any,
) -> None:
    """Makes the cluster match the factory and reports what is ready."""
    try:
        factory = parse_factory(body)
    except InvalidSpec as invalid:
        RECONCILES.labels(kind="AIFactory", outcome="stalled").inc()
        report(patch, body, invalid.outcome)
        return
    async with RECONCILING[factory.name]:
        nodes, pods = snapshot_nodes(nodes_by_name), snapshot_pods(pods_by_node)
        plan = await asyncio.to_thread(reconcile_once, kube(), factory, nodes, pods)
    if plan.writes:
        logger.debug(f"Wrote {plan.writes} objects factory={factory.name}")
    publish_pools(factory.name, pool_gpus(plan.status["pools"]))
    report(patch, body, plan.outcome, extra=retention_condition(plan.status["retained"]), **plan.status)
    retry_if_progressing(plan.outcome)


def retention_condition(retained: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """DataRetained=True while objects the spec no longer wants are kept because they hold data."""
    if not retained:
        return []
    names = ", ".join(f"{r['kind']} {r['name']}" for r in retained)
    return [
        ("DataRetained", "True", "HoldsData", f"kept because they hold data: {names} (see status.retained)")
    ]


def pool_gpus(pools: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Pool name -> (GPUs allocatable, GPUs in use), as written into status.pools."""
    return {p["name"]: (p.get("gpusAllocatable", 0), p.get("gpusInUse", 0)) for p in pools}


@kopf.on.delete(GROUP, VERSION, PLURAL)
@instrumented("AIFactory")
async def delete_factory(
    body: kopf.Body, logger: kopf.Logger, nodes_by_name: kopf.Index[str, Node], **_: Any
) -> None:
    """Removes the cluster-scoped children and empty namespaces; keeps and reports what holds data."""
    try:
        factory = parse_resource(AIFactory, dict(body))
    except InvalidSpec:
        return
    async with RECONCILING[factory.name]:
        plan = await asyncio.to_thread(delete_once, kube(), factory, snapshot_nodes(nodes_by_name))
    RECONCILING.pop(factory.name, None)
    forget_pools(factory.name)
    RECONCILES.labels(kind="AIFactory", outcome="deleted").inc()
    for kept in plan.status["retained"]:
        message = f"Kept {kept['kind']} {kept['name']} factory={factory.name}: {kept['reason']}"
        logger.info(message)
        await asyncio.to_thread(kube().record_event, dict(body), "Retained", message, warning=True)


def parse_factory(body: kopf.Body) -> AIFactory:
    """The typed factory, or InvalidSpec when the operator cannot act on it."""
    factory = parse_resource(AIFactory, dict(body))
    if problems := find_factory_problems(factory):
        raise InvalidSpec(Outcome.stalled("InvalidSpec", "; ".join(problems)))
    return factory


def reconcile_once(kube: Kube, factory: AIFactory, nodes: list[Node], pods: list[PodOnNode]) -> FactoryPlan:
    """Observe the children, plan, write what differs. Safe to run any number of times."""
    plan = plan_factory(factory, observe(kube, factory, nodes, pods))
    execute(kube, plan)
    unlock_enforced(kube, factory, plan.enforce)
    RECONCILES.labels(kind="AIFactory", outcome=plan.outcome.state).inc()
    return plan


def unlock_enforced(kube: Kube, factory: AIFactory, namespaces: list[str]) -> None:
    """Unlocks each namespace where a pod the factory's policies must refuse is refused by one of
    its bindings; the others stay locked, and the plan's Progressing outcome brings us back."""
    for namespace in namespaces:
        refusal = kube.dry_run_refusal(construct_enforcement_probe(namespace))
        if is_refused_by_factory(refusal, factory.name):
            kube.patch("v1", "Namespace", namespace, enforce_patch())


def delete_once(kube: Kube, factory: AIFactory, nodes: list[Node]) -> FactoryPlan:
    observed = observe(kube, factory, nodes, [])
    plan = plan_factory_deletion(factory, observed)
    execute(kube, plan)
    return plan


def observe(kube: Kube, factory: AIFactory, nodes: list[Node], pods: list[PodOnNode]) -> FactoryObservation:
    return FactoryObservation(
        nodes=nodes,
        pods=pods,
        children=list_children(kube, factory.name),
        namespaces=list_namespaces(kube),
        datasets=list_datasets_by_namespace(kube),
        cluster_role=get_tenant_admin_role(kube),
        volumes=list_volumes(kube, factory.name),
        manages_tenant_role=not INSTALLED_BY_HELM,
        all_bindings=list_factory_bindings(kube),
        factory_names=list_factory_names(kube),
    )


def execute(kube: Kube, plan: FactoryPlan) -> None:
    """Applies, patches and deletes; namespaces are created before what goes inside them."""
    for obj in sorted(plan.apply, key=lambda o: o["kind"] != "Namespace"):
        kube.apply(obj)
    for ref, body in plan.patch:
        kube.patch(ref.api_version, ref.kind, ref.name, body, ref.namespace)
    for ref in plan.delete:
        kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
