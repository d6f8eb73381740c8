"""Python's cycle collector, tuned for a process that holds every watched object of its factories.

CPython collects its youngest generation every 700 net allocations. A training tick over thousands
of jobs builds objects that live for the whole tick (statuses, requests, Job manifests); they survive
two young collections, reach the oldest generation, and soon trigger a full collection, which walks
everything the watches hold. Under bench/training_e2e.py that was a fifth of the operator's CPU.
A first threshold in the tens of thousands lets such objects die of reference counting before a
collection sees them; cycles still go, only later.
"""

import gc
import time
from typing import Any

from .metrics import GC_CPU_SECONDS


class CollectorClock:
    """Adds the CPU time of each collection to aifactory_gc_cpu_seconds_total. Thread CPU time, not
    wall time: a collection that runs finalizers can hand the interpreter lock to other threads,
    and their work is not the collector's. Collections never overlap, so one start time is enough."""

    def __init__(self) -> None:
        self.started = 0.0
        for generation in range(3):  # every series from the start, at zero, for rate()
            GC_CPU_SECONDS.labels(generation=str(generation))

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.thread_time()
        else:
            GC_CPU_SECONDS.labels(generation=str(info["generation"])).inc(time.thread_time() - self.started)


def tune_collector(threshold: tuple[int, int, int]) -> None:
    """Sets the thresholds (AIFACTORY_GC_THRESHOLD, see settings.py) and starts timing collections."""
    gc.set_threshold(*threshold)
    if not any(isinstance(c, CollectorClock) for c in gc.callbacks):
        gc.callbacks.append(CollectorClock())
