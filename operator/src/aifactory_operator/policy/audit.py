"""The audit log of policy refusals as a hash chain: each entry carries the hash of the one before it,
so altering, removing or reordering any entry breaks the chain at that entry.

A chain cannot vouch for its own end: whoever can rewrite the last entry, or drop entries from the
tail, leaves a valid shorter chain. Record the head `verify_chain` reports somewhere else and compare.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..constants import AUDIT_SEGMENT_PREFIX, LABEL_AUDIT_LOG, LABEL_MANAGED_BY, MANAGED_BY

Entry = dict[str, Any]

# The `prev` of entry 1: there is no entry 0 to hash.
GENESIS = "0" * 64
SEGMENT_CAPACITY = 500
# A ConfigMap's data holds at most 1 MiB; 500 entries of at most 2,000 bytes each leave room for keys.
MAX_ENTRY_BYTES = 2000
# What a refusal says; `seal` adds `seq`, `prev` and `hash`.
RECORD_FIELDS = ("time", "rule", "path", "message", "layer", "operation", "kind", "namespace", "name", "user")
# Set by `parse_segments` on an entry whose stored value cannot be read back; `verify_chain` reports it.
DAMAGE = "damage"
ENTRY_KEY = re.compile(r"\d{10}")
SEGMENT_NAME = re.compile(rf"{re.escape(AUDIT_SEGMENT_PREFIX)}(\d{{6,}})")


@dataclass(frozen=True)
class ChainReport:
    """The verdict on a log: `first_bad` is the earliest entry the chain can no longer vouch for."""

    ok: bool
    entries: int
    head: str
    first_bad: int | None = None
    problem: str = ""
    # The entry count the anchor recorded, when the log was checked against one.
    anchored: int | None = None


def format_time(now: datetime) -> str:
    """RFC 3339 in UTC with milliseconds; a naive time would be read in the host's zone, so it is refused."""
    if now.tzinfo is None:
        raise ValueError("the audit time must carry a time zone, e.g. datetime.now(UTC)")
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_entry(entry: Entry) -> str:
    """The canonical JSON both stored and hashed: sorted keys, no spaces, non-ASCII escaped."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def hash_entry(entry: Entry) -> str:
    """The sha256 of the entry's canonical JSON without its own `hash`."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(encode_entry(body).encode()).hexdigest()


def seal(record: Entry, *, seq: int, prev: str) -> Entry:
    """The entry for `record` at position `seq`, linked to the entry whose hash is `prev`."""
    unknown = sorted(set(record) - set(RECORD_FIELDS))
    if unknown:
        raise ValueError(f"audit record fields {unknown} are unknown; use only {list(RECORD_FIELDS)}")
    fields = {field: "" if record.get(field) is None else str(record[field]) for field in RECORD_FIELDS}
    entry: Entry = {**fit_fields(fields, seq=seq, prev=prev), "seq": seq, "prev": prev}
    entry["hash"] = hash_entry(entry)
    return entry


def seal_batch(records: list[Entry], *, seq: int, prev: str) -> list[Entry]:
    """Consecutive entries from `seq` on, each linked to the one before."""
    entries: list[Entry] = []
    for offset, record in enumerate(records):
        entries.append(seal(record, seq=seq + offset, prev=entries[-1]["hash"] if entries else prev))
    return entries


def fit_fields(fields: dict[str, str], *, seq: int, prev: str) -> dict[str, str]:
    """Halves the longest field until the entry fits MAX_ENTRY_BYTES: a refusal may quote a large object,
    and a segment must still hold SEGMENT_CAPACITY entries."""
    fitted = dict(fields)
    while len(encode_entry({**fitted, "seq": seq, "prev": prev, "hash": GENESIS})) > MAX_ENTRY_BYTES:
        longest = max(fitted, key=lambda field: len(fitted[field]))
        if len(fitted[longest]) < 2:
            break  # Only an oversized `prev` is left to blame, and it is not ours to cut.
        fitted[longest] = fitted[longest][: len(fitted[longest]) // 2 - 1] + "…"
    return fitted


def entry_key(seq: int) -> str:
    """The ConfigMap data key of an entry: zero-padded so keys sort in sequence order."""
    return f"{seq:010d}"


def segment_name(number: int) -> str:
    return f"{AUDIT_SEGMENT_PREFIX}{number:06d}"


def segment_number(seq: int) -> int:
    """The segment that holds entry `seq`: placement is fixed, so replicas agree on it without talking."""
    return (seq - 1) // SEGMENT_CAPACITY + 1


def parse_segment_number(name: str) -> int | None:
    match = SEGMENT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def is_segment(configmap: Entry) -> bool:
    """Named or labelled as a segment: either is enough, so dropping the label does not hide entries."""
    meta = configmap.get("metadata") or {}
    labelled = (meta.get("labels") or {}).get(LABEL_AUDIT_LOG) == "true"
    return labelled or parse_segment_number(meta.get("name", "")) is not None


def construct_segment(number: int, namespace: str, entries: list[Entry]) -> Entry:
    """A new segment ConfigMap holding `entries`."""
    labels = {LABEL_AUDIT_LOG: "true", LABEL_MANAGED_BY: MANAGED_BY}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": segment_name(number), "namespace": namespace, "labels": labels},
        "data": encode_data(entries),
    }


def encode_data(entries: list[Entry]) -> dict[str, str]:
    """ConfigMap data for `entries`: one key per entry."""
    return {entry_key(entry["seq"]): encode_entry(entry) for entry in entries}


def parse_segments(configmaps: list[Entry]) -> list[Entry]:
    """Every entry of every segment among `configmaps`, in sequence order (the key's, which is readable
    even when the value is not); entries that cannot be read come back marked with DAMAGE."""
    segments = sorted(filter(is_segment, configmaps), key=lambda configmap: configmap["metadata"]["name"])
    found = [
        place_entry(parse_entry(key, raw), configmap["metadata"]["name"])
        for configmap in segments
        for key, raw in sorted((configmap.get("data") or {}).items())
        if ENTRY_KEY.fullmatch(key)
    ]
    return sorted(found, key=lambda entry: int(entry["seq"]))


def place_entry(entry: Entry, stored_in: str) -> Entry:
    """`entry`, marked with DAMAGE when it sits in another ConfigMap than its segment: placement is fixed,
    so an entry copied elsewhere (to survive its segment's deletion, or to reorder) is not the log's."""
    expected = segment_name(segment_number(int(entry["seq"])))
    if DAMAGE in entry or stored_in == expected:
        return entry
    return {
        "seq": entry["seq"],
        DAMAGE: f"it is stored in ConfigMap {stored_in}, not in its segment {expected}",
    }


def parse_entry(key: str, raw: str) -> Entry:
    """One stored entry, or a DAMAGE marker at the key's position saying why it cannot be read."""
    seq = int(key)
    try:
        entry = json.loads(raw)
    except ValueError:
        return {"seq": seq, DAMAGE: "its stored value is not valid JSON"}
    if not isinstance(entry, dict):
        return {"seq": seq, DAMAGE: "its stored value is not a JSON object"}
    if entry.get("seq") != seq:
        return {"seq": seq, DAMAGE: f"it is stored under key {key} but says it is entry {entry.get('seq')!r}"}
    return entry


def verify_chain(entries: list[Entry]) -> ChainReport:
    """Walks the chain from entry 1; stops at the first entry that is altered, missing or unlinked."""
    head = str(entries[-1].get("hash", "")) if entries else GENESIS
    prev = GENESIS
    for expected, entry in enumerate(entries, start=1):
        flaw = find_flaw(entry, expected=expected, prev=prev)
        if flaw:
            return ChainReport(ok=False, entries=len(entries), head=head, first_bad=flaw[0], problem=flaw[1])
        prev = entry["hash"]
    return ChainReport(ok=True, entries=len(entries), head=head)


def find_flaw(entry: Entry, *, expected: int, prev: str) -> tuple[int, str] | None:
    """Why `entry`, found where entry `expected` belongs after an entry hashed `prev`, breaks the chain."""
    seq = entry.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return expected, f"the entry after entry {expected - 1} has no sequence number"
    if seq < expected:
        return expected, f"entry {seq} is out of place: it follows entry {expected - 1}"
    if seq > expected:
        follows = (
            f"entry {seq} follows entry {expected - 1}" if expected > 1 else f"the log starts at entry {seq}"
        )
        return expected, f"entry {expected} is missing: {follows}"
    if DAMAGE in entry:
        return seq, f"entry {seq} was altered: {entry[DAMAGE]}"
    if entry.get("hash") != hash_entry(entry):
        return seq, f"entry {seq} was altered: its hash does not match its content"
    if entry.get("prev") != prev and seq == 1:
        return seq, "entry 1 was altered: its prev is not the chain's start (64 zeros)"
    if entry.get("prev") != prev:
        return (
            seq - 1,
            f"entry {seq} does not link to entry {seq - 1}: one of them was rewritten and re-hashed",
        )
    return None
