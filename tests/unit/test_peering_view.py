"""A replica judges admission requests only while no alive peer outranks it (kopf's rule): a
paused replica stops watching, so its view of the cluster is stale."""

from datetime import UTC, datetime, timedelta

from aifactory_operator.reconcile.peering import is_active

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_ago: float, lifetime: int = 10) -> dict:
    return {
        "priority": priority,
        "lifetime": lifetime,
        "lastseen": (NOW - timedelta(seconds=seen_ago)).isoformat(),
    }


def test_without_peering_a_replica_is_always_active():
    assert is_active(None, {"other": peer(99, 0)}, NOW)


def test_an_alive_peer_of_higher_priority_pauses_this_one():
    assert not is_active(5, {"me": peer(5, 0), "other": peer(9, 3)}, NOW)


def test_a_dead_peer_of_higher_priority_does_not():
    assert is_active(5, {"me": peer(5, 0), "other": peer(9, 11)}, NOW)


def test_the_highest_alive_peer_is_active_and_a_tie_pauses_neither():
    assert is_active(9, {"me": peer(9, 0), "other": peer(5, 0)}, NOW)
    assert is_active(5, {"me": peer(5, 0), "twin": peer(5, 0)}, NOW)


def test_unreadable_entries_are_ignored():
    assert is_active(5, {"junk": "x", "bad": {"priority": 9, "lastseen": "yesterday"}}, NOW)
