"""The air-gap bundle: what its manifest records, that the same inputs give the same bytes, and
that every way of altering an unpacked bundle is named by verify (so push refuses it)."""

import hashlib
import json
from pathlib import Path

import pytest

from aifactory_operator.bundle import (
    BundleError,
    BundleInputs,
    manifest_of,
    push_bundle,
    unpack,
    verify_bundle,
    write_bundle,
)


def blob(layout: Path, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(content)
    return f"sha256:{digest}"


@pytest.fixture
def inputs(tmp_path) -> BundleInputs:
    layout = tmp_path / "image"
    layer = blob(layout, b"layer")
    manifest = blob(layout, json.dumps({"layers": [{"digest": layer}]}).encode())
    annotations = {"org.opencontainers.image.ref.name": "0.1.0-abc"}
    index = {"schemaVersion": 2, "manifests": [{"digest": manifest, "annotations": annotations}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "trainingjobs.yaml").write_text("kind: CustomResourceDefinition\n")
    (tmp_path / "aifactory-operator-0.1.0.tgz").write_bytes(b"chart")
    (tmp_path / "sbom.cdx.json").write_text('{"bomFormat": "CycloneDX"}')
    return BundleInputs(
        layout,
        tmp_path / "aifactory-operator-0.1.0.tgz",
        tmp_path / "crds",
        tmp_path / "sbom.cdx.json",
        {"operator": "0.1.0"},
    )


def test_the_manifest_lists_every_file_with_its_digest_and_the_image_by_digest(inputs, tmp_path):
    manifest = write_bundle(inputs, tmp_path / "bundle.tar")
    assert manifest == manifest_of(tmp_path / "bundle.tar")
    assert manifest["image"] == {
        "repository": "aifactory/operator",
        "tag": "0.1.0-abc",
        "digest": json.loads((inputs.image_dir / "index.json").read_text())["manifests"][0]["digest"],
    }
    assert manifest["chart"] == "chart/aifactory-operator-0.1.0.tgz"
    assert sorted(manifest["files"]) == sorted(
        [
            "chart/aifactory-operator-0.1.0.tgz",
            "crds/trainingjobs.yaml",
            "image/index.json",
            "image/oci-layout",
            *(f"image/blobs/sha256/{p.name}" for p in (inputs.image_dir / "blobs" / "sha256").iterdir()),
            "sbom.cdx.json",
        ]
    )
    assert manifest["files"]["sbom.cdx.json"] == hashlib.sha256(inputs.sbom.read_bytes()).hexdigest()


def test_the_same_inputs_give_the_same_bytes(inputs, tmp_path):
    write_bundle(inputs, tmp_path / "a.tar")
    write_bundle(inputs, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def alter_file(root: Path) -> None:
    (root / "crds" / "trainingjobs.yaml").write_text("kind: Something else\n")


def add_file(root: Path) -> None:
    (root / "crds" / "extra.yaml").write_text("kind: ClusterRoleBinding\n")


def remove_file(root: Path) -> None:
    (root / "sbom.cdx.json").unlink()


def alter_blob_and_manifest(root: Path) -> None:
    """The harder attack: change a layer and record its new sha256 in manifest.json too."""
    [layer] = [p for p in (root / "image" / "blobs" / "sha256").iterdir() if p.read_bytes() == b"layer"]
    layer.write_bytes(b"evil layer")
    manifest = json.loads((root / "manifest.json").read_text())
    name = f"image/blobs/sha256/{layer.name}"
    manifest["files"][name] = hashlib.sha256(b"evil layer").hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (alter_file, "crds/trainingjobs.yaml: sha256 differs from the manifest"),
        (add_file, "crds/extra.yaml: not in the manifest"),
        (remove_file, "sbom.cdx.json: missing"),
        (alter_blob_and_manifest, "content does not match its digest"),
    ],
)
def test_every_alteration_is_named(inputs, tmp_path, tamper, named):
    write_bundle(inputs, tmp_path / "bundle.tar")
    root = tmp_path / "unpacked"
    unpack(tmp_path / "bundle.tar", root)
    assert verify_bundle(root) == []
    tamper(root)
    problems = verify_bundle(root)
    assert any(named in problem for problem in problems), problems


def test_push_refuses_a_bundle_that_does_not_verify_before_touching_the_registry(
    inputs, tmp_path, monkeypatch
):
    write_bundle(inputs, tmp_path / "bundle.tar")
    root = tmp_path / "unpacked"
    unpack(tmp_path / "bundle.tar", root)
    alter_file(root)
    from aifactory_operator.bundle import write_tar

    write_tar(root, tmp_path / "tampered.tar")
    calls: list[list[str]] = []
    monkeypatch.setattr("aifactory_operator.bundle.run", lambda argv: calls.append(argv) or "")
    with pytest.raises(BundleError, match=r"crds/trainingjobs\.yaml: sha256 differs"):
        push_bundle(tmp_path / "tampered.tar", "127.0.0.1:5000", "helm", plain_http=True)
    assert calls == []
