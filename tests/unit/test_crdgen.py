"""The committed CRDs are what the models generate, and every schema is structural."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from aifactory_operator.crdgen import generate_crds, render_crds, to_structural

REPO = Path(__file__).resolve().parents[2]
CRDS = generate_crds()
FORBIDDEN_KEYS = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "const", "title", "nullable"}


def walk(schema: dict[str, Any], path: str = ""):
    """Yields (path, node) for every schema node below and including `schema`."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def all_nodes():
    for crd in CRDS.values():
        for path, node in walk(root_schema(crd)):
            yield pytest.param(path, node, id=f"{crd['spec']['names']['kind']}{path or '.'}")


def test_committed_crds_match_the_models():
    for name, text in render_crds().items():
        committed = REPO / "crds" / name
        assert committed.exists(), f"{committed} is missing; run `make crds`"
        assert committed.read_text() == text, f"{committed} is stale; run `make crds`"
    assert sorted(p.name for p in (REPO / "crds").glob("*.yaml")) == sorted(render_crds())


@pytest.mark.parametrize(("path", "node"), list(all_nodes()))
def test_every_schema_node_is_structural(path, node):
    assert not FORBIDDEN_KEYS & node.keys(), f"{path} has {FORBIDDEN_KEYS & node.keys()}"
    assert "type" in node, f"{path} has no type"
    assert node.get("additionalProperties") is not False
    assert not ("properties" in node and "additionalProperties" in node)
    if node.get("default") is not None:
        assert node["default"] is not None


@pytest.mark.parametrize(("path", "node"), list(all_nodes()))
def test_every_list_and_string_is_bounded(path, node):
    if node["type"] == "array":
        assert "maxItems" in node, f"{path} is an unbounded list"
    if node["type"] == "string" and path not in (".apiVersion", ".kind"):
        assert "maxLength" in node or "enum" in node, f"{path} is an unbounded string"
    if node["type"] == "object" and "additionalProperties" in node:
        assert "maxProperties" in node, f"{path} is an unbounded map"


@pytest.mark.parametrize(("path", "node"), list(all_nodes()))
def test_every_spec_and_status_field_is_documented(path, node):
    if path.startswith((".spec", ".status")) and not path.endswith(("{}", "[]")):
        assert node.get("description"), f"{path} has no description for kubectl explain"


@pytest.mark.parametrize("crd", CRDS.values(), ids=lambda c: c["spec"]["names"]["kind"])
def test_names_short_names_category_and_status_subresource(crd):
    names = crd["spec"]["names"]
    assert names["categories"] == ["aifactory-all"]
    assert len(names["shortNames"]) == 1
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["group"] == "aifactory.dev"


@pytest.mark.parametrize("crd", CRDS.values(), ids=lambda c: c["spec"]["names"]["kind"])
def test_printer_columns_point_at_fields_that_exist(crd):
    schema = root_schema(crd)
    known = {path for path, _ in walk(schema)}
    for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
        json_path = column["jsonPath"].split("[?", 1)[0]
        if json_path == ".metadata.creationTimestamp":
            continue
        assert json_path in known, f"{column['name']} reads {json_path}, which the schema lacks"


def test_short_names_are_the_agreed_ones():
    assert {c["spec"]["names"]["kind"]: c["spec"]["names"]["shortNames"][0] for c in CRDS.values()} == {
        "AIFactory": "aif",
        "Dataset": "dset",
        "TrainingJob": "tj",
        "ModelEndpoint": "me",
    }


def test_aifactory_is_cluster_scoped_and_the_rest_namespaced():
    scopes = {c["spec"]["names"]["kind"]: c["spec"]["scope"] for c in CRDS.values()}
    assert scopes == {
        "AIFactory": "Cluster",
        "Dataset": "Namespaced",
        "TrainingJob": "Namespaced",
        "ModelEndpoint": "Namespaced",
    }


def test_cel_rules_are_carried_into_the_schema():
    me = root_schema(CRDS["aifactory.dev_modelendpoints.yaml"])
    rules = me["properties"]["spec"]["properties"]["replicas"]["x-kubernetes-validations"]
    assert rules[0]["rule"] == "self.min <= self.max"
    ds = root_schema(CRDS["aifactory.dev_datasets.yaml"])
    jurisdiction = ds["properties"]["spec"]["properties"]["jurisdiction"]
    assert {"rule": "self == oldSelf", "message": "jurisdiction is immutable"} in jurisdiction[
        "x-kubernetes-validations"
    ]


def test_optional_fields_lose_their_null_branch():
    schema = {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}], "default": None}
    assert to_structural(schema, {}) == {"type": "string", "maxLength": 5}


def test_references_are_inlined_with_the_fields_own_description():
    defs = {"Pool": {"type": "object", "description": "a pool", "properties": {"n": {"type": "integer"}}}}
    node = {"$ref": "#/$defs/Pool", "description": "the pool of this job"}
    assert to_structural(node, defs) == {
        "type": "object",
        "description": "the pool of this job",
        "properties": {"n": {"type": "integer"}},
    }


def test_rendered_yaml_is_marked_generated():
    for text in render_crds().values():
        assert text.startswith("# GENERATED by `make crds`")
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
