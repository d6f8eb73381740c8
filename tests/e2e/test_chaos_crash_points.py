"""Crash at every write point: the operator is killed right after its i-th API write while it builds
a factory with tenants, restarted, and the end state compared with a clean run: nothing missing,
nothing duplicated, nothing orphaned.

`make test` visits a sample of the points; AIFACTORY_CHAOS_FULL=1 (make bench) visits every one."""

import os
import re
from collections import Counter

import pytest
from chaos_figures import record
from factories import make_factory, make_tenant

from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.kube.client import Kube
from aifactory_operator.kube.faults import CRASH_EXIT_CODE
from aifactory_operator.kube.observe import CHILD_KINDS
from aifactory_operator.launcher import OperatorProcess
from conftest import unique, wait_for

pytestmark = pytest.mark.chaos
STORAGE = [
    {
        "name": "nfs",
        "static": {"nfsServer": "nfs.factory.internal", "path": "/x"},
        "region": "de-fra",
        "capacity": "1Pi",
    }
]
KINDS = [*CHILD_KINDS, ("v1", "Node")]


def factory_body(name: str) -> dict:
    tenants = [make_tenant("alpha", f"{name}-a"), make_tenant("beta", f"{name}-b")]
    return make_factory(name, h100_nodes=2, l40s_nodes=1, tenants=tenants, storage=STORAGE)


def children(kube: Kube, name: str) -> Counter:
    """What the factory owns in the cluster, with its name factored out so runs compare."""
    found: Counter = Counter()
    for api_version, kind in KINDS:
        for obj in kube.list(api_version, kind, label_selector=f"{LABEL_FACTORY}={name}"):
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            found[
                (kind, (meta.get("namespace") or "").replace(name, "F"), meta["name"].replace(name, "F"))
            ] += 1
    return found


def is_ready(kube: Kube, name: str) -> bool:
    status = (kube.get(API_VERSION, "AIFactory", name) or {}).get("status", {})
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def settle(kube: Kube, name: str) -> Counter:
    """Waits for Ready and for the children to stop changing."""
    wait_for(lambda: is_ready(kube, name), f"factory {name} Ready", timeout=120)
    last: list[Counter] = [Counter()]

    def stable() -> bool:
        now = children(kube, name)
        same = now == last[0]
        last[0] = now
        return same and bool(now)

    wait_for(stable, f"factory {name} settled", timeout=60)
    return last[0]


def remove(kube: Kube, name: str) -> None:
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, f"factory {name} deleted", timeout=120)
    for suffix in ("a", "b"):
        kube.delete("v1", "Namespace", f"{name}-{suffix}")


def crashing_operator(kubeconfig, layout, after: int, log: str = "operator-chaos.log") -> OperatorProcess:
    os.environ["AIFACTORY_CRASH_AFTER_WRITES"] = str(after)
    try:
        process = OperatorProcess(kubeconfig, layout.logs / log)
        process.start()
    finally:
        del os.environ["AIFACTORY_CRASH_AFTER_WRITES"]
    return process


WRITE_LINE = re.compile(r'"(PATCH|POST|PUT|DELETE) [^"]+ HTTP/1.1" 20[01]')


def count_writes(kube: Kube, kubeconfig, layout) -> int:
    """The writes of one clean build, start-up included, from the client's request log."""
    log = layout.logs / f"operator-{unique('count')}.log"
    probe = crashing_operator(kubeconfig, layout, 10**6, log.name)
    name = unique("count")
    kube.apply(factory_body(name))
    try:
        settle(kube, name)
    finally:
        probe.stop()
    writes = len(WRITE_LINE.findall(log.read_text()))
    probe.start()
    try:
        remove(kube, name)
    finally:
        probe.stop()
    return writes


def crash_or_settle(kube: Kube, victim: OperatorProcess, name: str) -> bool:
    """True when the victim died at its crash point; False when it finished the build first."""

    def done() -> bool:
        return not victim.is_running() or is_ready(kube, name)

    wait_for(done, "a crash or a finished build", timeout=90)
    crashed = (
        not victim.is_running()
        and victim.process is not None
        and victim.process.returncode == CRASH_EXIT_CODE
    )
    victim.stop()
    return crashed


def test_a_crash_after_any_write_converges_to_the_clean_result(kube, kubeconfig, layout, operator):
    clean = unique("clean")
    kube.apply(factory_body(clean))
    expected = settle(kube, clean)
    remove(kube, clean)
    operator.stop()
    total = count_writes(kube, kubeconfig, layout)
    points = list(range(1, total + 1))
    if not os.environ.get("AIFACTORY_CHAOS_FULL"):
        points = points[len(points) // 5 :: max(1, len(points) // 4)][:4]
    converged, duplicates, orphans, crashed = 0, 0, 0, 0
    try:
        for point in points:
            name = unique("crash")
            kube.apply(factory_body(name))
            crashed += crash_or_settle(kube, crashing_operator(kubeconfig, layout, point), name)
            operator.start()
            got = settle(kube, name)
            duplicates += sum(n - 1 for n in got.values() if n > 1)
            orphans += len(set(got) - set(expected))
            assert got == expected, f"crash after write {point}: {set(expected) ^ set(got)}"
            converged += 1
            remove(kube, name)
            operator.stop()
    finally:
        if not operator.is_running():
            operator.start()
    record(
        "aifactory_crash_points",
        converged=converged,
        points=len(points),
        crashed_before_the_build_ended=crashed,
        writes_in_a_clean_build=total,
        duplicates=duplicates,
        orphans=orphans,
    )
    assert crashed >= len(points) // 2
