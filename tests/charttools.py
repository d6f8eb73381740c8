"""The chart checks' tools: helm (built from its Go module and cached), checkov (in its own
virtualenv, made by `make chart-tools`), and rendering the chart as `helm install` would."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aifactory_operator.devcluster.binaries import read_versions

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "aifactory-operator"


def supported_minors() -> tuple[str, str]:
    """The newest and the oldest supported Kubernetes minor as x.y.0: the two control planes of
    hack/versions.env (KUBE_VERSION and COMPAT_KUBE_VERSION)."""
    versions = read_versions(REPO)
    return tuple(
        ".".join(versions[key].lstrip("v").split(".")[:2]) + ".0"
        for key in ("KUBE_VERSION", "COMPAT_KUBE_VERSION")
    )  # type: ignore[return-value]


KUBE_VERSIONS = supported_minors()
KUBE_VERSION = KUBE_VERSIONS[0]
DIGEST = "sha256:" + "ab" * 32


def helm_binary() -> Path:
    result = subprocess.run(["bash", str(REPO / "hack" / "build-helm.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"building helm failed: {result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def helm(*args: str, check: bool = True, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(REPO / ".devcluster" / "helm-home"), "PATH": "/usr/bin:/bin"}
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    result = subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, env=env, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed: {result.stderr}")
    return result


def render(
    *sets: str, namespace: str = "aifactory-system", kube_version: str = KUBE_VERSION
) -> list[dict[str, Any]]:
    """`helm template` with these --set values, as objects."""
    flags = [f"--set={s}" for s in sets]
    out = helm("template", "aifactory", str(CHART), "-n", namespace, "--kube-version", kube_version, *flags)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def checkov_binary() -> Path:
    for candidate in (REPO / ".venv-tools" / "bin" / "checkov", Path(sys.prefix) / "bin" / "checkov"):
        if candidate.exists():
            return candidate
    pytest.fail("checkov is not installed; run `make chart-tools`")


def checkov(folder: Path) -> dict[str, Any]:
    """checkov's Kubernetes checks over every manifest in `folder`, offline."""
    result = subprocess.run(
        [
            str(checkov_binary()),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report
