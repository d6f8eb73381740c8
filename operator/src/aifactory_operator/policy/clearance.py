"""Clearance: a tenant never handles data, or runs in a pool, above its clearance."""

from .violations import Violation

DATASET = "clearance/dataset"
POOL = "clearance/pool"
UNKNOWN_LEVEL = "clearance/unknown-level"
RULE = DATASET


def check_level_known(level: str, levels: list[str], path: str) -> list[Violation]:
    """A classification must be one of the factory's levels."""
    if level in levels:
        return []
    return [
        Violation(
            UNKNOWN_LEVEL,
            path,
            f"'{level}' is not a classification level of this factory; use one of {levels}",
        )
    ]


def check_clearance(
    classification: str,
    clearance: str,
    levels: list[str],
    path: str,
    *,
    rule: str = DATASET,
    holder: str = "the tenant's clearance",
) -> list[Violation]:
    """Data (or a pool) classified `classification` may be handled by a tenant cleared to `clearance`."""
    if classification not in levels or clearance not in levels:
        return check_level_known(classification, levels, path)
    if levels.index(classification) <= levels.index(clearance):
        return []
    return [
        Violation(
            rule,
            path,
            f"'{classification}' is above {holder} '{clearance}'; lower the classification"
            f" or raise {holder} in the AIFactory",
        )
    ]
