"""Placement quality from pod samples (pure): GPUs busy, gangs stuck half-placed, and whether
each gang's workers shared one NVLink domain or rack."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aifactory_operator.constants import GPU_RESOURCE, LABEL_TRAININGJOB

# Samples (about a second apart) in a row a gang must be seen half placed to count as stuck: a
# gang whose pods are bound a moment apart is half placed for one sample, and is not stuck.
STUCK_SAMPLES = 5


@dataclass(frozen=True)
class PodView:
    """What the quality figures need of one pod."""

    name: str
    gang: str
    phase: str
    node: str
    gpus: int


@dataclass
class Tally:
    """What the samples of one run add up to."""

    samples: int = 0
    gpus_running: int = 0  # summed over samples
    gpus_running_whole: int = 0  # the same, without the GPUs that half-placed gangs hold
    partial_max: int = 0
    partial_last: int = 0
    instants_with_partial: int = 0
    last: list[PodView] = field(default_factory=list)  # the latest sample
    streaks: dict[str, int] = field(default_factory=dict)  # gang -> samples half placed in a row
    stuck: set[str] = field(default_factory=set)  # gangs half placed for STUCK_SAMPLES in a row
    # gang -> pod -> node, for every worker seen running or finished
    worker_nodes: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, pods: list[PodView]) -> None:
        stuck = partial_gangs(pods)
        running = [p for p in pods if p.phase == "Running"]
        self.samples += 1
        self.gpus_running += sum(p.gpus for p in running)
        self.gpus_running_whole += sum(p.gpus for p in running if p.gang not in stuck)
        self.partial_max = max(self.partial_max, len(stuck))
        self.partial_last = len(stuck)
        self.instants_with_partial += bool(stuck)
        self.last = pods
        self.streaks = {gang: self.streaks.get(gang, 0) + 1 for gang in stuck}
        self.stuck |= {gang for gang, streak in self.streaks.items() if streak >= STUCK_SAMPLES}
        for pod in pods:
            if pod.phase in ("Running", "Succeeded") and pod.node:
                self.worker_nodes[pod.gang][pod.name] = pod.node


def view_pod(pod: dict[str, Any]) -> PodView:
    spec = pod.get("spec") or {}
    requests = [c.get("resources", {}).get("requests", {}) for c in spec.get("containers", [])]
    return PodView(
        name=pod["metadata"]["name"],
        gang=(pod["metadata"].get("labels") or {}).get(LABEL_TRAININGJOB, ""),
        phase=(pod.get("status") or {}).get("phase", ""),
        node=spec.get("nodeName") or "",
        gpus=sum(int(r.get(GPU_RESOURCE, 0)) for r in requests),
    )


def partial_gangs(pods: Iterable[PodView]) -> set[str]:
    """Gangs holding GPUs with some workers while others cannot be placed: a Running pod next to
    an unbound Pending one. Workers that merely finish a moment apart do not count."""
    running = {p.gang for p in pods if p.phase == "Running"}
    unbound = {p.gang for p in pods if p.phase == "Pending" and not p.node}
    return running & unbound


def placed_whole(tally: Tally, sizes: dict[str, int]) -> dict[str, list[str]]:
    """Gang -> its workers' nodes, for the gangs every worker of which was seen running."""
    return {
        gang: sorted(nodes.values())
        for gang, nodes in tally.worker_nodes.items()
        if gang in sizes and len(nodes) >= sizes[gang]
    }


def completed_gangs(pods: Iterable[PodView], sizes: dict[str, int]) -> int:
    succeeded: dict[str, int] = defaultdict(int)
    for pod in pods:
        succeeded[pod.gang] += pod.phase == "Succeeded"
    return sum(1 for gang, count in succeeded.items() if gang in sizes and count >= sizes[gang])


def domains_of(nodes: Iterable[str], node_labels: dict[str, dict[str, str]], label: str) -> set[str]:
    return {node_labels.get(node, {}).get(label, node) for node in nodes}


def single_domain_share(
    placed: dict[str, list[str]], node_labels: dict[str, dict[str, str]], label_of: dict[str, str]
) -> float | None:
    """Of the gangs placed whole (gang -> its workers' nodes), the share whose nodes all carry one
    value of the gang's domain label (`label_of`); None when no gang was placed."""
    if not placed:
        return None
    together = sum(len(domains_of(nodes, node_labels, label_of[gang])) == 1 for gang, nodes in placed.items())
    return round(together / len(placed), 3)
