"""Prometheus metrics of the operator: what it reconciles and what it writes."""

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "aifactory_reconciles_total", "Reconciles run, by kind and outcome.", ["kind", "outcome"]
)
WRITES = Counter("aifactory_api_writes_total", "API writes sent, by object kind and verb.", ["kind", "verb"])
RECONCILE_SECONDS = Histogram("aifactory_reconcile_seconds", "Time one reconcile took, by kind.", ["kind"])
