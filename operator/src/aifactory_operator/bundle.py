"""The air-gap bundle: one archive a sovereign site carries across the gap, checks, and loads into
its own registry. Nothing in it is fetched from anywhere at the site.

    manifest.json                  the sha256 of every other file, the image's digest and tag, versions
    image/                         the operator image as an OCI layout (oci-layout, index.json, blobs/)
    chart/aifactory-operator-<version>.tgz   the Helm chart, packaged
    crds/*.yaml                    the CustomResourceDefinitions (in the chart too; here for GitOps)
    sbom.cdx.json                  what the image holds, CycloneDX

`write_bundle` makes it (make bundle). `verify_bundle` checks that every file is in the manifest with
its digest, that no file is missing or extra, and that every OCI blob's content matches its name.
`push_bundle` refuses a bundle that does not verify. Otherwise it copies the image to the registry
with its digest unchanged (skopeo) and pushes the chart (helm, OCI), then says what to install.
"""

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
IMAGE_REPOSITORY = "aifactory/operator"
CHART_REPOSITORY = "charts"
EPOCH = 1767225600  # 2026-01-01T00:00:00Z: every entry's mtime, so the same inputs give the same bytes


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_under(root: Path) -> Iterator[Path]:
    """Every regular file under `root`, as paths relative to it, sorted."""
    return iter(sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()))


def image_reference(image_dir: Path) -> tuple[str, str]:
    """(tag, manifest digest) of the one image in an OCI layout, from its index: the digest is what
    a registry serves it by."""
    index = json.loads((image_dir / "index.json").read_text())
    [manifest] = index["manifests"]
    tag = manifest.get("annotations", {}).get("org.opencontainers.image.ref.name", "latest")
    return str(tag), str(manifest["digest"])


def construct_manifest(root: Path, versions: dict[str, str]) -> dict[str, Any]:
    """The manifest of the staged bundle at `root`: each file's sha256, the image, the versions."""
    tag, digest = image_reference(root / "image")
    return {
        "bundle": 1,
        "image": {"repository": IMAGE_REPOSITORY, "tag": tag, "digest": digest},
        "chart": next(str(p) for p in files_under(root) if p.parts[0] == "chart"),
        "versions": versions,
        "files": {str(p): sha256_of(root / p) for p in files_under(root) if str(p) != MANIFEST},
    }


def verify_bundle(root: Path) -> list[str]:
    """What is wrong with an unpacked bundle, one line each; empty when it is intact."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        return [f"{MANIFEST}: unreadable ({error})"]
    listed: dict[str, str] = manifest.get("files", {})
    present = {str(p) for p in files_under(root)} - {MANIFEST}
    problems = [f"{name}: missing" for name in sorted(set(listed) - present)]
    problems += [f"{name}: not in the manifest" for name in sorted(present - set(listed))]
    for name in sorted(set(listed) & present):
        actual, parts = sha256_of(root / name), Path(name).parts
        if actual != listed[name]:
            problems.append(f"{name}: sha256 differs from the manifest")
        if parts[:3] == ("image", "blobs", "sha256") and actual != parts[3]:
            problems.append(f"{name}: content does not match its digest")
    digest = manifest.get("image", {}).get("digest", "")
    if f"image/blobs/sha256/{digest.removeprefix('sha256:')}" not in present:
        problems.append(f"image: the manifest's digest {digest} is not in the layout")
    return problems


def write_tar(root: Path, out: Path) -> None:
    """`root` as a tar with sorted names, fixed times and owners: the same bundle, the same bytes."""
    with tarfile.open(out, "w") as archive:
        for relative in [Path(MANIFEST), *(p for p in files_under(root) if str(p) != MANIFEST)]:
            info = archive.gettarinfo(str(root / relative), arcname=str(relative))
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            info.mode = 0o644
            with (root / relative).open("rb") as file:
                archive.addfile(info, file)


@dataclass(frozen=True)
class BundleInputs:
    image_dir: Path  # OCI layout (make image: build/image)
    chart_tgz: Path  # helm package output
    crds_dir: Path
    sbom: Path
    versions: dict[str, str]


def write_bundle(inputs: BundleInputs, out: Path) -> dict[str, Any]:
    """Stages the bundle's files, writes manifest.json, and packs it into `out`; returns the manifest."""
    with tempfile.TemporaryDirectory(prefix="aifactory-bundle-") as staging:
        root = Path(staging)
        copy_tree(inputs.image_dir, root / "image")
        copy_file(inputs.chart_tgz, root / "chart" / inputs.chart_tgz.name)
        for crd in sorted(inputs.crds_dir.glob("*.yaml")):
            copy_file(crd, root / "crds" / crd.name)
        copy_file(inputs.sbom, root / "sbom.cdx.json")
        manifest = construct_manifest(root, inputs.versions)
        (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_tar(root, out)
    return manifest


def copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())


def copy_tree(source: Path, target: Path) -> None:
    for relative in files_under(source):
        copy_file(source / relative, target / relative)


def unpack(bundle: Path, into: Path) -> None:
    """Extracts regular files only, refusing paths that leave `into`."""
    with tarfile.open(bundle) as archive:
        archive.extractall(into, filter="data")


@dataclass(frozen=True)
class Pushed:
    image: str  # registry/repository@sha256:..., what the chart's image values name
    chart: str  # oci://registry/charts/aifactory-operator
    version: str


def push_bundle(bundle: Path, registry: str, helm: str, *, plain_http: bool = False) -> Pushed:
    """Verifies the bundle, then loads the image (digest kept) and the chart into `registry`."""
    with tempfile.TemporaryDirectory(prefix="aifactory-bundle-") as workdir:
        root = Path(workdir)
        unpack(bundle, root)
        if problems := verify_bundle(root):
            raise BundleError("the bundle does not verify, nothing was pushed:\n  " + "\n  ".join(problems))
        manifest = json.loads((root / MANIFEST).read_text())
        image = manifest["image"]
        target = f"{registry}/{image['repository']}"
        tls = ["--dest-tls-verify=false"] if plain_http else []
        run(["skopeo", "copy", "--quiet", "--preserve-digests", *tls,
             f"oci:{root / 'image'}:{image['tag']}", f"docker://{target}:{image['tag']}"])  # fmt: skip
        chart = root / manifest["chart"]
        run(
            [
                helm,
                "push",
                str(chart),
                f"oci://{registry}/{CHART_REPOSITORY}",
                *(["--plain-http"] if plain_http else []),
            ]
        )
        version = chart.name.removeprefix("aifactory-operator-").removesuffix(".tgz")
        return Pushed(
            f"{target}@{image['digest']}", f"oci://{registry}/{CHART_REPOSITORY}/aifactory-operator", version
        )


class BundleError(Exception):
    """A bundle that cannot be used, and why."""


def run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise BundleError(f"{argv[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def manifest_of(bundle: Path) -> dict[str, Any]:
    with tarfile.open(bundle) as archive:
        member = archive.extractfile(MANIFEST)
        if member is None:
            raise BundleError(f"{bundle}: no {MANIFEST}")
        return dict(json.load(io.TextIOWrapper(member)))
