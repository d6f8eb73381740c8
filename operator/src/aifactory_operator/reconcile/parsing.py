"""Turning a raw object into its model, with errors that name the field path."""

from typing import Any, TypeVar

from pydantic import ValidationError

from ..api.v1alpha1 import Resource
from .conditions import Outcome

R = TypeVar("R", bound=Resource)


class InvalidSpec(Exception):
    """The object cannot be acted on; `outcome` is the Stalled condition that says why."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def parse_resource(model: type[R], body: dict[str, Any]) -> R:
    """The typed object, or InvalidSpec naming each offending field (e.g. spec.nodePools[1].nodes)."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(f"{format_path(e['loc'])}: {e['msg']}" for e in error.errors())
        raise InvalidSpec(Outcome.stalled("InvalidSpec", problems)) from None


def format_path(loc: tuple[Any, ...]) -> str:
    """('spec', 'nodePools', 1, 'nodes') -> 'spec.nodePools[1].nodes'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


_QUANTITY_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
}


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Gi", "64G", "1000") in bytes."""
    for suffix in sorted(_QUANTITY_SUFFIXES, key=len, reverse=True):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * _QUANTITY_SUFFIXES[suffix])
    return int(float(quantity))
