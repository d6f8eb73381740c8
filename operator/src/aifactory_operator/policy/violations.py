"""A broken sovereignty rule: which rule, where in the object, and how to fix it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One refusal; `message` names the fix. Webhooks, reconcilers and tests all use this shape."""

    rule: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.rule}]"
