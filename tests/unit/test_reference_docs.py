"""The reference pages under docs/reference are generated from the models and kept current."""

from pathlib import Path

from aifactory_operator.docsgen import render_references

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"


def test_each_custom_resource_has_a_current_reference_page():
    rendered = render_references()
    assert sorted(rendered) == ["aifactory.md", "dataset.md", "modelendpoint.md", "trainingjob.md"]
    for name, text in rendered.items():
        assert (DOCS / name).read_text() == text, f"docs/reference/{name} is stale: run `make crds`"


def test_a_reference_page_lists_every_spec_field_with_its_description():
    page = render_references()["aifactory.md"]
    assert "| `spec.sovereignty.allowedRegistries` | []string | Registry hosts" in page
    assert "| `spec.nodePools[].gpusPerNode` | integer |" in page
