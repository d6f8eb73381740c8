"""The audit log's I/O: sealed entries appended to ConfigMap segments in the operator namespace.

Appends are JSON merge patches that carry the segment's resourceVersion, so two replicas appending at
once never overwrite each other: the loser gets 409 Conflict, re-reads the head and tries again.
"""

import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..constants import FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY, OPERATOR_NAMESPACE
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
from .client import Kube

Obj = dict[str, Any]

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
        return written

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
