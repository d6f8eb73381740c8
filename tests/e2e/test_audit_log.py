"""The audit log in a real API server: segments of 500 entries, `aifactory audit verify` finding an
altered, removed or reordered entry, a truncated log or a deleted segment against the anchor, two
writers appending at once without losing or overwriting any, and the guard rails refusing every
identity the chart grants (and two granted too much by mistake) anything but an append."""

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from charttools import render
from kubernetes.client.exceptions import ApiException

from aifactory_operator.constants import AUDIT_ANCHOR_NAME
from aifactory_operator.kube.auditlog import AuditLog
from aifactory_operator.kube.client import Kube, load_config
from aifactory_operator.policy.audit import (
    GENESIS,
    entry_key,
    hash_entry,
    seal_batch,
    segment_name,
    segment_number,
    verify_chain,
)
from aifactory_operator.policy.audit_anchor import Anchor, verify_anchored
from aifactory_operator.reconcile.guard_policies import construct_audit_guards
from aifactory_operator.reconcile.tenants import construct_tenant_admin_role
from conftest import unique, wait_for

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
    assert (result.returncode, result.stdout.strip()) == (
        0,
        f"audit log OK: 1200 entries, head {head}, anchored at 1200",
    )


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


# The guarded log: 1,001 entries (segments of 500, 500 and 1) in a namespace of its own, with the
# audit guard rails bound to it (under names of their own, beside the real operator's).
GUARDED_ENTRIES = 1001
RBAC = "rbac.authorization.k8s.io/v1"


def bind_guards(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    """The operator's audit guards, bound to `namespace` instead of the operator's."""
    guards = construct_audit_guards(namespace)
    for guard in guards:
        guard["metadata"]["name"] += f"-{namespace}"
        if guard["kind"] == "ValidatingAdmissionPolicyBinding":
            guard["spec"]["policyName"] += f"-{namespace}"
        kube.apply(guard)
    return guards


def grant(kube: Kube, namespace: str, name: str, rules: list[Any] | None, subject: dict[str, str]) -> None:
    """A RoleBinding of `subject` to a Role of `rules`, or to the built-in ClusterRole `name` when None."""
    if rules is not None:
        kube.apply(
            {
                "apiVersion": RBAC,
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace},
                "rules": rules,
            }
        )
    role_ref = {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role" if rules is not None else "ClusterRole",
        "name": name,
    }
    binding = {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": name, "namespace": namespace}}
    kube.apply({**binding, "roleRef": role_ref, "subjects": [subject]})


def as_identity(kubeconfig: Path, user: str, group: str) -> Kube:
    """A client acting as `user` in `group` (the admin may impersonate; the API server adds
    system:authenticated)."""
    api_client = load_config(str(kubeconfig))
    api_client.default_headers["Impersonate-User"] = user
    api_client.default_headers["Impersonate-Group"] = group
    return Kube(api_client)


def chart_role_rules(namespace: str) -> list[Any]:
    """What the chart's namespaced Role grants the operator in its own namespace."""
    [role] = [
        o
        for o in render(namespace=namespace)
        if o["kind"] == "Role" and o["metadata"]["name"] == "aifactory-operator"
    ]
    return list(role["rules"])


@pytest.fixture(scope="module")
def guarded_log(kube: Kube) -> Iterator[str]:
    name = unique("audit")
    AuditLog(kube, namespace=name).append([make_refusal(i) for i in range(1, GUARDED_ENTRIES + 1)], now=NOW)
    guards = bind_guards(kube, name)
    yield name
    # The guards first: the namespace controller deleting the segments is refused like anyone else.
    for guard in reversed(guards):
        kube.delete("admissionregistration.k8s.io/v1", guard["kind"], guard["metadata"]["name"])
    kube.delete("v1", "Namespace", name)


@pytest.fixture(scope="module")
def identities(kube: Kube, kubeconfig: Path, guarded_log: str) -> dict[str, Kube]:
    """The operator's ServiceAccount with the chart's Role, a tenant admin whose role was bound here by
    mistake, and a user granted the built-in `edit` role here by mistake."""
    namespace = guarded_log
    account = f"system:serviceaccount:{namespace}:aifactory-operator"
    grant(
        kube,
        namespace,
        "aifactory-operator",
        chart_role_rules(namespace),
        {"kind": "ServiceAccount", "name": "aifactory-operator", "namespace": namespace},
    )
    grant(
        kube,
        namespace,
        "tenant-admin",
        construct_tenant_admin_role()["rules"],
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "research-admins"},
    )
    grant(
        kube,
        namespace,
        "edit",
        None,
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eddie"},
    )
    found = {
        "operator": as_identity(kubeconfig, account, f"system:serviceaccounts:{namespace}"),
        "tenant-admin": as_identity(kubeconfig, "tina", "research-admins"),
        "editor": as_identity(kubeconfig, "eddie", "system:authenticated"),
    }
    # kube-apiserver picks up new policies, bindings and role bindings from its informers: wait
    # until a dry-run tampering is refused by the guard before the tests count on it.
    wait_for(lambda: guard_in_force(found["editor"], namespace), "the audit guards in force")
    return found


def guard_in_force(who: Kube, namespace: str) -> bool:
    try:
        who.resource("v1", "ConfigMap").patch(
            body={"data": {entry_key(1): "{}"}},
            name=segment_name(1),
            namespace=namespace,
            content_type="application/merge-patch+json",
            dry_run="All",
        )
    except ApiException as error:
        return "guard-rail/audit-log" in str(error.body)
    return False


def merge_patch(kube: Kube, namespace: str, name: str, body: dict[str, Any]) -> None:
    kube.resource("v1", "ConfigMap").patch(
        body=body, name=name, namespace=namespace, content_type="application/merge-patch+json"
    )


def refusal(call: Any) -> str:
    """The API server's message refusing `call`; fails the test if it was admitted."""
    with pytest.raises(ApiException) as refused:
        call()
    return str(json.loads(refused.value.body)["message"])


LAST = segment_name(segment_number(GUARDED_ENTRIES))
TAMPERING = {
    "remove the label": lambda k, ns: merge_patch(
        k, ns, LAST, {"metadata": {"labels": {"aifactory.dev/audit-log": None}}}
    ),
    "edit an entry": lambda k, ns: merge_patch(k, ns, segment_name(1), {"data": {entry_key(7): "{}"}}),
    "remove the last entry": lambda k, ns: merge_patch(
        k, ns, LAST, {"data": {entry_key(GUARDED_ENTRIES): None}}
    ),
    "delete the last segment": lambda k, ns: k.resource("v1", "ConfigMap").delete(name=LAST, namespace=ns),
    "give the last segment an owner": lambda k, ns: merge_patch(
        k,
        ns,
        LAST,
        {
            "metadata": {
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "x",
                        "uid": "0b5e0bbf-0000-4000-8000-000000000000",
                    }
                ]
            }
        },
    ),
    "make the last segment immutable": lambda k, ns: merge_patch(k, ns, LAST, {"immutable": True}),
}
ANCHOR_TAMPERING = {
    "move the anchor back": lambda k, ns: merge_patch(
        k, ns, AUDIT_ANCHOR_NAME, {"data": {"entries": "1000"}}
    ),
    "change the anchor's head": lambda k, ns: merge_patch(
        k, ns, AUDIT_ANCHOR_NAME, {"data": {"head": "f" * 64}}
    ),
    "delete the anchor": lambda k, ns: k.resource("v1", "ConfigMap").delete(
        name=AUDIT_ANCHOR_NAME, namespace=ns
    ),
}


def refused_by(message: str) -> str:
    """Which layer of the API server refused: a guard rail (its rule id) or RBAC."""
    for rule in ("guard-rail/audit-log", "guard-rail/audit-anchor"):
        if f"[{rule}]" in message:
            return rule
    return "rbac" if "is forbidden: User" in message else message


def is_refused_by_guards(actor: Kube, namespace: str) -> bool:
    """The guards are loaded and the grants in effect: a dry run of a relabelling is refused by a guard."""
    body = {"metadata": {"labels": {"aifactory.dev/audit-log": None}}}
    try:
        actor.resource("v1", "ConfigMap").patch(
            body=body,
            name=LAST,
            namespace=namespace,
            content_type="application/merge-patch+json",
            dry_run="All",
        )
    except ApiException as error:
        return refused_by(str(json.loads(error.body)["message"])) == "guard-rail/audit-log"
    return False


# The chart grants the operator no `delete` on ConfigMaps, so RBAC refuses it before the guards would.
GUARD_FOR = {
    "remove the label": "guard-rail/audit-log",
    "edit an entry": "guard-rail/audit-log",
    "remove the last entry": "guard-rail/audit-log",
    "delete the last segment": "guard-rail/audit-log",
    "give the last segment an owner": "guard-rail/audit-log",
    "make the last segment immutable": "guard-rail/audit-log",
    "reorder two entries": "guard-rail/audit-log",
    "move the anchor back": "guard-rail/audit-anchor",
    "change the anchor's head": "guard-rail/audit-anchor",
    "delete the anchor": "guard-rail/audit-anchor",
}
REFUSED = {
    "operator": {**GUARD_FOR, "delete the last segment": "rbac", "delete the anchor": "rbac"},
    "tenant-admin": GUARD_FOR,
    "editor": GUARD_FOR,
}


@pytest.mark.parametrize("who", ["operator", "tenant-admin", "editor"])
def test_no_identity_but_a_cluster_admin_can_rewrite_the_log(kube, identities, guarded_log, who):
    actor = identities[who]
    wait_for(lambda: is_refused_by_guards(actor, guarded_log), f"the guards to refuse the {who}")
    swap = {entry_key(3): read_stored(kube, guarded_log, 4), entry_key(4): read_stored(kube, guarded_log, 3)}
    attempts = {
        **TAMPERING,
        "reorder two entries": lambda k, ns: merge_patch(k, ns, segment_name(1), {"data": swap}),
        **ANCHOR_TAMPERING,
    }

    refusals = {what: refused_by(refusal(lambda t=t: t(actor, guarded_log))) for what, t in attempts.items()}

    assert refusals == REFUSED[who]
    assert is_intact(kube, guarded_log)


def is_intact(kube: Kube, namespace: str) -> bool:
    """What the API server holds still verifies against its anchor."""
    log = AuditLog(kube, namespace=namespace)
    return verify_anchored(log.read(), log.read_anchor()).ok


def test_the_guards_type_check_without_warnings(kube, guarded_log):
    """The API server checked every expression against the ConfigMap schema and found nothing amiss."""
    names = [
        f"{name}-{guarded_log}" for name in ("aifactory-audit-log-guard", "aifactory-audit-anchor-guard")
    ]

    def checked() -> list[dict[str, Any]]:
        policies = [
            kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", n) for n in names
        ]
        statuses = [(p or {}).get("status") or {} for p in policies]
        return statuses if all("type_checking" in s or "typeChecking" in s for s in statuses) else []

    statuses = wait_for(checked, "the policies' type checking")

    assert [
        (s.get("typeChecking") or s.get("type_checking") or {}).get("expressionWarnings") for s in statuses
    ] == [
        None,
        None,
    ]


def test_the_operator_may_append_and_moves_the_anchor(kube, identities, guarded_log):
    before = AuditLog(kube, namespace=guarded_log).read_anchor()

    [entry] = AuditLog(identities["operator"], namespace=guarded_log).append([make_refusal(0)], now=NOW)

    assert before is not None and entry["seq"] == before.entries + 1
    assert AuditLog(kube, namespace=guarded_log).read_anchor() == Anchor(entry["seq"], entry["hash"])


# What a cluster admin (out of the guards' scope) can still do, and `aifactory audit verify` finds.


def snapshot(kube: Kube, namespace: str, number: int) -> dict[str, Any]:
    segment = kube.get("v1", "ConfigMap", segment_name(number), namespace) or {}
    meta = {k: segment["metadata"][k] for k in ("name", "namespace", "labels")}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": segment["data"]}


def restore(kube: Kube, saved: dict[str, Any]) -> None:
    """Puts a segment back as it was (as the admin: re-created, or its data merged back)."""
    namespace, name = saved["metadata"]["namespace"], saved["metadata"]["name"]
    current = kube.get("v1", "ConfigMap", name, namespace)
    if current is None:
        kube.resource("v1", "ConfigMap").create(body=saved, namespace=namespace)
        return
    removed = dict.fromkeys(set(current.get("data") or {}) - set(saved["data"]))
    merge_patch(kube, namespace, name, {"data": {**removed, **saved["data"]}})


def verify_output(kubeconfig: Path, namespace: str) -> tuple[int, str]:
    result = run_audit(kubeconfig, namespace, "verify")
    return result.returncode, result.stdout.strip()


@pytest.fixture
def last_segment(kube: Kube, guarded_log: str) -> Iterator[dict[str, Any]]:
    """The guarded log's last segment as it was, put back after the test."""
    saved = snapshot(kube, guarded_log, segment_number(GUARDED_ENTRIES))
    yield saved
    restore(kube, saved)
    assert is_intact(kube, guarded_log)


def test_verify_finds_the_last_entries_removed(kube, kubeconfig, guarded_log, last_segment):
    count = len(AuditLog(kube, namespace=guarded_log).read())
    merge_patch(kube, guarded_log, LAST, {"data": {entry_key(count): None}})

    assert verify_output(kubeconfig, guarded_log) == (
        1,
        f"audit log BROKEN at entry {count}: log has {count - 1} entries but the anchor records {count}:"
        f" entries {count}-{count} were removed",
    )


def test_verify_finds_the_last_segment_deleted(kube, kubeconfig, guarded_log, last_segment):
    count = len(AuditLog(kube, namespace=guarded_log).read())
    kube.resource("v1", "ConfigMap").delete(name=LAST, namespace=guarded_log)

    code, output = verify_output(kubeconfig, guarded_log)

    assert code == 1
    assert output == (
        f"audit log BROKEN at entry 1001: log has 1000 entries but the anchor records {count}:"
        f" entries 1001-{count} were removed; segment {LAST} missing"
    )


def test_verify_finds_two_entries_reordered(kube, kubeconfig, guarded_log):
    saved = snapshot(kube, guarded_log, 1)
    swap = {entry_key(3): saved["data"][entry_key(4)], entry_key(4): saved["data"][entry_key(3)]}
    merge_patch(kube, guarded_log, segment_name(1), {"data": swap})
    try:
        code, output = verify_output(kubeconfig, guarded_log)
    finally:
        restore(kube, saved)

    assert (code, output) == (
        1,
        "audit log BROKEN at entry 3: entry 3 was altered: it is stored under key 0000000003 but says it is entry 4",
    )
    assert is_intact(kube, guarded_log)


def test_verify_finds_a_tail_rewritten_and_resealed(kube, kubeconfig, guarded_log, last_segment):
    """Whoever knows the scheme re-hashes the entries they rewrite: the chain holds, the anchor does not."""
    entries = AuditLog(kube, namespace=guarded_log).read()
    tail = [{k: v for k, v in e.items() if k not in ("seq", "prev", "hash")} for e in entries[1000:]]
    forged = seal_batch(
        [{**r, "message": "nothing was refused"} for r in tail], seq=1001, prev=entries[999]["hash"]
    )
    merge_patch(
        kube,
        guarded_log,
        LAST,
        {"data": {entry_key(e["seq"]): json.dumps(e, sort_keys=True) for e in forged}},
    )

    code, output = verify_output(kubeconfig, guarded_log)

    assert code == 1
    assert output.startswith(
        f"audit log BROKEN at entry {len(entries)}: entry {len(entries)}'s hash does not match the anchor"
    )


def test_the_operator_keeps_an_anchor_the_log_no_longer_matches(kube, guarded_log, last_segment):
    """Appending after a rewrite must not move the anchor past the evidence."""
    log = AuditLog(kube, namespace=guarded_log)
    entries, anchor = log.read(), log.read_anchor()
    forged = {**entries[-1], "message": "nothing was refused"}
    forged["hash"] = hash_entry(forged)
    merge_patch(kube, guarded_log, LAST, {"data": {entry_key(forged["seq"]): json.dumps(forged)}})

    [appended] = AuditLog(kube, namespace=guarded_log).append([make_refusal(0)], now=NOW)

    assert appended["prev"] == forged["hash"]
    assert log.read_anchor() == anchor


def test_a_log_ahead_of_its_anchor_after_a_crash_verifies_and_the_anchor_catches_up(
    kube, kubeconfig, guarded_log
):
    log = AuditLog(kube, namespace=guarded_log)
    entries = log.read()
    # The admin sets the anchor one entry back: what a crash between append and anchor leaves.
    previous = {
        "entries": str(len(entries) - 1),
        "head": entries[-2]["hash"] if len(entries) > 1 else GENESIS,
    }
    merge_patch(kube, guarded_log, AUDIT_ANCHOR_NAME, {"data": previous})

    behind = verify_output(kubeconfig, guarded_log)
    log.anchor()  # what the operator does at start

    assert behind == (
        0,
        f"audit log OK: {len(entries)} entries, head {entries[-1]['hash']}, anchored at {len(entries) - 1}"
        " (1 written after it, their chain intact)",
    )
    assert log.read_anchor() == Anchor(len(entries), entries[-1]["hash"])
