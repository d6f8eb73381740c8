"""Dataset paths on the real control plane: non-canonical paths refused by the CRD's own rule,
another tenant's path refused by the webhook, a racing overlap stalled by the reconciler, and every
admitted dataset's volume inside its tenant's subtree of the export."""

import json
from typing import Any

import pytest
from factories import make_dataset, make_factory, make_tenant
from kubernetes.client.exceptions import ApiException

from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.kube.client import Kube
from conftest import condition, unique, wait_for

STORAGE = [
    {
        "name": "nfs",
        "static": {"nfsServer": "nfs.factory.internal", "path": "/export"},
        "region": "de-fra",
        "capacity": "1Pi",
    }
]


def refusal(kube: Kube, obj: dict[str, Any], *, dry_run: bool = False) -> tuple[int, str] | None:
    """Creates `obj` (or only tries, server-side); None when admitted, else (status, message)."""
    try:
        kube.resource(API_VERSION, "Dataset").create(
            body=obj, namespace=obj["metadata"]["namespace"], **({"dry_run": "All"} if dry_run else {})
        )
    except ApiException as error:
        return error.status, str(json.loads(error.body).get("message", ""))
    return None


@pytest.fixture(scope="module")
def tenants(kube, kubectl, operator) -> Any:
    """A factory with static storage and two tenants, 'research' and 'ops', one namespace each."""
    name, research, ops = unique("paths"), unique("research"), unique("ops")
    body = make_factory(
        name,
        h100_nodes=0,
        l40s_nodes=0,
        tenants=[make_tenant("research", research), make_tenant("ops", ops)],
        storage=STORAGE,
    )
    kube.apply(body)
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    namespaces = [research, ops]
    yield {"factory": name, "research": research, "ops": ops, "body": body, "namespaces": namespaces}
    for namespace in namespaces:
        for obj in kube.list(API_VERSION, "Dataset", namespace=namespace):
            kube.delete(API_VERSION, "Dataset", obj["metadata"]["name"], namespace)
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    for namespace in namespaces:
        kube.delete("v1", "Namespace", namespace)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"{LABEL_FACTORY}={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


@pytest.mark.parametrize(
    "path", ["..", "/a/../b", "//x", "/a/./b", "/corpus/", "/a\\b", "/%2e%2e/x", "/a\nb", "corpus"]
)
def test_a_non_canonical_path_is_refused_by_the_crd_schema(kube, tenants, path):
    """422 Invalid is the API server's schema answer (the webhook refuses with 403), so the rule
    holds with the operator stopped."""
    found = refusal(kube, make_dataset(tenants["research"], unique("d"), path=path), dry_run=True)
    assert found is not None
    status, message = found
    assert status == 422, message
    assert "spec.storage.path" in message and message.endswith("[dataset/canonical-path]")
    assert "write it as e.g. /corpora/de-2026" in message


def test_the_volume_of_an_admitted_dataset_lives_in_its_tenants_subtree(kube, tenants):
    name = unique("corpus")
    assert refusal(kube, make_dataset(tenants["research"], name, path="/corpora/de")) is None
    volume_name = f"{tenants['factory']}-{tenants['research']}-{name}"
    volume = wait_for(lambda: kube.get("v1", "PersistentVolume", volume_name), "the dataset's volume")
    assert volume["spec"]["nfs"] == {"server": "nfs.factory.internal", "path": "/export/research/corpora/de"}


def test_another_tenants_path_and_a_prefix_of_it_are_refused_by_the_webhook(kube, tenants):
    owner = unique("wiki")
    assert refusal(kube, make_dataset(tenants["ops"], owner, path="/shared/wiki")) is None
    expected = (
        f"spec.storage.path: '/shared/wiki' overlaps dataset '{owner}' of tenant 'ops' on storage 'nfs';"
        " each tenant's data lives under its own subtree, choose another path [dataset/tenant-subtree]"
    )
    # The webhook reads the datasets from a watch-fed index: the refusal comes once it has seen ops's.
    status, message = wait_for(
        lambda: refusal(
            kube, make_dataset(tenants["research"], unique("d"), path="/shared/wiki"), dry_run=True
        ),
        "the webhook to refuse ops's path",
    )
    assert status == 403 and message.endswith(expected)
    status, message = refusal(
        kube, make_dataset(tenants["research"], unique("d"), path="/shared"), dry_run=True
    )
    assert status == 403 and f"overlaps dataset '{owner}' of tenant 'ops'" in message
    assert (
        refusal(kube, make_dataset(tenants["research"], unique("d"), path="/shared/wikis"), dry_run=True)
        is None
    )
    assert (
        refusal(kube, make_dataset(tenants["ops"], unique("d"), path="/shared/wiki/2026"), dry_run=True)
        is None
    )


def test_a_younger_overlapping_dataset_that_passed_the_webhook_stalls_without_a_volume(kube, tenants):
    """A Dataset created in a namespace before it joins a tenant meets no webhook tenant rule; once
    the namespace is ops's, its path overlaps research's older dataset and the reconciler stalls it."""
    # Creation times count in whole seconds and ties go by name (policy.dataset_paths.is_older), so
    # the names sort in creation order too: the test must not depend on the clock's second.
    older = unique("archive-a")
    assert refusal(kube, make_dataset(tenants["research"], older, path="/archive")) is None
    late = unique("late")
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": late}})
    tenants["namespaces"].append(late)
    younger = unique("archive-b")
    assert refusal(kube, make_dataset(late, younger, path="/archive/2026")) is None
    body = tenants["body"]
    body["spec"]["tenants"][1]["namespaces"].append(late)
    kube.apply(body)

    def stalled() -> dict | None:
        found = condition(kube.get(API_VERSION, "Dataset", younger, late), "Stalled")
        return found if found and found["reason"] == "PathOverlapsAnotherTenant" else None

    found = wait_for(stalled, "the younger dataset to stall")
    assert f"overlaps dataset '{older}' of tenant 'research' on storage 'nfs'" in found["message"]
    assert kube.get("v1", "PersistentVolume", f"{tenants['factory']}-{late}-{younger}") is None
    kept = f"{tenants['factory']}-{tenants['research']}-{older}"
    assert wait_for(lambda: kube.get("v1", "PersistentVolume", kept), "the older dataset's volume")
