"""The operator's cycle-collector settings: what AIFACTORY_GC_THRESHOLD accepts, and the clock that
reports the collector's CPU time."""

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from aifactory_operator.collector import CollectorClock, tune_collector
from aifactory_operator.settings import InvalidSetting


@pytest.fixture
def collector_state() -> Iterator[None]:
    """tune_collector changes the process's collector; every test here gets it back as it was."""
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks


@pytest.mark.parametrize("text", ["50000,20,10", " 700, 10 ,10"])
def test_a_threshold_is_three_positive_integers(settings_from, text):
    expected = tuple(int(part) for part in text.split(","))
    assert settings_from({"AIFACTORY_GC_THRESHOLD": text}).gc_threshold == expected


@pytest.mark.parametrize("text", ["50000", "50000,20", "1,2,3,4", "a,b,c", "0,10,10", "700,-1,10", "[1,2,3]"])
def test_anything_else_is_refused_with_the_setting_and_an_example(settings_from, text):
    with pytest.raises(
        InvalidSetting, match=r"AIFACTORY_GC_THRESHOLD=.*three positive integers, e\.g\. 50000"
    ):
        settings_from({"AIFACTORY_GC_THRESHOLD": text})


def test_tuning_sets_the_thresholds_it_is_given(collector_state):
    tune_collector((12345, 6, 7))
    assert gc.get_threshold() == (12345, 6, 7)


def test_the_default_lets_young_objects_die_before_a_collection(settings_from, collector_state):
    tune_collector(settings_from({}).gc_threshold)
    assert gc.get_threshold()[0] == 50000


def test_tuning_twice_times_collections_once(collector_state):
    tune_collector((50000, 20, 10))
    tune_collector((50000, 20, 10))
    assert sum(isinstance(c, CollectorClock) for c in gc.callbacks) == 1


def full_collection_seconds() -> float:
    return REGISTRY.get_sample_value("aifactory_gc_cpu_seconds_total", {"generation": "2"}) or 0.0


def test_each_collection_adds_its_cpu_time_to_its_generation(collector_state):
    gc.callbacks.append(CollectorClock())
    before = full_collection_seconds()
    # A full collection over a heap with many containers takes measurable CPU time.
    garbage = [[i] for i in range(200_000)]
    for _ in range(3):
        gc.collect()
    del garbage
    assert full_collection_seconds() > before
