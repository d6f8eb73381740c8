"""Prometheus metrics of the operator: what it reconciles and what it writes."""

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "aifactory_reconciles_total", "Reconciles run, by kind and outcome.", ["kind", "outcome"]
)
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
AUDIT_ENTRIES = Counter("aifactory_audit_entries_total", "Entries this process appended to the audit log.")
