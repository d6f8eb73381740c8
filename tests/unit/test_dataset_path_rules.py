"""Dataset paths: canonical or refused, confined to the tenant's subtree, never overlapping another
tenant's on the same storage; the same rule in the CRD, the webhook and the reconciler."""

import posixpath
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aifactory_operator.api.v1alpha1 import Dataset
from aifactory_operator.api.v1alpha1.aifactory import AIFactory, StaticSource, Storage, Tenant
from aifactory_operator.api.v1alpha1.dataset import CANONICAL_PATH
from aifactory_operator.crdgen import generate_crds
from aifactory_operator.handlers.webhook import check_dataset_path
from aifactory_operator.policy.dataset_paths import (
    CANONICAL,
    TENANT_SUBTREE,
    DeclaredPath,
    check_canonical_path,
    check_tenant_subtree,
    declared_paths,
    is_canonical,
    overlaps,
)
from aifactory_operator.reconcile.datasets import plan_dataset
from aifactory_operator.reconcile.storage import tenant_volume_path
from builders import make_factory, make_tenant

CANONICAL_PATHS = ["", "/corpus", "/corpora/de-2026", "/a/b/c", "/v1.2_final", "/a..b", "/a..", "/A9-_."]
NON_CANONICAL = {
    "dot-dot": "..",
    "leading dot-dot segment": "/..",
    "dot-dot inside": "/a/../b",
    "dot segment": "/a/./b",
    "double slash": "//x",
    "double slash inside": "/a//b",
    "trailing slash": "/corpus/",
    "only a slash": "/",
    "relative": "corpus",
    "backslash": "/a\\..\\b",
    "percent-encoded dot-dot": "/%2e%2e/b",
    "newline": "/a\n",
    "NUL": "/a\x00b",
    "segment starting with a dot": "/.hidden",
    "segment starting with a dash": "/-x",
    "space": "/a b",
    "non-ASCII": "/daten/ü",
    "too long": "/" + "a" * 1024,
}


@pytest.mark.parametrize("path", CANONICAL_PATHS)
def test_a_canonical_path_is_accepted(path):
    assert check_canonical_path(path) == []


@pytest.mark.parametrize("path", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_a_non_canonical_path_is_refused_naming_the_field_and_the_fix(path):
    [violation] = check_canonical_path(path)
    assert violation.rule == CANONICAL and violation.path == "spec.storage.path"
    assert "e.g. /corpora/de-2026" in violation.message or "keep it at most 1024" in violation.message


def test_the_crd_states_the_same_rule_as_the_policy():
    crd = generate_crds()["aifactory.dev_datasets.yaml"]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    path = schema["properties"]["spec"]["properties"]["storage"]["properties"]["path"]
    [validation] = path["x-kubernetes-validations"]
    assert validation["rule"] == f"self.matches('{CANONICAL_PATH}')"
    assert validation["message"].endswith(f"[{CANONICAL}]")
    assert path["maxLength"] == 1024 and "pattern" not in path


@pytest.mark.parametrize("path", [*CANONICAL_PATHS, *NON_CANONICAL.values()])
def test_the_crds_expression_and_the_policy_agree(path):
    """CEL's matches() searches (Go's RE2), where '$' is the end of the text, as Python's '\\Z' is;
    the anchors in the expression make it a whole match."""
    rule = CANONICAL_PATH.replace("$", r"\Z")
    assert (re.search(rule, path) is not None and len(path) <= 1024) == is_canonical(path)


SEGMENT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
TENANT_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
EXPORT = st.lists(SEGMENT, max_size=3).map(lambda parts: "/" + "/".join(parts))
ANY_PATH = st.one_of(
    st.lists(st.sampled_from(["..", ".", "", "a", "b", "%2e", "\\", "x.."]), max_size=6).map("/".join),
    st.lists(SEGMENT, max_size=6).map(lambda parts: "".join(f"/{p}" for p in parts)),
    st.text(max_size=40),
)


@given(export=EXPORT, tenant=TENANT_NAME, path=ANY_PATH)
def test_any_accepted_path_stays_under_the_tenants_subtree(export, tenant, path):
    if not is_canonical(path):
        return
    static = StaticSource(nfs_server="nfs", path=export)
    joined = tenant_volume_path(static, Tenant(name=tenant, namespaces=[tenant], clearance="internal"), path)
    subtree = posixpath.join(posixpath.normpath(export), tenant)
    normalised = posixpath.normpath(joined)
    assert normalised == joined
    assert normalised == subtree or normalised.startswith(subtree + "/")


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("/corpora/x", "/corpora/x", True),
        ("/corpora", "/corpora/x", True),
        ("/corpora/x", "/corpora", True),
        ("", "/anything", True),
        ("/corpora/de", "/corpora/de-2026", False),
        ("/a/b", "/a/c", False),
    ],
)
def test_paths_overlap_when_equal_or_a_prefix_by_whole_segments(first, second, expected):
    assert overlaps(first, second) is expected


def declared(
    tenant: str, path: str, *, storage: str = "datasets", name: str = "x", created: str = ""
) -> DeclaredPath:
    return DeclaredPath(tenant, tenant, name, storage, path, created)


def test_another_tenants_overlapping_path_is_refused_naming_it():
    [violation] = check_tenant_subtree(
        declared("ops", "/corpora"), [declared("research", "/corpora/x", name="y")]
    )
    assert str(violation) == (
        "spec.storage.path: '/corpora' overlaps dataset 'y' of tenant 'research' on storage 'datasets';"
        " each tenant's data lives under its own subtree, choose another path [dataset/tenant-subtree]"
    )


def test_the_same_tenant_or_another_storage_may_overlap():
    mine = declared("research", "/corpora")
    others = [declared("research", "/corpora/x"), declared("ops", "/corpora", storage="models")]
    assert check_tenant_subtree(mine, others) == []


STATIC = Storage(
    name="datasets", static=StaticSource(nfs_server="nfs", path="/export/"), region="de-fra", capacity="1Pi"
)
DYNAMIC = Storage(name="scratch", storage_class_provisioner="csi.example", region="de-fra", capacity="1Pi")


def two_tenant_factory() -> AIFactory:
    factory = make_factory(tenants=[make_tenant("research"), make_tenant("ops")])
    factory.spec.storage = [STATIC, DYNAMIC]
    return factory


def dataset_body(
    namespace: str, name: str, path: str, *, storage: str = "datasets", created: str = ""
) -> dict:
    metadata = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if created:
        metadata["creationTimestamp"] = created
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": metadata,
        "spec": {
            "purpose": "training-data",
            "storage": {"name": storage, "path": path},
            "jurisdiction": "DE",
            "classification": "internal",
        },
    }


def test_only_static_storage_declares_paths():
    bodies = {"ops": [dataset_body("ops", "a", "/x"), dataset_body("ops", "b", "/x", storage="scratch")]}
    assert [d.name for d in declared_paths(two_tenant_factory(), bodies)] == ["a"]


def test_the_webhook_refuses_another_tenants_path_and_a_prefix_of_it():
    factory = two_tenant_factory()
    research = factory.spec.tenants[0]
    index = {"ops": [dataset_body("ops", "wiki", "/corpora/wiki")]}
    for path in ("/corpora/wiki", "/corpora", "/corpora/wiki/2026", ""):
        [violation] = check_dataset_path(dataset_body("research", "mine", path), factory, research, index)
        assert violation.rule == TENANT_SUBTREE and "dataset 'wiki' of tenant 'ops'" in violation.message
    assert (
        check_dataset_path(dataset_body("research", "mine", "/corpora/wikis"), factory, research, index) == []
    )
    assert (
        check_dataset_path(
            dataset_body("research", "m", "/corpora", storage="scratch"), factory, research, index
        )
        == []
    )


def test_the_webhook_refuses_a_non_canonical_path_before_looking_for_overlaps():
    factory = two_tenant_factory()
    [violation] = check_dataset_path(
        dataset_body("research", "m", "/a/../b"), factory, factory.spec.tenants[0], {}
    )
    assert violation.rule == CANONICAL


NS_LABELS = {"aifactory.dev/factory": "de-1", "aifactory.dev/tenant": "research"}


def plan(body: dict, others: list[dict] = (), volume: dict | None = None):
    factory = two_tenant_factory()
    bodies: dict[str, list[dict]] = {}
    for other in others:
        bodies.setdefault(other["metadata"]["namespace"], []).append(other)
    return plan_dataset(
        Dataset.model_validate(body), NS_LABELS, factory, None, volume, declared_paths(factory, bodies)
    )


def test_the_volume_points_into_the_tenants_subtree():
    volume, _claim = plan(dataset_body("research", "corpus", "/corpora/de")).apply
    assert volume["spec"]["nfs"] == {"server": "nfs", "path": "/export/research/corpora/de"}


def test_an_empty_path_is_the_root_of_the_tenants_subtree():
    volume, _claim = plan(dataset_body("research", "corpus", "")).apply
    assert volume["spec"]["nfs"]["path"] == "/export/research"


def test_the_younger_of_two_overlapping_datasets_of_different_tenants_stalls_without_a_volume():
    older = dataset_body("ops", "wiki", "/corpora", created="2026-01-01T00:00:00Z")
    younger = dataset_body("research", "corpus", "/corpora/de", created="2026-01-01T00:00:05Z")
    result = plan(younger, [older, younger])
    assert (result.outcome.state, result.outcome.reason) == ("stalled", "PathOverlapsAnotherTenant")
    assert "overlaps dataset 'wiki' of tenant 'ops'" in result.outcome.message
    assert result.apply == [] and result.status == {"phase": "Refused"}


def test_the_older_of_two_overlapping_datasets_keeps_its_volume():
    older = dataset_body("research", "corpus", "/corpora/de", created="2026-01-01T00:00:00Z")
    younger = dataset_body("ops", "wiki", "/corpora", created="2026-01-01T00:00:05Z")
    assert plan(older, [older, younger]).outcome.reason == "CreatingClaim"


def test_a_non_canonical_path_that_got_past_the_crd_stalls():
    result = plan(dataset_body("research", "corpus", "/a/../ops"))
    assert (result.outcome.reason, result.apply) == ("PathNotCanonical", [])


def test_a_dynamic_dataset_ignores_other_tenants_paths():
    older = dataset_body("ops", "wiki", "/corpora", storage="scratch", created="2026-01-01T00:00:00Z")
    younger = dataset_body("research", "c", "/corpora", storage="scratch", created="2026-01-02T00:00:00Z")
    assert plan(younger, [older]).outcome.reason == "CreatingClaim"


def test_a_volume_made_before_confinement_stalls_with_the_fix():
    stale = {"spec": {"nfs": {"server": "nfs", "path": "/export/corpora/de"}}}
    result = plan(dataset_body("research", "corpus", "/corpora/de"), volume=stale)
    assert result.outcome.reason == "VolumeOutsideTenantSubtree"
    assert "move the data to '/export/research/corpora/de'" in result.outcome.message
    assert result.apply == []
