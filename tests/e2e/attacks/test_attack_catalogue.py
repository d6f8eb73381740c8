"""Issue 19's attack suite, our own: every catalogue entry against the real API server as its
identity, once with the operator running and once with it stopped. Each attack must be refused with
its rule id (a pod the operator's webhook gave placement counts when the oracle finds it confined;
with the operator stopped, a fail-closed webhook refusal counts for what the webhook judges); each
legitimate workload must be admitted (those marked needs_operator only while it runs)."""

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator

import pytest
from attack_range import (
    OPERATOR_NAMESPACE,
    Range,
    audit_places,
    cleanup,
    datasets,
    factory_body,
    foreign_node,
    grant_cluster_roles,
    grant_identities,
    has_audit_entries,
    make_namespace,
    research_pv,
    unique,
)
from catalogue import ATTACKS, LEGITIMATE
from kubernetes.client.exceptions import ApiException
from runner import admit, attempt, passes

from aifactory_operator.constants import API_VERSION
from conftest import wait_for

pytestmark = pytest.mark.compat
LOG = logging.getLogger("attacks")
PSA = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@pytest.fixture(scope="module")
def attack_range(kube, kubectl, kubeconfig, operator) -> Iterator[Range]:
    name = unique("atk")
    namespaces = {t: unique(t) for t in ("citizen", "research", "orphan", "unenforced")}
    groups = {t: unique(f"{t}-admins") for t in ("citizen", "research")}
    kube.apply(factory_body(name, namespaces["citizen"], namespaces["research"], groups))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=120s")
    make_namespace(
        kube,
        namespaces["orphan"],
        {
            "aifactory.dev/factory": unique("gone"),
            "aifactory.dev/tenant": "orphan",
            "aifactory.dev/enforced": "true",
            **PSA,
        },
    )
    # As a factory's finalizer leaves a retained namespace (or the sweep, if someone removed the
    # finalizer by hand): locked. The attacks run against that state.
    wait_for(
        lambda: (
            kube.get("v1", "Namespace", namespaces["orphan"])["metadata"]["labels"].get(
                "aifactory.dev/enforced"
            )
            == "false"
        ),
        "the orphaned namespace locked",
    )
    make_namespace(
        kube,
        namespaces["unenforced"],
        # Labelled for a factory whose policies were never proved there (one not created yet): a
        # namespace of a live factory that does not list it is released by that factory instead.
        {"aifactory.dev/factory": unique("pending"), "aifactory.dev/tenant": "citizen-services", **PSA},
    )
    for tenant, namespace in namespaces.items():
        grant_identities(kube, namespace, tenant)
    grant_cluster_roles(kube, name, list(namespaces.values()))
    foreign = foreign_node(unique("foreign"))
    kube.apply(foreign)
    for body in datasets(namespaces["citizen"], namespaces["research"]):
        kube.apply(body)
    for body in datasets(namespaces["citizen"], namespaces["research"]):
        kubectl(
            "wait",
            "--for=condition=Ready",
            f"dataset/{body['metadata']['name']}",
            "-n",
            body["metadata"]["namespace"],
            "--timeout=90s",
        )
    refused = {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": "seed-audit", "namespace": namespaces["citizen"]},
        "spec": {
            "purpose": "training-data",
            "storage": {"name": "datasets", "path": "/seed"},
            "jurisdiction": "AT",
            "classification": "internal",
        },
    }
    with contextlib.suppress(ApiException):  # the refusal is the point: it leaves an audit entry
        kube.resource(API_VERSION, "Dataset").create(body=refused, namespace=namespaces["citizen"])
    wait_for(lambda: has_audit_entries(kube), "an audit log entry")
    h100 = kube.list("v1", "Node", label_selector=f"aifactory.dev/factory={name},aifactory.dev/pool=h100")
    places = {
        "foreign": foreign["metadata"]["name"],
        "h100_node": h100[0]["metadata"]["name"],
        "research_pv": research_pv(kube, namespaces["research"]),
        "factory": name,
        "other_ns": namespaces["research"],
        **audit_places(kube),
    }
    r = Range(name, {**namespaces, "operator": OPERATOR_NAMESPACE}, groups, places, kubeconfig)
    yield r
    cleanup(kube, r)


def run_catalogue(r: Range, kube, *, operator_running: bool) -> tuple[list[str], list[str], str]:
    """Every attack and legitimate workload; the failures of each, and a summary per rule id."""
    suffix = "-r" if operator_running else "-s"
    failed, per_rule, stopped = [], Counter(), Counter()
    for attack in ATTACKS:
        outcome = attempt(r, kube, attack, suffix)
        per_rule[attack.rule] += 1
        if passes(attack, outcome, operator_running=operator_running):
            stopped[attack.rule] += 1
        else:
            failed.append(
                f"{attack.id} ({attack.identity}, {attack.path}) expected [{attack.rule}]: {outcome.verdict} {outcome.message[:300]}"
            )
    mutation = "mutatingadmissionpolicies" in kube.served_resources("admissionregistration.k8s.io/v1")
    legit = [
        w for w in LEGITIMATE if operator_running or not w.needs_operator or (w.needs_mutation and mutation)
    ]
    refused = []
    for workload in legit:
        outcome = admit(r, workload, suffix)
        if outcome.verdict != "admitted":
            refused.append(f"{workload.id} ({workload.identity}): {outcome.message[:300]}")
    mode = "running" if operator_running else "stopped"
    lines = [
        f"operator {mode}: attacks refused {sum(stopped.values())}/{len(ATTACKS)}, legitimate admitted {len(legit) - len(refused)}/{len(legit)}"
    ]
    lines += [f"  [{rule}] {stopped[rule]}/{n}" for rule, n in sorted(per_rule.items())]
    return failed, refused, "\n".join(lines)


def report(summary: str, failed: list[str], refused: list[str]) -> None:
    text = "\n".join([summary, "attacks not stopped:", *failed, "legitimate refused:", *refused])
    LOG.warning(text)
    print(text)


def test_every_attack_is_refused_and_every_workload_admitted_with_the_operator_running(attack_range, kube):
    failed, refused, summary = run_catalogue(attack_range, kube, operator_running=True)
    report(summary, failed, refused)
    assert (failed, refused) == ([], [])


def test_every_attack_is_refused_and_placed_workloads_admitted_with_the_operator_stopped(
    attack_range, kube, operator
):
    """Runs last in this module: it stops the session's operator and starts it again."""
    operator.stop()
    try:
        failed, refused, summary = run_catalogue(attack_range, kube, operator_running=False)
    finally:
        operator.start()
    report(summary, failed, refused)
    assert (failed, refused) == ([], [])
