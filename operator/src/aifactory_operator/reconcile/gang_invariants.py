"""Checks of the admission bookkeeping against the cluster, every tick, and their repairs (pure).

The protocol (gang_protocol.py) is meant to make these impossible; the monitor is there because a
promise is only as good as the check that it holds. Each breach is counted, told as a Warning
Event, and repaired by withdrawing the attempt that cannot start: it is re-queued on a new attempt
without spending maxRestarts, so no gang stays stuck.

- node-overcommitted: bound pods + holds exceed a node's allocatable for some resource; the gangs
  holding it for workers not bound yet are withdrawn, most recently admitted first, until it fits.
- placement-mismatch: a status names other nodes than its attempt's Job pins; the status is
  rewritten from the Job (adoption), and the over-commit check then sees the truth.
- gang-unschedulable: a worker of an admitted attempt has been unschedulable longer than the
  grace period (something the ledger cannot see holds its node); the attempt is withdrawn.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .gang_views import UnschedulablePod
from .ledger import GangHold, Ledger, unbound_holders
from .nodepools import PodOnNode

OVERCOMMITTED = "node-overcommitted"
MISMATCH = "placement-mismatch"
UNSCHEDULABLE = "gang-unschedulable"
INVARIANTS = (OVERCOMMITTED, MISMATCH, UNSCHEDULABLE)


@dataclass(frozen=True)
class Breach:
    invariant: str
    key: str  # namespace/name of the TrainingJob repaired
    attempt: int
    message: str
    withdraw: bool  # the attempt is taken back (else the status alone is corrected)


def check_overcommit(
    ledger: Ledger, holds: list[GangHold], pods: list[PodOnNode], withdrawable: set[str]
) -> list[Breach]:
    """Withdraws, per over-committed node, the latest admitted gangs not started there until it fits."""
    breaches: list[Breach] = []
    for node, short in sorted(ledger.overcommitted().items()):
        for hold in unbound_holders(holds, pods, node):
            if not short:
                break
            if hold.key not in withdrawable or any(b.key == hold.key for b in breaches):
                continue
            for name in hold.nodes:
                ledger.add(name, ((r, -a) for r, a in hold.worker))
            breaches.append(
                Breach(
                    OVERCOMMITTED,
                    hold.key,
                    hold.attempt,
                    f"node {node} was over-committed ({', '.join(short)}) with attempt {hold.attempt} on it",
                    withdraw=True,
                )
            )
            short = ledger.overcommitted().get(node, [])
    return breaches


def check_unschedulable(
    admitted: Mapping[str, int],
    unschedulable: Mapping[str, Iterable[UnschedulablePod]],
    now: datetime,
    grace_seconds: float,
) -> list[Breach]:
    """Admitted attempts (key -> attempt) with a worker unschedulable for longer than the grace."""
    breaches = []
    for key, attempt in sorted(admitted.items()):
        for pod in unschedulable.get(key, ()):
            if pod.attempt != str(attempt) or not pod.since:
                continue
            waited = (now - datetime.fromisoformat(pod.since)).total_seconds()
            if waited >= grace_seconds:
                breaches.append(
                    Breach(
                        UNSCHEDULABLE,
                        key,
                        attempt,
                        f"worker {pod.name} of attempt {attempt} was unschedulable for {int(waited)}s:"
                        f" {pod.message}",
                        withdraw=True,
                    )
                )
                break
    return breaches


def mismatch_breach(key: str, attempt: int, status_nodes: list[str], job_nodes: tuple[str, ...]) -> Breach:
    return Breach(
        MISMATCH,
        key,
        attempt,
        f"status named nodes {sorted(status_nodes)} but the Job of attempt {attempt} pins {list(job_nodes)};"
        " the status now follows the Job",
        withdraw=False,
    )
