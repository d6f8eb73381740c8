"""How one gang's admission is decided once and recorded durably (pure; docs/gang-admission.md).

The decision of an attempt is its Job: the Job named <job>-<attempt> is created (POST, never
applied) pinning the chosen nodes before any status names them, and a name exists once, so an
attempt can be decided once however many ticks or operators race. Every tick then reads an
attempt's placement from, in order:

1. its Job, when the view holds it: the truth about where it runs, whatever a status says;
2. the loop's memory of its own decision, while the watch has not delivered the Job yet;
3. the status, when it names nodes and no Job exists (the Job is created again from it).

And it acts on a job only when its view is at least as new as the loop's own last status write
for it: a lagging watch must never make the loop re-decide or resurrect an attempt it moved past.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..api.v1alpha1.trainingjob import Placement, TrainingJob, TrainingJobStatus
from .gang_views import BatchJob
from .ledger import GangHold
from .resources import FrozenAmounts
from .training_objects import job_name


@dataclass(frozen=True)
class Decided:
    """An admission this process decided and whose Job it created (or tried to)."""

    attempt: int
    nodes: tuple[str, ...]
    domains: tuple[str, ...] = ()
    admitted: str = ""
    uncertain: bool = False  # the create's outcome is unknown (a timeout): read the Job back first


@dataclass
class ProtocolMemory:
    """What the loop remembers of its own writes; lost on restart, when a fresh list replaces it."""

    decided: dict[str, Decided] = field(default_factory=dict)  # job key -> its latest decision
    written: dict[str, int] = field(default_factory=dict)  # job key -> attempt its last status write named
    # node -> until when it is not offered to admission: a gang's worker stayed unschedulable there
    # though the ledger had room (something the ledger cannot see holds it), so a withdrawn gang is
    # not admitted straight back onto it.
    quarantined: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptView:
    """One job's current attempt as the tick sees it."""

    attempt: int
    job: BatchJob | None  # its Job, when the view holds it and it is this TrainingJob's
    foreign: bool  # a Job of that name belongs to an earlier TrainingJob of the same name
    decided: Decided | None  # the loop's own decision, while the Job is not in view
    stale: bool  # the view is older than the loop's own last status write


def view_attempt(
    job: TrainingJob, status: TrainingJobStatus, observed: list[BatchJob], memory: ProtocolMemory, key: str
) -> AttemptView:
    attempt = status.attempt
    name = job_name(job, attempt)
    uid = str(job.metadata.get("uid", ""))
    named = next((b for b in observed if b.name == name), None)
    foreign = named is not None and bool(named.owner_uid) and bool(uid) and named.owner_uid != uid
    ahead = any(b.attempt > attempt and b.owner_uid in ("", uid) for b in observed)
    decided = memory.decided.get(key)
    stale = (
        attempt < memory.written.get(key, -1) or ahead or (decided is not None and decided.attempt > attempt)
    )
    return AttemptView(
        attempt,
        None if foreign else named,
        foreign,
        decided if decided is not None and decided.attempt == attempt else None,
        stale,
    )


def recorded_placement(view: AttemptView, status: TrainingJobStatus, pool: str) -> Placement | None:
    """Where the attempt runs, from the most durable record there is (see the module's docstring)."""
    if view.job is not None and view.job.nodes:
        same = status.placement is not None and _same_nodes(status.placement, view.job.nodes)
        domains = list(status.placement.domains) if same and status.placement else []
        if not domains and view.decided is not None and view.decided.nodes == view.job.nodes:
            domains = list(view.decided.domains)
        return Placement(pool=pool, nodes=list(view.job.nodes), domains=domains)
    if view.decided is not None:
        return Placement(pool=pool, nodes=list(view.decided.nodes), domains=list(view.decided.domains))
    return status.placement if status.placement and status.placement.nodes else None


def is_mismatch(status: TrainingJobStatus, view: AttemptView) -> bool:
    """The status names other nodes than the attempt's Job pins: a decision taken twice."""
    placement = status.placement
    return bool(placement and placement.nodes and view.job and view.job.nodes) and not _same_nodes(
        placement, view.job.nodes if view.job else ()
    )


def _same_nodes(placement: Placement | None, nodes: tuple[str, ...]) -> bool:
    return placement is not None and tuple(sorted(placement.nodes)) == tuple(sorted(nodes))


def job_holds(key: str, observed: list[BatchJob], admitted: str) -> list[GangHold]:
    """What the gang's Jobs hold: every unfinished Job, whichever attempt or owner, on each pinned
    node where the pods view shows no worker bound. A Running attempt too: the pods informer may
    lag the Jobs informer, and a worker whose bound pod it has not delivered yet must still count
    (the protocol test found this). A worker that finished early keeps its node until its Job ends."""
    return [
        GangHold(key, b.attempt, b.nodes, b.requests, admitted)
        for b in observed
        if not b.finished and b.nodes
    ]


def decided_hold(key: str, decided: Decided, worker: FrozenAmounts) -> GangHold:
    return GangHold(key, decided.attempt, decided.nodes, worker, decided.admitted)


def settled_decisions(
    memory: ProtocolMemory, attempts: Mapping[str, tuple[int, bool]]
) -> tuple[set[str], set[str]]:
    """Memory the view has caught up with: decisions whose Job is in view (or whose attempt moved
    on), and written attempts the view shows. `attempts`: key -> (attempt seen, its Job in view)."""
    decided = {
        key
        for key, d in memory.decided.items()
        if key not in attempts
        or attempts[key][0] > d.attempt
        or (attempts[key][0] == d.attempt and attempts[key][1])
    }
    written = {key for key, a in memory.written.items() if key not in attempts or attempts[key][0] >= a}
    return decided, written
