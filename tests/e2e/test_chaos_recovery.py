"""Chaos that must lose nothing: kube-apiserver restarted under the operator, factories created and
deleted over and over, two replicas of which exactly one acts; and afterwards the operator's log
holds no error outside the allow-list. AIFACTORY_CHAOS_FULL=1 (make bench) runs the long versions."""

import os
import re
import time
from pathlib import Path

import pytest
from chaos_figures import record
from factories import make_factory, make_tenant

from aifactory_operator.chartgen import construct_peering_crd
from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.devcluster.cluster import restart
from aifactory_operator.kube.client import Kube
from aifactory_operator.launcher import OperatorProcess
from conftest import REPO, unique, wait_for

pytestmark = pytest.mark.chaos
FULL = bool(os.environ.get("AIFACTORY_CHAOS_FULL"))
ALLOWED = [
    re.compile(line)
    for line in (Path(__file__).parent / "operator-log-allowlist.txt").read_text().splitlines()
    if line and not line.startswith("#")
]
CLUSTER_SCOPED = [
    ("v1", "Node"),
    ("v1", "Namespace"),
    ("v1", "PersistentVolume"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
]


def is_ready(kube: Kube, name: str) -> bool:
    status = (kube.get(API_VERSION, "AIFactory", name) or {}).get("status", {})
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def error_blocks(text: str) -> list[str]:
    """Each traceback (down to its exception line) and each handler failure kopf reports."""
    blocks, current = [], None
    for line in text.splitlines():
        if current is not None:
            current.append(line)
            if line and not line[0].isspace():
                blocks.append("\n".join(current))
                current = None
        elif line.startswith("Traceback"):
            current = [line]
        elif "failed with an exception" in line or "Unhandled" in line:
            blocks.append(line)
    return blocks


def unexpected_errors(log: Path, offset: int = 0) -> list[str]:
    """Errors in `log` after `offset` that no allow-list pattern explains."""
    blocks = error_blocks(log.read_text(errors="replace")[offset:])
    return [b[-400:] for b in blocks if not any(p.search(b) for p in ALLOWED)]


@pytest.fixture
def clean_log(layout):
    """Fails the test when the session operator's log gained an unexpected error meanwhile."""
    log = layout.logs / "operator-e2e.log"
    offset = len(log.read_text(errors="replace")) if log.exists() else 0
    yield
    assert unexpected_errors(log, offset) == []


def test_the_operator_rides_out_a_kube_apiserver_restart(kube, kubectl, layout, operator, clean_log):
    before = unique("before")
    kube.apply(make_factory(before, h100_nodes=1, l40s_nodes=0))
    wait_for(lambda: is_ready(kube, before), "the first factory Ready")
    pid = operator.process.pid if operator.process else None
    restarts = 3 if FULL else 1
    for _ in range(restarts):
        restart(REPO, layout, "kube-apiserver")
    after = unique("after")
    kube.apply(make_factory(after, h100_nodes=2, l40s_nodes=1))
    wait_for(lambda: is_ready(kube, after), "a factory created after the restart Ready", timeout=120)
    assert operator.is_running() and operator.process.pid == pid
    record("kube_apiserver_restarts", restarts=restarts, operator_restarts=0, factories_ready_after=1)
    for name in (before, after):
        kube.delete(API_VERSION, "AIFactory", name)
        wait_for(lambda name=name: kube.get(API_VERSION, "AIFactory", name) is None, f"{name} deleted")


def test_create_delete_cycles_leave_nothing_cluster_scoped(kube, operator, clean_log):
    names = []
    cycles = 50 if FULL else 5
    for _ in range(cycles):
        name = unique("cycle")
        names.append(name)
        kube.apply(make_factory(name, h100_nodes=2, l40s_nodes=1, tenants=[make_tenant("t", f"{name}-t")]))
        wait_for(lambda name=name: is_ready(kube, name), f"{name} Ready")
        kube.delete(API_VERSION, "AIFactory", name)
        wait_for(lambda name=name: kube.get(API_VERSION, "AIFactory", name) is None, f"{name} deleted")
    for api_version, kind in CLUSTER_SCOPED:
        for name in names:
            left = [
                o["metadata"]["name"]
                for o in kube.list(api_version, kind, label_selector=f"{LABEL_FACTORY}={name}")
                if not o["metadata"].get("deletionTimestamp")
            ]
            assert left == [], (kind, name, left)
    record("create_delete_cycles", cycles=cycles, cluster_scoped_objects_left=0)


def handled(log: Path, offset: int) -> int:
    """Factory reconciles this replica ran (kopf logs each one) since `offset`."""
    text = log.read_text(errors="replace")[offset:]
    return text.count("Handler 'reconcile_factory' is invoked")


def test_of_two_replicas_exactly_one_acts_and_the_other_takes_over(kube, kubeconfig, layout, operator):
    peering = unique("peering")
    kube.apply(construct_peering_crd())
    wait_for(
        lambda: kube.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"
        ),
        "the peering CRD",
    )
    kube.dynamic.resources.invalidate_cache()
    wait_for(lambda: _apply_peering(kube, peering), "the peering object")
    operator.stop()
    os.environ["AIFACTORY_PEERING_LIFETIME_SECONDS"] = "5"
    listen = os.environ.get("AIFACTORY_WEBHOOK_LISTEN")
    try:
        replicas = [
            OperatorProcess(
                kubeconfig, layout.logs / f"operator-{peering}-{i}.log", args=(f"--peering={peering}",)
            )
            for i in range(2)
        ]
        for i, replica in enumerate(replicas):
            # A webhook port each, as pods behind a Service have: the operator refuses an address
            # another process serves (listen.py). The factory here has no tenant namespace, so no
            # admission call depends on which replica the webhook configuration names.
            os.environ["AIFACTORY_WEBHOOK_LISTEN"] = f"127.0.0.1:{layout.ports.base + 30 + i}"
            replica.start()
    finally:
        del os.environ["AIFACTORY_PEERING_LIFETIME_SECONDS"]
        os.environ.pop("AIFACTORY_WEBHOOK_LISTEN")
        if listen is not None:
            os.environ["AIFACTORY_WEBHOOK_LISTEN"] = listen
    name = unique("ha")
    try:
        # Started together, both work for a moment until each has seen the other's priority; the
        # lower one then pauses. Wait for that before judging who acts.
        wait_for(
            lambda: (
                len((kube.get("kopf.dev/v1", "ClusterKopfPeering", peering) or {}).get("status") or {}) == 2
            ),
            "both replicas in the peering record",
            timeout=60,
        )
        time.sleep(3)
        offsets = [len(r.log_path.read_text(errors="replace")) for r in replicas]
        kube.apply(make_factory(name, h100_nodes=1, l40s_nodes=1))
        wait_for(lambda: is_ready(kube, name), "the factory Ready under two replicas", timeout=120)
        counts = [handled(r.log_path, offset) for r, offset in zip(replicas, offsets, strict=True)]
        assert sorted(c > 0 for c in counts) == [False, True], counts
        active, standby = (replicas[0], replicas[1]) if counts[0] else (replicas[1], replicas[0])
        active.kill()
        offset = len(standby.log_path.read_text(errors="replace"))
        body = make_factory(name, h100_nodes=2, l40s_nodes=1)
        kube.apply(body)
        wait_for(
            lambda: (
                len(kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={name}")) == 3
                and is_ready(kube, name)
            ),
            "the standby to take over and add the node",
            timeout=120,
        )
        took_over = handled(standby.log_path, offset)
        assert took_over > 0
        record(
            "two_replicas",
            reconciles_by_the_active=max(counts),
            reconciles_by_the_standby_while_paused=min(counts),
            reconciles_by_the_standby_after_the_kill=took_over,
        )
        kube.delete(API_VERSION, "AIFactory", name)
        wait_for(
            lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory deleted by the standby"
        )
    finally:
        for replica in replicas:
            replica.stop()
        kube.delete("kopf.dev/v1", "ClusterKopfPeering", peering)
        operator.start()


def _apply_peering(kube: Kube, name: str) -> bool:
    try:
        kube.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}})
    except Exception:  # the new kind may take a moment to be served
        kube.dynamic.resources.invalidate_cache()
        return False
    return True
