"""One line per training_e2e run of `make bench-gangs`: its size and seed, the gang audit's three
figures and the throughput ratio; exits non-zero if any run failed or left no result.

Usage: python bench/gang_runs.py bench/gangs-400-128-1.json [...]
"""

import json
import sys
from pathlib import Path
from typing import Any

from common import GANG_FIGURES, failures


def describe_run(result: dict[str, Any]) -> str:
    """`400 jobs / 128 nodes, seed 1: stuck_gangs=0 ... throughput_ratio=0.66`, then what failed."""
    figures = " ".join(f"{figure}={result.get(figure, '-')}" for figure in GANG_FIGURES)
    ratio = result.get("throughput_ratio_baseline_over_operator", "-")
    line = f"{result['jobs']} jobs / {result['nodes']} nodes, seed {result['seed']}: {figures} throughput_ratio={ratio}"
    problems = failures(result)
    return line + (f"  FAILED ({'; '.join(problems)})" if problems else "")


def main(paths: list[str]) -> int:
    failed = 0
    for path in map(Path, paths):
        if not path.exists():
            print(f"{path.name}: no result (the run stopped before writing it; see its output)")
            failed += 1
            continue
        result = json.loads(path.read_text())
        print(describe_run(result))
        failed += bool(failures(result))
    print(f"{len(paths) - failed} of {len(paths)} runs clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
