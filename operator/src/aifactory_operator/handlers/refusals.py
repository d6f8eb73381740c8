"""Recording refusals: a metric at once, then an Event and a hash-chained audit entry written by a
background thread, so that an admission answer never waits on those writes."""

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from ..constants import OPERATOR_NAMESPACE
from ..kube.auditlog import AuditLog
from ..kube.client import Kube
from ..metrics import AUDIT_ENTRIES, POLICY_DENIALS, publish_audit_head
from ..policy.violations import Violation
from .runtime import now

logger = logging.getLogger(__name__)
BATCH = 100


@dataclass(frozen=True)
class Refusal:
    """One refused request and the rules it broke."""

    violations: list[Violation]
    layer: str  # "webhook" (refused by the operator) or "admission-policy" (by kube-apiserver)
    operation: str
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    user: str

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "rule": v.rule,
                "path": v.path,
                "message": v.message,
                "layer": self.layer,
                "operation": self.operation,
                "kind": self.kind,
                "namespace": self.namespace,
                "name": self.name,
                "user": self.user,
            }
            for v in self.violations
        ]

    def involved(self) -> dict[str, Any]:
        """The object when it exists (an update), else its namespace (a refused creation)."""
        if self.operation == "UPDATE" and self.uid:
            meta = {"name": self.name, "namespace": self.namespace, "uid": self.uid}
            return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}


@dataclass(frozen=True)
class AuditNote:
    """Audit entries of a decision the operator took itself (a preemption): its Events are told
    by the loop that took it, with the statuses they narrate."""

    entries: list[dict[str, Any]]

    def records(self) -> list[dict[str, Any]]:
        return self.entries


class RefusalRecorder:
    """Counts each refusal, then posts its Event and appends its audit entries in the background."""

    def __init__(self, kube: Kube, namespace: str = OPERATOR_NAMESPACE) -> None:
        self.kube = kube
        self.log = AuditLog(kube, namespace)
        self.pending: queue.Queue[Refusal | AuditNote | None] = queue.Queue()
        self.thread = threading.Thread(target=self._drain, name="refusal-recorder", daemon=True)
        self.thread.start()

    def record(self, refusal: Refusal) -> None:
        for violation in refusal.violations:
            POLICY_DENIALS.labels(rule=violation.rule, layer=refusal.layer).inc()
        self.pending.put(refusal)

    def note(self, entries: list[dict[str, Any]]) -> None:
        """Appends audit entries in the background, with no Event."""
        self.pending.put(AuditNote(entries))

    def stop(self) -> None:
        """Writes what is queued, then ends the thread."""
        self.pending.put(None)
        self.thread.join(timeout=30)

    def _drain(self) -> None:
        self._read_log_length()
        while True:
            batch = [self.pending.get()]
            while len(batch) < BATCH and not self.pending.empty():
                batch.append(self.pending.get())
            refusals = [r for r in batch if r is not None]
            try:
                self._write(refusals)
            except Exception:  # the thread must outlive one failed write
                logger.exception("Failed to record refusals count=%d", len(refusals))
            if None in batch:
                return

    def _read_log_length(self) -> None:
        """The log's head at startup, anchored if a crash left the anchor behind; read here so that
        starting the operator never waits on it."""
        try:
            head = self.log.anchor()
            publish_audit_head(head.entries, head.head)
        except Exception:
            logger.exception("Failed to read the audit log's head namespace=%s", self.log.namespace)

    def _write(self, refusals: list[Refusal | AuditNote]) -> None:
        if not refusals:
            return
        records = [record for refusal in refusals for record in refusal.records()]
        written = self.log.append(records, now=now())
        AUDIT_ENTRIES.inc(len(records))
        # The last sealed entry is the head append leaves (what head() would read), without another read.
        if written:
            publish_audit_head(written[-1]["seq"], written[-1]["hash"])
        for refusal in refusals:
            if not isinstance(refusal, Refusal):
                continue
            message = "; ".join(str(v) for v in refusal.violations)
            target = f"{refusal.kind} {refusal.namespace}/{refusal.name or '(new)'}"
            self.kube.record_event(
                refusal.involved(), "PolicyRefused", f"{target} refused: {message}", warning=True
            )
