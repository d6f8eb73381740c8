"""Reading YAML manifests and applying them, in file order, with our field manager."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .client import Kube


def read_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every object in the YAML files, in order; empty documents are skipped."""
    objects: list[dict[str, Any]] = []
    for path in paths:
        objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return objects


def apply_manifests(kube: Kube, paths: Iterable[Path]) -> list[str]:
    """Applies each object; returns 'Kind/name' for each, for printing."""
    applied = []
    for obj in read_manifests(paths):
        kube.apply(obj)
        applied.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return applied
