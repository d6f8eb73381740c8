"""Prometheus metrics of the operator: what it reconciles and writes, what it admits and refuses, and
the GPUs its factories hold.

Labels stay few and bounded: kinds, verbs and rules are fixed sets; factories, pools and tenants are
what the platform team declared, and their series are removed when the factory, pool or tenant goes
(see `publish`), so that a deleted pool does not report its last value for ever.
"""

import threading
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "aifactory_reconciles_total", "Reconciles run, by kind and outcome.", ["kind", "outcome"]
)
RECONCILE_ERRORS = Counter(
    "aifactory_reconcile_errors_total",
    "Reconciles that failed with an error (kopf retries them), by kind.",
    ["kind"],
)
# Error series exist from the start at zero, so that rate() and alerts see them before the first error.
for _kind in ("AIFactory", "Dataset", "TrainingJob", "ModelEndpoint"):
    RECONCILE_ERRORS.labels(kind=_kind)
WRITES = Counter("aifactory_api_writes_total", "API writes sent, by object kind and verb.", ["kind", "verb"])
RECONCILE_SECONDS = Histogram("aifactory_reconcile_seconds", "Time one reconcile took, by kind.", ["kind"])
POLICY_DENIALS = Counter(
    "aifactory_policy_denials_total",
    "Requests refused by a sovereignty rule, by rule and by the layer that refused it.",
    ["rule", "layer"],
)
ADMISSION_SECONDS = Histogram(
    "aifactory_admission_review_seconds",
    "Time the operator's webhook took to answer, by webhook.",
    ["webhook"],
)
GC_CPU_SECONDS = Counter(
    "aifactory_gc_cpu_seconds_total",
    "CPU time Python's cycle collector spent, by generation (2 walks every object the process holds).",
    ["generation"],
)
AUDIT_ENTRIES = Counter("aifactory_audit_entries_total", "Entries this process appended to the audit log.")
AUDIT_LOG_ENTRIES = Gauge(
    "aifactory_audit_log_entries", "Entries in the audit log (its head's sequence number), as last seen."
)
# A second anchor outside the cluster: once scraped, a head that shrinks or changes hash without growing
# stays in Prometheus' history whatever happens to the log and its anchor ConfigMap.
AUDIT_LOG_HEAD = Gauge(
    "aifactory_audit_log_head",
    "The audit log's head as last written: the entry count as value, the last entry's hash as label.",
    ["hash"],
)

TRAINING_QUEUE_LENGTH = Gauge(
    "aifactory_training_queue_length", "TrainingJobs waiting in phase Queued, by factory.", ["factory"]
)
# Gang admission waits from seconds (free capacity) to days (a full factory): buckets up to a day.
TRAINING_ADMISSION_LATENCY = Histogram(
    "aifactory_training_admission_latency_seconds",
    "Time from a TrainingJob's creation to its first admission.",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, float("inf")),
)
STANDBY_REFUSALS = Counter(
    "aifactory_admission_standby_refusals",
    "Admission calls this replica refused because peering had paused it (its view is stale). Above 0"
    " only while a handover moves the webhook Service's route (docs/install.md).",
)
ADMISSION_INVARIANT_VIOLATIONS = Counter(
    "aifactory_admission_invariant_violations",
    "Breaches of gang admission's invariants the training loop found and repaired, by invariant"
    " (node-overcommitted, placement-mismatch, gang-unschedulable); see docs/gang-admission.md.",
    ["invariant"],
)
POOL_GPUS_ALLOCATABLE = Gauge(
    "aifactory_pool_gpus_allocatable",
    "GPUs allocatable on the ready nodes of a pool (status.pools[].gpusAllocatable).",
    ["factory", "pool"],
)
POOL_GPUS_IN_USE = Gauge(
    "aifactory_pool_gpus_in_use",
    "GPUs requested by pods bound to a pool's nodes (status.pools[].gpusInUse).",
    ["factory", "pool"],
)
TENANT_GPUS_IN_USE = Gauge(
    "aifactory_tenant_gpus_in_use",
    "GPUs of a product held against a tenant's quota by admitted TrainingJobs and ModelEndpoints.",
    ["factory", "tenant", "product"],
)
TENANT_GPU_QUOTA = Gauge(
    "aifactory_tenant_gpu_quota",
    "GPUs of a product a tenant may always hold: its nominal share (spec.tenants[].gpuQuota[].gpus).",
    ["factory", "tenant", "product"],
)
PREEMPTIONS = Counter(
    "aifactory_preemptions",
    "Training gangs stopped (gracefully, to resume from their checkpoint) for a queued job, by"
    " reason: WithinTenant (a job of higher priority of the same tenant) or Reclaim (a tenant taking"
    " back quota it lent); see docs/sharing.md#preemption.",
    ["reason"],
)
TENANT_GPUS_BORROWED = Gauge(
    "aifactory_tenant_gpus_borrowed",
    "GPUs a tenant holds above its share, borrowed from other tenants' idle quota (borrowingLimit).",
    ["factory", "tenant", "product"],
)

# Series published per factory, so that those of a deleted pool or tenant can be removed: removing by a
# partial label set (remove_by_labels) needs a newer prometheus-client than the one we require.
_published: dict[tuple[Gauge, str], set[tuple[str, ...]]] = {}
_lock = threading.Lock()


def publish(gauge: Gauge, factory: str, values: Mapping[tuple[str, ...], float]) -> None:
    """Sets the factory's series of `gauge` to exactly `values` (keyed by the label values that follow
    `factory`) and removes the factory's series that are no longer among them."""
    wanted = {(factory, *labels): value for labels, value in values.items()}
    with _lock:
        key = (gauge, factory)
        for stale in _published.get(key, set()) - set(wanted):
            gauge.remove(*stale)
        for labels, value in wanted.items():
            gauge.labels(*labels).set(value)
        _published[key] = set(wanted)


def publish_pools(factory: str, pools: Mapping[str, tuple[int, int]]) -> None:
    """Pool name -> (GPUs allocatable, GPUs in use)."""
    publish(POOL_GPUS_ALLOCATABLE, factory, {(pool,): gpus for pool, (gpus, _) in pools.items()})
    publish(POOL_GPUS_IN_USE, factory, {(pool,): used for pool, (_, used) in pools.items()})


def publish_training(
    factory: str, queued: int, tenants: Mapping[tuple[str, str], tuple[int, int, int]]
) -> None:
    """The queue length, and (tenant, product) -> (quota, GPUs in use, GPUs borrowed)."""
    TRAINING_QUEUE_LENGTH.labels(factory).set(queued)
    publish(TENANT_GPU_QUOTA, factory, {key: quota for key, (quota, _, _) in tenants.items()})
    publish(TENANT_GPUS_IN_USE, factory, {key: used for key, (_, used, _) in tenants.items()})
    publish(TENANT_GPUS_BORROWED, factory, {key: lent for key, (_, _, lent) in tenants.items()})


def publish_audit_head(entries: int, head: str) -> None:
    """One series for the head: the previous hash's series goes, so the gauge never grows."""
    with _lock:
        AUDIT_LOG_HEAD.clear()
        AUDIT_LOG_HEAD.labels(head).set(entries)
        AUDIT_LOG_ENTRIES.set(entries)


def forget_pools(factory: str) -> None:
    """Removes a deleted factory's pool series."""
    publish_pools(factory, {})


def forget_training(factory: str) -> None:
    """Removes a deleted factory's queue and tenant series."""
    publish_training(factory, 0, {})
    TRAINING_QUEUE_LENGTH.remove(factory)
