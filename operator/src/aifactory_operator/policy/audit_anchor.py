"""The audit log's head kept outside the log (the anchor), and the verdict on a log checked against it.

A hash chain vouches for every entry but its own end: dropping the last entries leaves a valid shorter
chain. The anchor, a ConfigMap of its own that the guard rails let only move forward, records the entry
count and the last hash, so the end is vouched for too.

The operator writes the anchor after the entries, so a crash between the two leaves the log *ahead* of
its anchor, never behind. A log ahead by entries whose chain is intact is therefore accepted; one
shorter than the anchor, or whose entry at the anchor's count has another hash, is not.
"""

import re
from dataclasses import dataclass, replace
from typing import Any

from ..constants import AUDIT_ANCHOR_NAME, LABEL_MANAGED_BY, MANAGED_BY
from .audit import GENESIS, ChainReport, segment_name, segment_number, verify_chain

Entry = dict[str, Any]

# The anchor's data keys: the entry count (a decimal string) and the hash of the entry it counts up to.
ANCHOR_ENTRIES = "entries"
ANCHOR_HEAD = "head"
HASH = re.compile(r"[0-9a-f]{64}")


class AnchorUnreadable(ValueError):
    """The anchor ConfigMap does not hold a count and a hash; only a cluster admin can write it so."""


@dataclass(frozen=True)
class Anchor:
    """Entry `entries` of the log had hash `head` when the anchor was written (0 and GENESIS: empty)."""

    entries: int
    head: str


def construct_anchor(namespace: str, anchor: Anchor) -> Entry:
    """The anchor ConfigMap; no audit-log label, as it holds no entries."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": AUDIT_ANCHOR_NAME,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "data": encode_anchor(anchor),
    }


def encode_anchor(anchor: Anchor) -> dict[str, str]:
    return {ANCHOR_ENTRIES: str(anchor.entries), ANCHOR_HEAD: anchor.head}


def parse_anchor(configmap: Entry) -> Anchor:
    """The anchor a ConfigMap records; AnchorUnreadable names the field that is wrong."""
    data = configmap.get("data") or {}
    name = (configmap.get("metadata") or {}).get("name", AUDIT_ANCHOR_NAME)
    entries, head = str(data.get(ANCHOR_ENTRIES, "")), str(data.get(ANCHOR_HEAD, ""))
    if not entries.isdecimal():
        raise AnchorUnreadable(f"ConfigMap {name} data.{ANCHOR_ENTRIES}: {entries!r} is not an entry count")
    if not HASH.fullmatch(head):
        raise AnchorUnreadable(f"ConfigMap {name} data.{ANCHOR_HEAD}: {head!r} is not a sha256 in hex")
    return Anchor(int(entries), head)


def is_behind(anchor: Anchor | None, seq: int) -> bool:
    """The anchor should move to entry `seq`: it is missing or records fewer entries."""
    return anchor is None or anchor.entries < seq


def missing_segments(entries: list[Entry], upto: int) -> list[str]:
    """The segments that should hold some of entries 1..`upto` but hold none: deleted segments."""
    present = {segment_number(int(entry["seq"])) for entry in entries}
    wanted = range(1, segment_number(upto) + 1) if upto > 0 else range(0)
    return [segment_name(number) for number in wanted if number not in present]


def verify_anchored(entries: list[Entry], anchor: Anchor | None) -> ChainReport:
    """`verify_chain`, then the log's end against the anchor: never shorter, and the same entry at the
    anchor's count. A missing anchor fails a non-empty log, whose end nothing vouches for then."""
    report = verify_chain(entries)
    last = int(entries[-1]["seq"]) if entries else 0
    gone = missing_segments(entries, max(last, anchor.entries if anchor else 0))
    if not report.ok:
        return name_missing_segment(report, gone)
    if anchor is None:
        if not entries:
            return report
        return replace(
            report,
            ok=False,
            problem=f"the anchor ConfigMap {AUDIT_ANCHOR_NAME} is missing: nothing vouches that the log's"
            f" {report.entries} entries are all there; a cluster admin must restore it from a backup",
        )
    return replace(check_end(report, entries, anchor, gone), anchored=anchor.entries)


def check_end(report: ChainReport, entries: list[Entry], anchor: Anchor, gone: list[str]) -> ChainReport:
    """The verdict on an intact chain of `report.entries` entries against the anchor."""
    if report.entries < anchor.entries:
        segments = f"; segment {', '.join(gone)} missing" if gone else ""
        return replace(
            report,
            ok=False,
            first_bad=report.entries + 1,
            problem=f"log has {report.entries} entries but the anchor records {anchor.entries}: entries"
            f" {report.entries + 1}-{anchor.entries} were removed{segments}",
        )
    recorded = entries[anchor.entries - 1]["hash"] if anchor.entries else GENESIS
    if recorded != anchor.head:
        return replace(
            report,
            ok=False,
            first_bad=anchor.entries,
            problem=f"entry {anchor.entries}'s hash does not match the anchor ({anchor.head[:12]}...):"
            f" the log was rewritten at or before entry {anchor.entries}",
        )
    return report


def name_missing_segment(report: ChainReport, gone: list[str]) -> ChainReport:
    """A broken chain whose first bad entry lies in a deleted segment says so first."""
    if report.first_bad is None or segment_name(segment_number(report.first_bad)) not in gone:
        return report
    name = segment_name(segment_number(report.first_bad))
    return replace(report, problem=f"segment {name} missing: {report.problem}")
