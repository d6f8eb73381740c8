"""The AIFactory reconcile plan: which nodes to apply and delete, and the status to report."""

from dataclasses import dataclass, field
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, AIFactoryStatus, PoolStatus
from .conditions import Outcome
from .nodepools import Node, desired_kwok_nodes, summarize_pools, surplus_kwok_nodes


@dataclass(frozen=True)
class FactoryPlan:
    """Everything one reconcile of an AIFactory will do."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    delete_nodes: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=lambda: Outcome.progressing("Reconciling", ""))


def plan_factory(factory: AIFactory, observed_nodes: list[Node]) -> FactoryPlan:
    """Observed nodes -> nodes to apply and delete, and the status fields for what is observed now."""
    pools = summarize_pools(factory, observed_nodes)
    outcome = judge_pools(pools)
    status = AIFactoryStatus(
        observed_generation=factory.generation,
        pools=pools,
        gpus_ready=sum(p.gpus_allocatable for p in pools),
        gpus_desired=sum(p.nodes * p.gpus_per_node for p in factory.spec.node_pools),
    ).to_wire()
    return FactoryPlan(
        apply=desired_kwok_nodes(factory),
        delete_nodes=surplus_kwok_nodes(factory, observed_nodes),
        status=status,
        outcome=outcome,
    )


def judge_pools(pools: list[PoolStatus]) -> Outcome:
    """Ready when every pool has all its nodes ready; otherwise say which pool waits for what."""
    waiting = [p for p in pools if p.nodes_ready < p.nodes_desired]
    if waiting:
        detail = "; ".join(
            f"pool '{p.name}': {p.nodes_ready} of {p.nodes_desired} nodes ready" for p in waiting
        )
        return Outcome.progressing("NodesNotReady", detail)
    gpus = sum(p.gpus_allocatable for p in pools)
    nodes = sum(p.nodes_ready for p in pools)
    return Outcome.ready("FactoryReady", f"{len(pools)} pools, {nodes} nodes and {gpus} GPUs ready")
