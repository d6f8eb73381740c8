"""The CRDs on a real API server: established, explained, and refusing bad objects by field."""

import json
from collections import defaultdict

import pytest
from factories import make_factory

from aifactory_operator.constants import API_VERSION, GROUP
from aifactory_operator.crdgen import generate_crds
from conftest import create_refusal, is_established, unique, wait_for

# In the compatibility suite that make compat runs on the oldest supported minor.
pytestmark = pytest.mark.compat

TJ = {"apiVersion": "aifactory.dev/v1alpha1", "kind": "TrainingJob"}


def make_trainingjob(namespace: str, **spec: object) -> dict:
    base = {"image": "registry.factory.internal/t:1", "pool": "h100", "nodes": 2, "gpusPerNode": 8}
    return {**TJ, "metadata": {"name": unique("tj"), "namespace": namespace}, "spec": {**base, **spec}}


def make_dataset(namespace: str, name: str, **spec: object) -> dict:
    base = {
        "purpose": "training-data",
        "storage": {"name": "datasets"},
        "jurisdiction": "DE",
        "classification": "internal",
    }
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**base, **spec},
    }


def test_all_four_crds_are_established(kube, crds):
    assert sorted(crds) == [
        "aifactories.aifactory.dev",
        "datasets.aifactory.dev",
        "modelendpoints.aifactory.dev",
        "trainingjobs.aifactory.dev",
    ]
    assert all(is_established(kube, name) for name in crds)


def test_kubectl_explain_prints_the_model_docstrings(crds, kubectl):
    # The API server publishes a new CRD's OpenAPI a little after it is Established (seen on 1.37:
    # "couldn't find resource" for a second or two), and kubectl explain reads that document.
    wait_for(lambda: kubectl("explain", "aifactory", check=False).returncode == 0, "the CRDs' OpenAPI")
    out = kubectl("explain", "aifactory.spec.nodePools.gpusPerNode").stdout
    assert "GPUs in each node (nvidia.com/gpu capacity)." in out
    out = kubectl("explain", "trainingjob.spec.topology.mode").stdout
    assert "required: all nodes in one domain" in out


def test_short_names_and_the_category_work_in_kubectl(crds, kubectl, namespace):
    for short in ("aif", "dset", "tj", "me"):
        kubectl("get", short, "-n", namespace)
    kubectl("get", "aifactory-all", "-n", namespace)


def test_kubectl_gets_one_factory_by_its_singular_and_its_short_name(kube, crds, kubectl):
    name = unique("first-contact")
    kube.apply(make_factory(name, h100_nodes=0, l40s_nodes=0))
    try:
        for word in ("aifactory", "aif", "aifactories"):
            out = kubectl("get", word, name).stdout
            assert out.splitlines()[1].split()[0] == name, f"kubectl get {word} {name} printed {out!r}"
    finally:
        kube.delete(API_VERSION, "AIFactory", name)


def test_no_name_kubectl_resolves_means_two_things(crds, kubectl):
    """Every plural, singular and short name and every category served by the control plane resolves
    to one resource (our category may name our four kinds, and nothing else may use it)."""
    meanings: dict[str, set[str]] = defaultdict(set)
    categories: dict[str, set[str]] = defaultdict(set)
    for group_version, resource in served_resources(kubectl):
        group = group_version.rpartition("/")[0] if "/" in group_version else ""
        kind = f"{resource['name']}.{group}" if group else resource["name"]
        for word in (resource["name"], resource.get("singularName"), *resource.get("shortNames", [])):
            if word:
                meanings[word].add(kind)
        for category in resource.get("categories", []):
            categories[category].add(kind)
    clashes = {word: kinds for word, kinds in meanings.items() if len(kinds) > 1}
    ours = {word: kinds for word, kinds in clashes.items() if any(k.endswith("." + GROUP) for k in kinds)}
    assert ours == {}, f"names of our kinds that also name another resource: {ours}"
    for crd in generate_crds().values():
        for category in crd["spec"]["names"]["categories"]:
            assert category not in meanings, f"category {category} is also the name of {meanings[category]}"
            assert all(k.endswith("." + GROUP) for k in categories[category]), categories[category]
    # The names our kinds are known by, as the test above would see them.
    assert {"aif", "dset", "tj", "me"} <= set(meanings)


def served_resources(kubectl) -> list[tuple[str, dict]]:
    """(groupVersion, resource) for every resource the API server serves, subresources left out, from
    the same discovery documents kubectl reads."""
    versions = ["v1"]
    for group in json.loads(kubectl("get", "--raw", "/apis").stdout)["groups"]:
        versions += [v["groupVersion"] for v in group["versions"]]
    found = []
    for group_version in versions:
        path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        for resource in json.loads(kubectl("get", "--raw", path).stdout)["resources"]:
            if "/" not in resource["name"]:
                found.append((group_version, resource))
    return found


def test_wrong_type_is_refused_naming_the_field(kube, crds, namespace):
    message = create_refusal(kube, make_trainingjob(namespace, nodes="two"))
    assert "spec.nodes" in message and "integer" in message


def test_missing_required_field_is_refused(kube, crds, namespace):
    body = make_trainingjob(namespace)
    del body["spec"]["image"]
    message = create_refusal(kube, body)
    assert "spec.image: Required value" in message


def test_value_out_of_range_is_refused(kube, crds, namespace):
    message = create_refusal(kube, make_trainingjob(namespace, gpusPerNode=17))
    assert "spec.gpusPerNode" in message and "less than or equal to 16" in message


def test_unknown_enum_value_is_refused(kube, crds, namespace):
    message = create_refusal(kube, make_trainingjob(namespace, topology={"mode": "sometimes"}))
    assert "spec.topology.mode" in message and "Unsupported value" in message


def test_cel_rule_min_above_max_is_refused(kube, crds, namespace):
    body = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": unique("me"), "namespace": namespace},
        "spec": {
            "model": "m",
            "pool": "l40s",
            "runtime": {"image": "registry.factory.internal/vllm:1"},
            "replicas": {"min": 3, "max": 1},
        },
    }
    message = create_refusal(kube, body)
    assert "spec.replicas" in message and "replicas.min must not exceed replicas.max" in message


def test_cel_rule_pool_region_outside_the_jurisdiction_is_refused(kube, crds):
    body = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactory",
        "metadata": {"name": unique("aif")},
        "spec": {
            "sovereignty": {"jurisdiction": "DE", "regions": ["de-fra"]},
            "nodePools": [{"name": "p", "gpuProduct": "NVIDIA-H100", "region": "us-east"}],
        },
    }
    message = create_refusal(kube, body)
    assert "spec.nodePools" in message and "must be one of sovereignty.regions" in message


def test_cel_rule_bad_cidr_is_refused(kube, crds):
    body = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactory",
        "metadata": {"name": unique("aif")},
        "spec": {
            "sovereignty": {"jurisdiction": "DE", "regions": ["de-fra"], "allowedEgress": ["10.0.0.0/33"]}
        },
    }
    message = create_refusal(kube, body)
    assert "spec.sovereignty.allowedEgress[0]" in message and "must be a CIDR" in message


def test_changing_an_immutable_jurisdiction_is_refused(kube, crds, namespace):
    from kubernetes.client.exceptions import ApiException

    kube.apply(make_dataset(namespace, "corpus"))
    with pytest.raises(ApiException) as refused:
        kube.apply(make_dataset(namespace, "corpus", jurisdiction="FR"))
    assert refused.value.status == 422
    assert "spec.jurisdiction" in str(refused.value.body) and "jurisdiction is immutable" in str(
        refused.value.body
    )
    stored = kube.get("aifactory.dev/v1alpha1", "Dataset", "corpus", namespace)
    assert stored["spec"]["jurisdiction"] == "DE"
