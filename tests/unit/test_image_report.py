"""hack/image_report.py: what make image reports of the image and its SBOM."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))

from image_report import package_counts, report

SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "components": [
        {"name": "python3.11", "version": "3.11.2-6+deb12u6", "purl": "pkg:deb/debian/python3.11@3.11.2"},
        {"name": "libc6", "version": "2.36-9", "purl": "pkg:deb/debian/libc6@2.36-9"},
        {"name": "kopf", "version": "1.38.0", "purl": "pkg:pypi/kopf@1.38.0"},
        {"name": "aifactory-operator", "version": "0.1.0", "purl": "pkg:pypi/aifactory-operator@0.1.0"},
        {"name": "debian", "version": "12", "type": "operating-system"},
    ],
}


def test_packages_are_counted_by_the_type_their_purl_names():
    assert package_counts(SBOM) == {"deb": 2, "pypi": 2}


def test_the_report_gives_size_user_and_the_versions_that_matter():
    inspect = {
        "Id": "sha256:abc",
        "RepoTags": ["aifactory-operator:0.1.0-1234567"],
        "Size": 150 * 2**20,
        "RootFS": {"Layers": ["a", "b"]},
        "Config": {"User": "10001:10001", "Entrypoint": ["aifactory", "run"]},
    }
    figures = report(inspect, "aifactory-base:bookworm-x", SBOM, 95)
    assert figures["size_mib"] == 150.0 and figures["layers"] == 2
    assert figures["user"] == "10001:10001"
    assert (figures["python"], figures["operator"]) == ("3.11.2-6+deb12u6", "0.1.0")
    assert figures["sbom_format"] == "CycloneDX 1.6"
