"""What each chaos scenario measured, kept for bench/report.py: with AIFACTORY_CHAOS_RESULTS set to
a path, the session writes the figures there as JSON when it ends (make bench sets it), so that
BENCHMARKS.md lists every scenario with its numbers beside the performance figures."""

import json
import os
from pathlib import Path
from typing import Any

FIGURES: dict[str, dict[str, Any]] = {}


def record(scenario: str, **figures: Any) -> None:
    """Keeps the figures of a scenario that passed its checks, and prints them for `pytest -rP`."""
    FIGURES[scenario] = figures
    print(f"{scenario}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


def write_if_asked() -> None:
    """Writes this session's figures to $AIFACTORY_CHAOS_RESULTS, saying whether they are the full
    versions (AIFACTORY_CHAOS_FULL) or the samples `make test` runs."""
    if (target := os.environ.get("AIFACTORY_CHAOS_RESULTS")) and FIGURES:
        full = bool(os.environ.get("AIFACTORY_CHAOS_FULL"))
        Path(target).write_text(json.dumps({"full": full, "scenarios": FIGURES}, indent=2) + "\n")
