"""The capacity ledger of one factory: per node, what is allocatable and what is taken (pure).

Taken = requests of the pods bound there + what admitted gangs hold there for workers not bound
yet + what admitted endpoints hold for replicas not bound yet. Every resource the pods request
counts (GPUs, CPU, memory, any extended resource), because a node with free GPUs and no free
memory cannot start a worker either. Gang holds come from the gangs' Jobs, the durable record of
where each gang runs (see docs/gang-admission.md), never from a status that may lag behind them.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..constants import GPU_RESOURCE
from .nodepools import PodOnNode
from .resources import SCALE, Amounts, FrozenAmounts


@dataclass(frozen=True)
class GangHold:
    """Nodes an admitted gang's attempt holds, one worker each, until its pods are bound there."""

    key: str  # namespace/name of the TrainingJob
    attempt: int
    nodes: tuple[str, ...]
    worker: FrozenAmounts  # what one worker requests
    admitted: str = ""  # when the attempt was admitted, for choosing whom to withdraw


@dataclass
class Ledger:
    allocatable: dict[str, Amounts]
    taken: dict[str, Amounts] = field(default_factory=dict)

    def add(self, node: str, amounts: Iterable[tuple[str, int]]) -> None:
        used = self.taken.setdefault(node, {})
        for name, amount in amounts:
            used[name] = used.get(name, 0) + amount

    def free(self, node: str) -> Amounts:
        used = self.taken.get(node, {})
        return {name: amount - used.get(name, 0) for name, amount in self.allocatable.get(node, {}).items()}

    def free_gpus(self, node: str) -> int:
        return self.free(node).get(GPU_RESOURCE, 0) // SCALE

    def overcommitted(self) -> dict[str, list[str]]:
        """Nodes where more is taken than allocatable, with the resources short, by node name."""
        over = {}
        for node, used in self.taken.items():
            if node not in self.allocatable:
                continue
            offered = self.allocatable[node]
            if short := sorted(name for name, amount in used.items() if amount > offered.get(name, 0)):
                over[node] = short
        return over


def construct_ledger(
    allocatable: Mapping[str, Amounts], pods: Iterable[PodOnNode], holds: Iterable[GangHold]
) -> Ledger:
    """The ledger of the given nodes: a worker whose pod is bound counts once, as that pod."""
    ledger = Ledger({name: dict(amounts) for name, amounts in allocatable.items()})
    bound: set[tuple[str, str, str]] = set()
    for pod in pods:
        if pod.node in ledger.allocatable:
            ledger.add(pod.node, pod.requests or ((GPU_RESOURCE, pod.gpus * SCALE),))
        if pod.training_job:
            bound.add((pod.training_job, pod.attempt, pod.node))
    for hold in holds:
        for node in hold.nodes:
            if node in ledger.allocatable and (hold.key, str(hold.attempt), node) not in bound:
                ledger.add(node, hold.worker)
    return ledger


def unbound_holders(holds: Iterable[GangHold], pods: Iterable[PodOnNode], node: str) -> list[GangHold]:
    """The gangs holding `node` for a worker not bound there yet, most recently admitted first:
    those are the ones to withdraw when the node is over-committed (they have not started)."""
    bound = {(p.training_job, p.attempt) for p in pods if p.node == node and p.training_job}
    holding = [h for h in holds if node in h.nodes and (h.key, str(h.attempt)) not in bound]
    return sorted(holding, key=lambda h: (h.admitted, h.key), reverse=True)
