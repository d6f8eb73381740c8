"""The figures make image reports: the image's size and layers (from the Docker engine), and what
its SBOM says it holds (packages by type: Debian's, Python's), as one JSON object on stdout.

Usage: python hack/image_report.py IMAGE BASE_IMAGE SBOM_PATH BUILD_SECONDS
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def package_counts(sbom: dict[str, Any]) -> dict[str, int]:
    """Components of a CycloneDX SBOM by package type, read from their purl (pkg:deb/..., pkg:pypi/...)."""
    kinds = Counter(
        component["purl"].split(":", 1)[1].split("/", 1)[0]
        for component in sbom.get("components", [])
        if component.get("purl", "").startswith("pkg:")
    )
    return dict(sorted(kinds.items()))


def component_version(sbom: dict[str, Any], kind: str, name: str) -> str | None:
    """The version the SBOM lists for one package, e.g. ("deb", "python3.11")."""
    for component in sbom.get("components", []):
        if component.get("name") == name and component.get("purl", "").startswith(f"pkg:{kind}/"):
            return component.get("version")
    return None


def report(inspect: dict[str, Any], base: str, sbom: dict[str, Any], seconds: int) -> dict[str, Any]:
    return {
        "image": inspect["RepoTags"][0] if inspect.get("RepoTags") else inspect["Id"],
        "id": inspect["Id"],
        "base_image": base,
        "size_mib": round(inspect["Size"] / 2**20, 1),
        "layers": len(inspect.get("RootFS", {}).get("Layers", [])),
        "user": inspect.get("Config", {}).get("User", ""),
        "entrypoint": inspect.get("Config", {}).get("Entrypoint"),
        "packages": package_counts(sbom),
        "python": component_version(sbom, "deb", "python3.11"),
        "operator": component_version(sbom, "pypi", "aifactory-operator"),
        "sbom_format": f"{sbom.get('bomFormat')} {sbom.get('specVersion')}",
        "build_seconds": seconds,
    }


def main(image: str, base: str, sbom_path: str, seconds: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True)
    [inspect] = json.loads(out.stdout)
    sbom = json.loads(Path(sbom_path).read_text())
    print(json.dumps(report(inspect, base, sbom, int(seconds)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
