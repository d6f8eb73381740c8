"""The audit log's I/O: sealed entries appended to ConfigMap segments in the operator namespace, then
the new head recorded in the anchor ConfigMap.

Appends are JSON merge patches that carry the segment's resourceVersion, so two replicas appending at
once never overwrite each other: the loser gets 409 Conflict, re-reads the head and tries again. The
anchor is written the same way, after the entries, so that a crash in between leaves the log ahead of
its anchor (which `verify_anchored` accepts), never behind.
"""

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..constants import AUDIT_ANCHOR_NAME, FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY, OPERATOR_NAMESPACE
from ..metrics import WRITES
from ..policy.audit import (
    GENESIS,
    SEGMENT_CAPACITY,
    construct_segment,
    encode_data,
    format_time,
    parse_segment_number,
    parse_segments,
    seal_batch,
    segment_name,
    segment_number,
)
from ..policy.audit_anchor import (
    Anchor,
    AnchorUnreadable,
    construct_anchor,
    encode_anchor,
    is_behind,
    parse_anchor,
)
from .client import Kube

Obj = dict[str, Any]
logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
BACKOFF_SECONDS = 0.01
# Lists names only (PartialObjectMetadata): finding the last segment must not download the whole log.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class AuditLogContended(RuntimeError):
    """Other writers won every attempt; the records were not written."""


@dataclass(frozen=True)
class Head:
    """The last entry, and the last segment with the resourceVersion an append must match."""

    seq: int
    hash: str
    segment: str = ""
    version: str = ""


class AuditLog:
    """The hash-chained log of policy refusals; safe to share between threads and between replicas."""

    def __init__(self, kube: Kube, namespace: str = OPERATOR_NAMESPACE) -> None:
        self.kube = kube
        self.namespace = namespace
        self._head: Head | None = None
        self._lock = threading.Lock()

    def append(self, records: list[Obj], *, now: datetime) -> list[Obj]:
        """Seals and writes `records` (stamped `now` unless they carry a time), one patch per segment."""
        stamp = format_time(now)
        pending = [{"time": stamp, **record} for record in records]
        written: list[Obj] = []
        with self._lock:
            while pending:
                batch = self._write_next(pending)
                written += batch
                pending = pending[len(batch) :]
            if written:
                known = {written[0]["seq"] - 1: written[0]["prev"]} | {e["seq"]: e["hash"] for e in written}
                self._advance_anchor(Anchor(written[-1]["seq"], written[-1]["hash"]), known)
        return written

    def read_anchor(self) -> Anchor | None:
        """The head the anchor records, None when there is none; AnchorUnreadable when it is garbled."""
        stored = self.kube.get("v1", "ConfigMap", AUDIT_ANCHOR_NAME, self.namespace)
        return parse_anchor(stored) if stored else None

    def anchor(self) -> Anchor:
        """Moves the anchor up to the log's head (after a crash between append and anchor, or on a log
        kept before anchors existed) and returns that head."""
        with self._lock:
            self._head = self._find_head()
            head = Anchor(self._head.seq, self._head.hash)
            self._advance_anchor(head, {head.entries: head.head})
            return head

    def read(self) -> list[Obj]:
        """Every entry, in sequence order; all ConfigMaps are read so an unlabelled segment still counts."""
        return parse_segments(self.kube.list("v1", "ConfigMap", namespace=self.namespace))

    def head(self) -> tuple[int, str]:
        """The sequence number and hash of the last entry in the cluster now (0 and GENESIS when empty)."""
        with self._lock:
            self._head = self._find_head()
            return self._head.seq, self._head.hash

    def _write_next(self, pending: list[Obj]) -> list[Obj]:
        """Writes as many of `pending` as the head's segment has room for; returns those entries."""
        for attempt in range(MAX_ATTEMPTS):
            head = self._head or self._find_head()
            room = segment_number(head.seq + 1) * SEGMENT_CAPACITY - head.seq
            entries = seal_batch(pending[:room], seq=head.seq + 1, prev=head.hash)
            try:
                self._head = self._write(head, entries)
                return entries
            except ApiException as error:
                # 409: another writer appended first; 404: the segment we patched is gone. Re-read.
                if error.status not in (404, 409):
                    raise
            self._head = None
            self._back_off(attempt)
        raise AuditLogContended(
            f"{MAX_ATTEMPTS} attempts to append to the audit log in {self.namespace} lost to other writers"
        )

    def _write(self, head: Head, entries: list[Obj]) -> Head:
        number = segment_number(entries[0]["seq"])
        target = segment_name(number)
        if target == head.segment:
            written = self._patch_segment(target, head.version, entries)
        else:
            written = self._create_segment(number, entries)
        version = written["metadata"]["resourceVersion"]
        return Head(entries[-1]["seq"], entries[-1]["hash"], target, version)

    def _patch_segment(self, name: str, version: str, entries: list[Obj]) -> Obj:
        """Adds keys only; the resourceVersion makes the API server refuse (409) if anyone wrote since."""
        body = {"metadata": {"resourceVersion": version}, "data": encode_data(entries)}
        WRITES.labels(kind="ConfigMap", verb="patch").inc()
        result = self.kube.resource("v1", "ConfigMap").patch(
            body=body,
            name=name,
            namespace=self.namespace,
            content_type="application/merge-patch+json",
            field_manager=FIELD_MANAGER,
        )
        return dict(result.to_dict())

    def _create_segment(self, number: int, entries: list[Obj]) -> Obj:
        """A new segment; 409 when another writer created it first, and the namespace made when missing."""
        body = construct_segment(number, self.namespace, entries)
        for _ in range(2):
            WRITES.labels(kind="ConfigMap", verb="create").inc()
            try:
                created = self.kube.resource("v1", "ConfigMap").create(
                    body=body, namespace=self.namespace, field_manager=FIELD_MANAGER
                )
                return dict(created.to_dict())
            except ApiException as error:
                if error.status != 404:
                    raise
            self._create_namespace()
        raise AuditLogContended(f"namespace {self.namespace} vanished while the audit log was created in it")

    def _create_namespace(self) -> None:
        labels = {LABEL_MANAGED_BY: MANAGED_BY}
        self.kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace, "labels": labels}}
        )

    def _find_head(self) -> Head:
        """The last entry, read from the last segment (and earlier ones only if that one is empty)."""
        numbers = self._list_segment_numbers()
        last = self._get_segment(numbers[-1]) if numbers else None
        if last is None:
            return Head(0, GENESIS)
        meta = last["metadata"]
        for number in reversed(numbers):
            segment = last if number == numbers[-1] else self._get_segment(number)
            entries = parse_segments([segment]) if segment else []
            if entries:
                return Head(
                    entries[-1]["seq"],
                    str(entries[-1].get("hash", "")),
                    meta["name"],
                    meta["resourceVersion"],
                )
        return Head(0, GENESIS, meta["name"], meta["resourceVersion"])

    def _advance_anchor(self, head: Anchor, known: dict[int, str]) -> None:
        """Records `head` in the anchor unless it records as much already, and only along the same
        chain: an anchor whose entry now has another hash is evidence of a rewrite, and is kept."""
        for attempt in range(MAX_ATTEMPTS):
            stored = self.kube.get("v1", "ConfigMap", AUDIT_ANCHOR_NAME, self.namespace)
            try:
                current = parse_anchor(stored) if stored else None
            except AnchorUnreadable as error:
                logger.error("Kept the unreadable audit anchor namespace=%s error=%s", self.namespace, error)
                return
            # An empty log verifies without an anchor; its first append makes one.
            if not is_behind(current, head.entries) or (current is None and head.entries == 0):
                return
            if current is not None and self._hash_of(current.entries, known) != current.head:
                logger.error(
                    "Kept the audit anchor: the log no longer holds the entry it records namespace=%s"
                    " entry=%d; run `aifactory audit verify`",
                    self.namespace,
                    current.entries,
                )
                return
            try:
                self._write_anchor(stored, head)
                return
            except ApiException as error:
                # 409: another replica moved the anchor or created it first; 404: it went meanwhile.
                if error.status not in (404, 409):
                    raise
            self._back_off(attempt)
        raise AuditLogContended(f"{MAX_ATTEMPTS} attempts to move the audit anchor in {self.namespace} lost")

    def _write_anchor(self, stored: Obj | None, head: Anchor) -> None:
        resource = self.kube.resource("v1", "ConfigMap")
        if stored is None:
            WRITES.labels(kind="ConfigMap", verb="create").inc()
            body = construct_anchor(self.namespace, head)
            resource.create(body=body, namespace=self.namespace, field_manager=FIELD_MANAGER)
            return
        version = stored["metadata"]["resourceVersion"]
        WRITES.labels(kind="ConfigMap", verb="patch").inc()
        resource.patch(
            body={"metadata": {"resourceVersion": version}, "data": encode_anchor(head)},
            name=AUDIT_ANCHOR_NAME,
            namespace=self.namespace,
            content_type="application/merge-patch+json",
            field_manager=FIELD_MANAGER,
        )

    def _hash_of(self, seq: int, known: dict[int, str]) -> str:
        """The hash of entry `seq` as the log holds it now ("" when it holds no such entry)."""
        if seq == 0:
            return GENESIS
        if seq in known:
            return known[seq]
        segment = self._get_segment(segment_number(seq))
        found = [e for e in parse_segments([segment] if segment else []) if e["seq"] == seq]
        return str(found[0].get("hash", "")) if found else ""

    def _get_segment(self, number: int) -> Obj | None:
        return self.kube.get("v1", "ConfigMap", segment_name(number), self.namespace)

    def _list_segment_numbers(self) -> list[int]:
        listed = self.kube.resource("v1", "ConfigMap").get(
            namespace=self.namespace, header_params={"Accept": METADATA_ONLY}
        )
        names = [item["metadata"]["name"] for item in listed.to_dict()["items"]]
        return sorted(number for number in map(parse_segment_number, names) if number is not None)

    def _back_off(self, attempt: int) -> None:
        """A short random wait, as client-go's RetryOnConflict does, so colliding writers drift apart."""
        time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** min(attempt, 5)))
