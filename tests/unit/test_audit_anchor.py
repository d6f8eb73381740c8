"""The audit log checked against its anchor: a log cut short, rewritten at its end, missing a segment,
reordered or edited fails; a log ahead of its anchor by an intact chain (a crash after the append,
before the anchor moved) passes."""

import pytest

from aifactory_operator.metrics import AUDIT_LOG_HEAD, publish_audit_head
from aifactory_operator.policy.audit import (
    GENESIS,
    SEGMENT_CAPACITY,
    construct_segment,
    entry_key,
    hash_entry,
    parse_segments,
    seal_batch,
    segment_number,
)
from aifactory_operator.policy.audit_anchor import (
    Anchor,
    AnchorUnreadable,
    construct_anchor,
    is_behind,
    missing_segments,
    parse_anchor,
    verify_anchored,
)

Entry = dict


def make_chain(length: int) -> list[Entry]:
    records = [{"rule": "air-gap/image-registry", "message": f"refusal {i}"} for i in range(1, length + 1)]
    return seal_batch(records, seq=1, prev=GENESIS)


def anchor_of(chain: list[Entry]) -> Anchor:
    return Anchor(len(chain), chain[-1]["hash"] if chain else GENESIS)


def stored(chain: list[Entry]) -> list[Entry]:
    """The chain as the segments hold it and `aifactory audit verify` reads it back."""
    numbers = sorted({segment_number(e["seq"]) for e in chain})
    segments = [
        construct_segment(n, "aifactory-system", [e for e in chain if segment_number(e["seq"]) == n])
        for n in numbers
    ]
    return parse_segments(segments)


CHAIN = make_chain(1200)
ANCHOR = anchor_of(CHAIN)


def test_an_intact_log_at_its_anchor_verifies():
    report = verify_anchored(stored(CHAIN), ANCHOR)

    assert (report.ok, report.entries, report.anchored) == (True, 1200, 1200)


def test_a_log_truncated_by_one_entry_is_found():
    report = verify_anchored(stored(CHAIN[:-1]), ANCHOR)

    assert (report.ok, report.first_bad) == (False, 1200)
    assert (
        report.problem == "log has 1199 entries but the anchor records 1200: entries 1200-1200 were removed"
    )


def test_a_deleted_last_segment_is_named():
    report = verify_anchored(stored(CHAIN[: 2 * SEGMENT_CAPACITY]), ANCHOR)

    assert not report.ok
    assert report.problem == (
        "log has 1000 entries but the anchor records 1200: entries 1001-1200 were removed;"
        " segment aifactory-audit-000003 missing"
    )


def test_a_deleted_middle_segment_is_named():
    kept = CHAIN[:SEGMENT_CAPACITY] + CHAIN[2 * SEGMENT_CAPACITY :]

    report = verify_anchored(stored(kept), ANCHOR)

    assert (report.ok, report.first_bad) == (False, 501)
    assert report.problem == (
        "segment aifactory-audit-000002 missing: entry 501 is missing: entry 1001 follows entry 500"
    )


def test_an_edited_entry_is_found_at_that_entry():
    edited = [*CHAIN]
    edited[741] = {**edited[741], "message": "nothing was refused"}

    report = verify_anchored(stored(edited), ANCHOR)

    assert (report.ok, report.first_bad) == (False, 742)
    assert report.problem == "entry 742 was altered: its hash does not match its content"


def test_two_entries_swapped_in_their_segment_are_found():
    segment = construct_segment(1, "aifactory-system", CHAIN[:SEGMENT_CAPACITY])
    data = segment["data"]
    data[entry_key(10)], data[entry_key(11)] = data[entry_key(11)], data[entry_key(10)]
    others = [construct_segment(n, "aifactory-system", CHAIN[(n - 1) * 500 : n * 500]) for n in (2, 3)]

    report = verify_anchored(parse_segments([segment, *others]), ANCHOR)

    assert (report.ok, report.first_bad) == (False, 10)
    assert report.problem == "entry 10 was altered: it is stored under key 0000000010 but says it is entry 11"


def test_a_tail_resealed_in_another_order_is_found_by_the_anchor():
    """Someone who knows the scheme re-hashes every entry after the ones they reorder: the chain holds,
    the anchor does not."""
    records = [{k: v for k, v in e.items() if k not in ("seq", "prev", "hash")} for e in CHAIN[-3:]]
    resealed = CHAIN[:-3] + seal_batch(records[::-1], seq=1198, prev=CHAIN[-4]["hash"])

    report = verify_anchored(stored(resealed), ANCHOR)

    assert (report.ok, report.first_bad) == (False, 1200)
    assert report.problem.startswith("entry 1200's hash does not match the anchor")


def test_a_truncated_log_with_forged_entries_appended_to_its_old_length_is_found():
    forged = CHAIN[:-2] + seal_batch([{"message": "a"}, {"message": "b"}], seq=1199, prev=CHAIN[-3]["hash"])

    report = verify_anchored(stored(forged), ANCHOR)

    assert (report.ok, report.first_bad) == (False, 1200)


def test_a_log_ahead_of_its_anchor_by_an_intact_chain_verifies():
    """The operator crashed after appending entry 1200, before moving the anchor from 1199."""
    report = verify_anchored(stored(CHAIN), anchor_of(CHAIN[:-1]))

    assert (report.ok, report.entries, report.anchored) == (True, 1200, 1199)


def test_a_log_ahead_of_its_anchor_with_a_broken_new_entry_fails():
    ahead = [*CHAIN[:-1], {**CHAIN[-1], "prev": "a" * 64}]
    ahead[-1]["hash"] = hash_entry(ahead[-1])

    report = verify_anchored(stored(ahead), anchor_of(CHAIN[:-1]))

    assert (report.ok, report.first_bad) == (False, 1199)


def test_a_missing_anchor_fails_a_log_but_not_an_empty_one():
    assert verify_anchored([], None).ok
    report = verify_anchored(stored(CHAIN[:3]), None)
    assert not report.ok
    assert report.problem.startswith("the anchor ConfigMap aifactory-audit-anchor is missing")


def test_an_empty_log_verifies_against_an_empty_anchor_but_not_a_longer_one():
    assert verify_anchored([], Anchor(0, GENESIS)).ok
    assert verify_anchored([], ANCHOR).problem.startswith("log has 0 entries but the anchor records 1200")


def test_an_entry_copied_into_another_segment_is_not_the_logs():
    chain = make_chain(3)
    elsewhere = construct_segment(2, "aifactory-system", chain)

    report = verify_anchored(parse_segments([elsewhere]), anchor_of(chain))

    assert report.first_bad == 1
    assert "stored in ConfigMap aifactory-audit-000002, not in its segment aifactory-audit-000001" in (
        report.problem
    )


def test_the_anchor_round_trips_through_its_configmap():
    configmap = construct_anchor("aifactory-system", ANCHOR)

    assert configmap["metadata"]["name"] == "aifactory-audit-anchor"
    assert "aifactory.dev/audit-log" not in configmap["metadata"]["labels"]
    assert parse_anchor(configmap) == ANCHOR


@pytest.mark.parametrize(
    ("data", "field"),
    [({"entries": "-1", "head": GENESIS}, "data.entries"), ({"entries": "3", "head": "xyz"}, "data.head")],
)
def test_a_garbled_anchor_names_the_field(data, field):
    with pytest.raises(AnchorUnreadable, match=f"ConfigMap aifactory-audit-anchor {field}"):
        parse_anchor({"metadata": {"name": "aifactory-audit-anchor"}, "data": data})


def test_the_anchor_moves_only_forward():
    assert is_behind(None, 0)
    assert is_behind(Anchor(3, GENESIS), 4)
    assert not is_behind(Anchor(4, GENESIS), 4)
    assert not is_behind(Anchor(5, GENESIS), 4)


def test_missing_segments_are_those_with_no_entry_up_to_the_end():
    assert missing_segments(stored(CHAIN[:500]), 1200) == ["aifactory-audit-000002", "aifactory-audit-000003"]
    assert missing_segments([], 0) == []


def test_the_head_gauge_holds_one_series_the_latest_head():
    publish_audit_head(3, "a" * 64)
    publish_audit_head(4, "b" * 64)

    samples = [s for family in AUDIT_LOG_HEAD.collect() for s in family.samples]

    assert [(s.labels, s.value) for s in samples] == [({"hash": "b" * 64}, 4.0)]
