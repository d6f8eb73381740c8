"""Data locality: data stays inside the jurisdiction it belongs to."""

from .violations import Violation

RULE = "data-locality"


def check_dataset_jurisdiction(
    dataset_jurisdiction: str, factory_jurisdiction: str, path: str
) -> list[Violation]:
    """A dataset may live only in a factory that serves its jurisdiction."""
    if dataset_jurisdiction == factory_jurisdiction:
        return []
    return [
        Violation(
            RULE,
            path,
            f"the data belongs to jurisdiction {dataset_jurisdiction} but this factory serves"
            f" {factory_jurisdiction}; keep it in a factory of {dataset_jurisdiction}",
        )
    ]
