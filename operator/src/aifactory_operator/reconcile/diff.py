"""Is an object already as we want it? Used to skip writes when nothing changed."""

from typing import Any


def is_satisfied(desired: Any, observed: Any) -> bool:
    """True when every field of `desired` is present in `observed` with the same value.

    Fields the server adds (defaults, status, metadata) do not matter; lists must match item by
    item, each item again compared as a subset, so a reordered or shortened list counts as a change.
    The server drops empty maps and lists, so an absent field satisfies an empty one.
    """
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(
            is_satisfied(value, observed[key]) if key in observed else value in ({}, [], None)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(desired) == len(observed)
            and all(is_satisfied(d, o) for d, o in zip(desired, observed, strict=True))
        )
    return bool(desired == observed)


def changed_objects(
    desired: list[dict[str, Any]], observed: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The desired objects that are missing or differ; `observed` is keyed by object_key()."""
    return [obj for obj in desired if not is_satisfied(obj, observed.get(object_key(obj)))]


def object_key(obj: dict[str, Any]) -> str:
    """Kind/namespace/name: identifies an object across the kinds a reconciler manages."""
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace') or ''}/{meta['name']}"
