"""The CRDs on a real API server: established, explained, and refusing bad objects by field."""

import pytest

from conftest import create_refusal, is_established, unique

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
    out = kubectl("explain", "aifactory.spec.nodePools.gpusPerNode").stdout
    assert "GPUs in each node (nvidia.com/gpu capacity)." in out
    out = kubectl("explain", "trainingjob.spec.topology.mode").stdout
    assert "required: all nodes in one domain" in out


def test_short_names_and_the_category_work_in_kubectl(crds, kubectl, namespace):
    for short in ("aif", "ds", "tj", "me"):
        kubectl("get", short, "-n", namespace)
    kubectl("get", "aifactory", "-n", namespace)


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
