"""The audit log in a real API server: segments of 500 entries, `aifactory audit verify` finding an
altered or removed entry, and two writers appending at once without losing or overwriting any."""

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aifactory_operator.kube.auditlog import AuditLog
from aifactory_operator.kube.client import Kube, load_config
from aifactory_operator.policy.audit import entry_key, segment_name, segment_number, verify_chain
from conftest import unique

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TAMPERED = 742


def make_refusal(i: int, writer: str = "webhook") -> dict[str, Any]:
    return {
        "rule": "air-gap/image-registry",
        "path": "spec.containers[0].image",
        "message": f"registry docker.io is not approved; use registry.de-1.example (refusal {i})",
        "layer": writer,
        "operation": "CREATE",
        "kind": "Pod",
        "namespace": "team-a",
        "name": f"trainer-{i}",
        "user": "alice",
    }


def run_audit(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`aifactory audit ...` as a user runs it, in its own process."""
    command = [sys.executable, "-m", "aifactory_operator.cli", "audit", *args]
    command += ["--kubeconfig", str(kubeconfig), "--namespace", namespace]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def patch_entry(kube: Kube, namespace: str, seq: int, value: str | None) -> None:
    """What someone with write access to the ConfigMaps could do (None removes the entry)."""
    name = segment_name(segment_number(seq))
    kube.resource("v1", "ConfigMap").patch(
        body={"data": {entry_key(seq): value}},
        name=name,
        namespace=namespace,
        content_type="application/merge-patch+json",
    )


def read_stored(kube: Kube, namespace: str, seq: int) -> str:
    segment = kube.get("v1", "ConfigMap", segment_name(segment_number(seq)), namespace) or {}
    return str(segment["data"][entry_key(seq)])


@pytest.fixture
def log_namespace(kube: Kube) -> Iterator[str]:
    """A namespace name of its own, so the real operator's log is untouched; AuditLog creates it."""
    name = unique("audit")
    yield name
    kube.delete("v1", "Namespace", name)


@pytest.fixture(scope="module")
def long_log(kube: Kube) -> Iterator[str]:
    """A log of 1,200 entries written in three batches of 400, in a namespace of its own."""
    name = unique("audit")
    log = AuditLog(kube, namespace=name)
    for start in range(1, 1201, 400):
        log.append([make_refusal(i) for i in range(start, start + 400)], now=NOW)
    yield name
    kube.delete("v1", "Namespace", name)


def test_a_long_log_spans_three_segments_and_verifies(kube, kubeconfig, long_log):
    segments = kube.list("v1", "ConfigMap", namespace=long_log, label_selector="aifactory.dev/audit-log=true")
    seq, head = AuditLog(kube, namespace=long_log).head()

    result = run_audit(kubeconfig, long_log, "verify")

    assert sorted(len(s["data"]) for s in segments) == [200, 500, 500]
    assert sorted(s["metadata"]["name"] for s in segments)[-1] == "aifactory-audit-000003"
    assert seq == 1200
    assert (result.returncode, result.stdout.strip()) == (0, f"audit log OK: 1200 entries, head {head}")


def test_show_prints_the_last_entries_as_a_table(kubeconfig, long_log):
    result = run_audit(kubeconfig, long_log, "show", "--tail", "3")

    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert lines[0].split() == ["SEQ", "TIME", "RULE", "OBJECT", "MESSAGE"]
    assert [line.split()[0] for line in lines[1:]] == ["1198", "1199", "1200"]
    assert "team-a/trainer-1200" in lines[-1]


def test_verify_names_an_altered_entry(kube, kubeconfig, long_log):
    original = read_stored(kube, long_log, TAMPERED)
    forged = json.dumps({**json.loads(original), "message": "nothing was refused"}, sort_keys=True)
    patch_entry(kube, long_log, TAMPERED, forged)
    try:
        result = run_audit(kubeconfig, long_log, "verify")
    finally:
        patch_entry(kube, long_log, TAMPERED, original)

    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"audit log BROKEN at entry {TAMPERED}: entry {TAMPERED} was altered: its hash does not match its content"
    )
    assert run_audit(kubeconfig, long_log, "verify").returncode == 0


def test_verify_names_a_removed_entry(kube, kubeconfig, long_log):
    original = read_stored(kube, long_log, TAMPERED)
    patch_entry(kube, long_log, TAMPERED, None)
    try:
        result = run_audit(kubeconfig, long_log, "verify")
    finally:
        patch_entry(kube, long_log, TAMPERED, original)

    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"audit log BROKEN at entry {TAMPERED}: entry {TAMPERED} is missing:"
        f" entry {TAMPERED + 1} follows entry {TAMPERED - 1}"
    )


def test_a_new_writer_continues_the_chain_where_it_ends(kube, log_namespace):
    AuditLog(kube, namespace=log_namespace).append([make_refusal(1), make_refusal(2)], now=NOW)
    first_head = AuditLog(kube, namespace=log_namespace).head()

    [entry] = AuditLog(kube, namespace=log_namespace).append([make_refusal(3)], now=NOW)

    assert (entry["seq"], entry["prev"]) == (3, first_head[1])
    assert verify_chain(AuditLog(kube, namespace=log_namespace).read()).ok


def test_two_writers_appending_at_once_lose_nothing(kube, kubeconfig, log_namespace):
    writers = [
        AuditLog(kube, namespace=log_namespace),
        AuditLog(Kube(load_config(str(kubeconfig))), log_namespace),
    ]

    def append_hundred(index: int) -> None:
        for i in range(100):
            writers[index].append([make_refusal(i, writer=f"writer-{index}")], now=NOW)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(append_hundred, index) for index in (0, 1)]:
            future.result()
    entries = AuditLog(kube, namespace=log_namespace).read()

    assert [entry["seq"] for entry in entries] == list(range(1, 201))
    assert sorted((e["layer"], e["name"]) for e in entries) == sorted(
        (f"writer-{w}", f"trainer-{i}") for w in (0, 1) for i in range(100)
    )
    assert verify_chain(entries).ok
