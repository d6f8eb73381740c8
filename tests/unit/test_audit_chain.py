"""The audit log's hash chain: every alteration, removal or reordering is found, and where it happened."""

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory_operator.policy.audit import (
    DAMAGE,
    GENESIS,
    MAX_ENTRY_BYTES,
    RECORD_FIELDS,
    SEGMENT_CAPACITY,
    construct_segment,
    encode_data,
    encode_entry,
    entry_key,
    format_time,
    hash_entry,
    parse_segments,
    seal,
    seal_batch,
    segment_name,
    segment_number,
    verify_chain,
)

Entry = dict[str, Any]


def make_record(i: int, **fields: str) -> Entry:
    defaults = {
        "time": "2026-01-01T00:00:00.000Z",
        "rule": "air-gap/image-registry",
        "path": "spec.containers[0].image",
        "message": f"registry docker.io is not approved (refusal {i})",
        "layer": "webhook",
        "operation": "CREATE",
        "kind": "Pod",
        "namespace": "team-a",
        "name": f"trainer-{i}",
        "user": "alice",
    }
    return {**defaults, **fields}


def make_chain(length: int) -> list[Entry]:
    return seal_batch([make_record(i) for i in range(1, length + 1)], seq=1, prev=GENESIS)


def rehashed(entry: Entry) -> Entry:
    """What an attacker who knows the scheme does after editing an entry."""
    return {**entry, "hash": hash_entry(entry)}


def make_segments(entries: list[Entry]) -> list[Entry]:
    """Entries laid out in ConfigMaps the way AuditLog writes them."""
    numbers = sorted({segment_number(entry["seq"]) for entry in entries})
    return [
        construct_segment(n, "aifactory-system", [e for e in entries if segment_number(e["seq"]) == n])
        for n in numbers
    ]


CHAIN = make_chain(50)


def test_a_sealed_chain_verifies_and_reports_its_head():
    report = verify_chain(make_chain(5))

    assert report.ok
    assert (report.entries, report.first_bad, report.problem) == (5, None, "")
    assert report.head == make_chain(5)[-1]["hash"]


def test_an_empty_log_verifies_with_the_genesis_head():
    assert verify_chain([]).ok
    assert verify_chain([]).head == GENESIS


def test_each_entry_links_to_the_one_before():
    chain = make_chain(3)

    assert chain[0]["prev"] == GENESIS
    assert [entry["prev"] for entry in chain[1:]] == [entry["hash"] for entry in chain[:-1]]
    assert [entry["seq"] for entry in chain] == [1, 2, 3]


def test_the_hash_covers_every_field_but_itself():
    entry = make_chain(1)[0]

    assert entry["hash"] == hash_entry(entry)
    assert all(hash_entry({**entry, field: "x"}) != entry["hash"] for field in entry if field != "hash")


def test_altering_a_message_is_found_at_that_entry():
    chain = make_chain(5)
    chain[2] = {**chain[2], "message": "nothing to see here"}

    report = verify_chain(chain)

    assert (report.ok, report.first_bad) == (False, 3)
    assert report.problem == "entry 3 was altered: its hash does not match its content"


def test_altering_a_hash_is_found_at_that_entry():
    chain = make_chain(5)
    chain[3] = {**chain[3], "hash": "f" * 64}

    assert verify_chain(chain).first_bad == 4


def test_re_hashing_an_altered_entry_breaks_the_next_link():
    chain = make_chain(5)
    chain[2] = rehashed({**chain[2], "user": "mallory"})

    report = verify_chain(chain)

    assert report.first_bad == 3
    assert report.problem.startswith("entry 4 does not link to entry 3")


def test_removing_a_middle_entry_names_the_missing_one():
    chain = make_chain(5)
    del chain[2]

    report = verify_chain(chain)

    assert report.first_bad == 3
    assert report.problem == "entry 3 is missing: entry 4 follows entry 2"


def test_removing_the_first_entry_is_found():
    report = verify_chain(make_chain(5)[1:])

    assert report.first_bad == 1
    assert report.problem == "entry 1 is missing: the log starts at entry 2"


def test_a_first_entry_that_does_not_start_the_chain_is_found():
    chain = make_chain(3)
    chain[0] = rehashed({**chain[0], "prev": "a" * 64})

    report = verify_chain(chain)

    assert report.first_bad == 1
    assert "prev is not the chain's start" in report.problem


def test_reordering_two_entries_is_found_at_the_first_of_them():
    chain = make_chain(5)
    chain[1], chain[2] = chain[2], chain[1]

    assert verify_chain(chain).first_bad == 2


def test_swapping_two_entries_contents_is_found():
    chain = make_chain(5)
    second, third = chain[1], chain[2]
    chain[1] = rehashed({**third, "seq": 2, "prev": second["prev"]})
    chain[2] = rehashed({**second, "seq": 3, "prev": chain[1]["hash"]})

    assert verify_chain(chain).first_bad == 3


def test_a_duplicated_entry_is_found():
    chain = make_chain(5)
    chain.insert(3, chain[2])

    report = verify_chain(chain)

    assert report.first_bad == 4
    assert report.problem == "entry 3 is out of place: it follows entry 3"


def test_seal_refuses_a_field_it_does_not_know():
    with pytest.raises(ValueError, match="'colour'"):
        seal({**make_record(1), "colour": "red"}, seq=1, prev=GENESIS)


def test_seal_stores_missing_and_empty_fields_as_empty_strings():
    entry = seal({"rule": "data-locality", "namespace": None}, seq=1, prev=GENESIS)

    assert set(RECORD_FIELDS) <= set(entry)
    assert (entry["namespace"], entry["user"]) == ("", "")


def test_seal_shortens_an_oversized_message_so_a_segment_still_fits():
    entry = seal(make_record(1, message="x" * 100_000, path="spec." * 1000), seq=1, prev=GENESIS)

    assert len(encode_entry(entry)) <= MAX_ENTRY_BYTES
    assert entry["message"].endswith("…")
    assert verify_chain([entry]).ok


def test_a_full_segment_of_the_largest_entries_fits_in_a_configmap():
    one_mebibyte = 1024 * 1024
    assert SEGMENT_CAPACITY * (MAX_ENTRY_BYTES + len(entry_key(1))) < one_mebibyte


def test_names_and_keys_sort_in_sequence_order():
    assert segment_name(1) == "aifactory-audit-000001"
    assert entry_key(42) == "0000000042"
    assert [segment_number(seq) for seq in (1, 500, 501, 1000, 1001)] == [1, 1, 2, 2, 3]


def test_time_is_rfc3339_in_utc_and_a_naive_time_is_refused():
    assert format_time(datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=UTC)) == "2026-03-01T12:00:05.123Z"
    with pytest.raises(ValueError, match="time zone"):
        format_time(datetime(2026, 3, 1))


def test_parse_segments_orders_entries_across_segments():
    chain = seal_batch([make_record(i) for i in range(1, 1202)], seq=1, prev=GENESIS)
    segments = make_segments(chain)

    entries = parse_segments(list(reversed(segments)))

    assert [segment["metadata"]["name"] for segment in segments][-1] == "aifactory-audit-000003"
    assert entries == chain
    assert verify_chain(entries).ok


def test_parse_segments_ignores_other_configmaps_and_keys():
    segment = make_segments(make_chain(2))[0]
    segment["data"]["note"] = "not an entry"
    other = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"0000000003": "{}"}}

    assert parse_segments([segment, other]) == make_chain(2)


def test_an_unlabelled_segment_still_counts():
    segment = make_segments(make_chain(2))[0]
    del segment["metadata"]["labels"]

    assert len(parse_segments([segment])) == 2


def test_a_value_that_is_not_json_is_reported_as_altered():
    segment = make_segments(make_chain(3))[0]
    segment["data"][entry_key(2)] = "{not json"

    entries = parse_segments([segment])
    report = verify_chain(entries)

    assert entries[1] == {"seq": 2, DAMAGE: "its stored value is not valid JSON"}
    assert report.first_bad == 2
    assert report.problem == "entry 2 was altered: its stored value is not valid JSON"


def test_an_entry_stored_under_another_key_is_reported_as_altered():
    chain = make_chain(3)
    segment = construct_segment(1, "aifactory-system", chain)
    segment["data"][entry_key(2)] = encode_data([chain[2]])[entry_key(3)]

    report = verify_chain(parse_segments([segment]))

    assert report.first_bad == 2
    assert report.problem == "entry 2 was altered: it is stored under key 0000000002 but says it is entry 3"


@st.composite
def tampered_chains(draw: st.DrawFn) -> tuple[list[Entry], int]:
    """A chain of 1..50 entries with one alteration, removal or reordering, and where it starts."""
    chain = [dict(entry) for entry in CHAIN[: draw(st.integers(1, 50))]]
    last = len(chain) - 1
    # Rewriting or dropping the last entry leaves a valid shorter chain: only an outside record of
    # the head finds that, so those cases are not drawn.
    tamper = draw(st.sampled_from(["alter", "rehash", "remove", "swap"] if last else ["alter"]))
    index = draw(st.integers(0, last if tamper == "alter" else last - 1))
    if tamper == "alter":
        field = draw(st.sampled_from(sorted(chain[index])))
        old = chain[index][field]
        values = st.integers(-5, 100) if field == "seq" else st.text(max_size=70)
        chain[index][field] = draw(values.filter(lambda value: value != old))
    elif tamper == "rehash":
        field = draw(st.sampled_from(RECORD_FIELDS))
        old = chain[index][field]
        chain[index] = rehashed({**chain[index], field: draw(st.text().filter(lambda value: value != old))})
    elif tamper == "remove":
        del chain[index]
    else:
        other = draw(st.integers(index + 1, last))
        chain[index], chain[other] = chain[other], chain[index]
    return chain, index + 1


@settings(max_examples=400)
@given(tampered_chains())
def test_any_one_alteration_removal_or_reordering_is_found_where_it_happened(case):
    chain, first_bad = case

    report = verify_chain(chain)

    assert not report.ok
    assert report.first_bad == first_bad, report.problem
