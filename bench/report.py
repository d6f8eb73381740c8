"""Writes BENCHMARKS.md from the JSON every benchmark leaves in bench/: the machine, the command,
and each figure beside its baseline from the same run; and BENCHMARKS.json, the same for machines."""

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
COMMANDS = {
    "admission": "bench/admission.py",
    "factory_scale": "bench/factory_scale.py",
    "training_e2e": "bench/training_e2e.py",
    "admission_e2e": "bench/admission_e2e.py",
    "training_quality": "bench/training_quality.py",
    "serving_e2e": "bench/serving_e2e.py",
    "webhook_latency": "bench/webhook_latency.py",
}


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested results as (dotted name, value) rows, in the order the benchmark wrote them."""
    if isinstance(data, dict):
        return [row for key, value in data.items() for row in flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), data)]


def describe_machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = (BENCH.parent / "hack" / "versions.env").read_text().split()
    pinned = ", ".join(v for v in versions if "=" in v)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()};"
        f" {pinned}; commit {commit}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def measured_at(path: Path) -> str:
    """When the benchmark wrote its JSON: a section may be older than the report (a long benchmark
    not re-run), and the reader should see so."""
    return f"{datetime.fromtimestamp(path.stat().st_mtime, UTC):%Y-%m-%d %H:%M}"


def render() -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/report.py); each figure sits next to the baseline measured in the",
        "same run on the same control plane. Machine: " + describe_machine() + ".",
        "",
    ]
    for name, command in COMMANDS.items():
        path = BENCH / f"{name}.json"
        if not path.exists():
            lines += [f"## {name}", "", f"Not run (`{command}` left no {path.name}).", ""]
            continue
        rows = flatten(json.loads(path.read_text()))
        lines += [
            f"## {name}",
            "",
            f"Command: `.venv/bin/python {command}` (see the Makefile's `bench` target)."
            f" Measured {measured_at(path)} UTC.",
            "",
        ]
        lines += ["| Figure | Value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    return "\n".join(lines)


def collect() -> dict[str, Any]:
    results = {
        name: json.loads((BENCH / f"{name}.json").read_text())
        for name in COMMANDS
        if (BENCH / f"{name}.json").exists()
    }
    return {"machine": describe_machine(), "commands": COMMANDS, "results": results}


def main() -> int:
    (BENCH.parent / "BENCHMARKS.md").write_text(render())
    (BENCH.parent / "BENCHMARKS.json").write_text(json.dumps(collect(), indent=2) + "\n")
    print(f"wrote {BENCH.parent / 'BENCHMARKS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
