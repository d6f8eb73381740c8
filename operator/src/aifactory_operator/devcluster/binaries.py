"""Finding, and building when missing, the control-plane binaries pinned in hack/versions.env."""

import shutil
import subprocess
from pathlib import Path

from .errors import DevClusterError

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kwokctl")


def read_versions(repo: Path) -> dict[str, str]:
    """The pinned versions from hack/versions.env (KUBE_VERSION, COMPAT_KUBE_VERSION, ...)."""
    versions = {}
    for line in (repo / "hack" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            versions[key.strip()] = value.strip()
    return versions


def ensure_binaries(repo: Path) -> Path:
    """The folder holding the built binaries of the release AIFACTORY_KUBE selects (current, the
    default, or compat: the oldest supported minor); builds them, showing progress, when missing.
    hack/build-binaries.sh reads AIFACTORY_KUBE from the environment it inherits."""
    if shutil.which("go") is None:
        cached = _cached_folder(repo)
        if cached is None:
            raise DevClusterError(
                "Go is not installed and the control-plane binaries are not built;"
                " install Go >= 1.26 and run `make cluster-binaries`"
            )
        return cached
    result = subprocess.run(
        ["bash", str(repo / "hack" / "build-binaries.sh")], stdout=subprocess.PIPE, text=True
    )
    if result.returncode != 0:
        raise DevClusterError("building the control-plane binaries failed; see the messages above")
    return Path(result.stdout.strip().splitlines()[-1])


def _cached_folder(repo: Path) -> Path | None:
    result = subprocess.run(
        ["bash", str(repo / "hack" / "build-binaries.sh"), "--check"], stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip()) if result.returncode == 0 else None
