"""Labels and owner references that mark an object as ours and tie it to its parent."""

from typing import Any

from ..api.v1alpha1 import Resource
from ..constants import LABEL_MANAGED_BY, MANAGED_BY


def construct_owner_reference(owner: Resource) -> dict[str, Any]:
    """A controller owner reference, so garbage collection removes the child with its owner."""
    return {
        "apiVersion": owner.api_version,
        "kind": owner.info.kind,
        "name": owner.name,
        "uid": owner.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def managed_labels(**extra: str) -> dict[str, str]:
    """The labels every object we create carries."""
    return {LABEL_MANAGED_BY: MANAGED_BY, **extra}
