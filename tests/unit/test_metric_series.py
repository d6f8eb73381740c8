"""The operator's own bookkeeping of metrics: per-factory series that follow the spec, and handlers
that count their time and their errors."""

import asyncio
import inspect

import kopf
import pytest
from prometheus_client import CollectorRegistry, Gauge

from aifactory_operator.handlers.runtime import Progressing, instrumented
from aifactory_operator.metrics import RECONCILE_ERRORS, RECONCILE_SECONDS, RECONCILES, publish


def series(gauge: Gauge) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.values()): s.value for m in gauge.collect() for s in m.samples}


def value(metric, name: str, **labels: str) -> float:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.fixture
def pools() -> Gauge:
    return Gauge("pool_gpus", "test", ["factory", "pool"], registry=CollectorRegistry())


def test_a_pool_removed_from_the_spec_stops_being_reported(pools):
    publish(pools, "de-1", {("h100",): 16, ("l40s",): 4})
    publish(pools, "de-1", {("h100",): 8})
    assert series(pools) == {("de-1", "h100"): 8}


def test_forgetting_one_factory_leaves_the_others(pools):
    publish(pools, "de-1", {("h100",): 16})
    publish(pools, "fr-1", {("h100",): 8})
    publish(pools, "de-1", {})
    assert series(pools) == {("fr-1", "h100"): 8}


def test_an_error_escaping_a_handler_is_counted_and_timed():
    @instrumented("UnitKind")
    def failing(**_):
        raise RuntimeError("the API server went away")

    before = value(RECONCILE_ERRORS, "aifactory_reconcile_errors_total", kind="UnitKind")
    timed = value(RECONCILE_SECONDS, "aifactory_reconcile_seconds_count", kind="UnitKind")
    with pytest.raises(RuntimeError):
        failing(body={})
    assert value(RECONCILE_ERRORS, "aifactory_reconcile_errors_total", kind="UnitKind") == before + 1
    assert value(RECONCILES, "aifactory_reconciles_total", kind="UnitKind", outcome="error") >= 1
    assert value(RECONCILE_SECONDS, "aifactory_reconcile_seconds_count", kind="UnitKind") == timed + 1


def test_not_yet_is_a_retry_and_not_an_error():
    @instrumented("UnitKindProgressing")
    async def waiting(**_):
        raise Progressing("2 of 4 nodes ready", delay=2)

    with pytest.raises(kopf.TemporaryError):
        asyncio.run(waiting())
    assert value(RECONCILE_ERRORS, "aifactory_reconcile_errors_total", kind="UnitKindProgressing") == 0


def test_a_wrapped_handler_keeps_its_name_and_kind_of_function_which_kopf_reads():
    async def reconcile_factory(**_):
        return None

    def reconcile_dataset(**_):
        return None

    wrapped_async, wrapped_sync = instrumented("A")(reconcile_factory), instrumented("B")(reconcile_dataset)
    # kopf ids a handler by its name, awaits coroutine functions and runs the others in a thread.
    assert (wrapped_async.__name__, inspect.iscoroutinefunction(wrapped_async)) == ("reconcile_factory", True)
    assert (wrapped_sync.__name__, inspect.iscoroutinefunction(wrapped_sync)) == ("reconcile_dataset", False)
