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

from common import GANG_FIGURES

BENCH = Path(__file__).resolve().parent
# Each section's JSON is bench/<name>.json, written by this script and arguments (the sizes are the
# Makefile's); the chaos suite's comes from AIFACTORY_CHAOS_RESULTS.
PERFORMANCE = {
    "admission": "admission.py",
    "training_governance": "training_governance.py --nodes 32 --ticks 600",
    "factory_scale": "factory_scale.py",
    "training_e2e_400": "training_e2e.py --jobs 400 --nodes 128",
    "training_e2e": "training_e2e.py",
    "admission_e2e": "admission_e2e.py",
    "training_quality": "training_quality.py",
    "serving_e2e": "serving_e2e.py",
    "webhook_latency": "webhook_latency.py",
}
COMMANDS = {name: f".venv/bin/python bench/{script}" for name, script in PERFORMANCE.items()} | {
    "chaos": "AIFACTORY_CHAOS_FULL=1 AIFACTORY_CHAOS_RESULTS=bench/chaos.json .venv/bin/python -m pytest"
    " -m chaos tests/e2e"
}


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested results as (dotted name, value) rows, in the order the benchmark wrote them."""
    if isinstance(data, dict):
        return [row for key, value in data.items() for row in flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), data)]


def describe_machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = (BENCH.parent / "hack" / "versions.env").read_text().splitlines()
    pinned = ", ".join(line.strip() for line in lines if "=" in line and not line.startswith("#"))
    release = os.environ.get("AIFACTORY_KUBE", "current")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()};"
        f" {pinned}; run on the {release} release; commit {commit}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
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
        "same run on the same control plane; the chaos section gives what each fault scenario of the",
        "chaos suite measured, against a clean run where it has one. Machine: " + describe_machine() + ".",
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
            f"Command: `{command}` (see the Makefile's `bench` target). Measured {measured_at(path)} UTC.",
            "",
        ]
        lines += ["| Figure | Value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    peers = render_peers(
        {
            name: json.loads((BENCH / f"{name}.json").read_text())
            for name in PEER_RUNS
            if (BENCH / f"{name}.json").exists()
        }
    )
    return "\n".join(lines + peers + render_gang_runs(sorted(BENCH.glob("gangs-*.json"))) + render_moved())


# The runs that put Kueue beside the operator and the plain-Job baseline (training_e2e.py).
PEER_RUNS = ("training_e2e", "training_e2e_400")
PEER_FIGURES = (
    (
        "seconds from creating the jobs to all pods Running",
        "operator_seconds_to_all_running",
        "kueue_seconds_to_all_running",
        "baseline_direct_jobs_seconds_to_all_running",
    ),
    ("controller CPU seconds", "operator_cpu_seconds", "kueue_cpu_seconds", None),
    ("controller peak RSS (MiB)", "operator_peak_rss_mib", "kueue_peak_rss_mib", None),
    ("API writes per job", "operator_writes_per_trainingjob", "kueue_writes_per_job", None),
)


def render_peers(runs: dict[str, dict[str, Any]]) -> list[str]:
    """The "peer: Kueue" section: for each run that had Kueue beside the operator, each figure of
    both controllers (and of plain Jobs where it has one) and the operator's ratio to Kueue."""
    runs = {name: r for name, r in runs.items() if "kueue_version" in r}
    if not runs:
        return []
    lines = [
        "## peer: Kueue",
        "",
        "The same gang Jobs, in the same run on the same control plane: through our operator, through",
        "Kueue (built from its module, run out of cluster with the factory's rules, bench/kueue_peer.py),",
        "and created directly for kube-scheduler alone. Ratio: operator / Kueue (below 1: the operator",
        "needs less).",
        "",
        "| Run | Figure | Operator | Kueue | Plain Jobs | Ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        label = f"{name} ({run.get('jobs')} jobs, {run.get('nodes')} nodes, Kueue {run['kueue_version']})"
        for words, ours, theirs, plain in PEER_FIGURES:
            a, b = run.get(ours), run.get(theirs)
            ratio = (
                round(a / b, 2) if isinstance(a, int | float) and isinstance(b, int | float) and b else "-"
            )
            lines.append(
                f"| {label} | {words} | {a} | {b} | {run.get(plain, '-') if plain else '-'} | {ratio} |"
            )
    return [*lines, ""]


def render_gang_runs(paths: list[Path]) -> list[str]:
    """The runs of `make bench-gangs`, one row each: gang admission's promise (no gang stuck, no node
    double-booked, every Job where its status says) at several sizes and seeds."""
    if not paths:
        return []
    lines = [
        "## gang integrity (make bench-gangs)",
        "",
        "Command: `make bench-gangs` (training_e2e.py at 400 jobs / 128 nodes with seeds 1-5 and"
        " 1,000 / 256 with seeds 1-2). The throughput ratio is the baseline's time to all Running"
        " over the operator's, both in the same run.",
        "",
        "| Jobs | Nodes | Seed | stuck_gangs | double_booked_nodes | placement_mismatches"
        " | throughput_ratio | Measured (UTC) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    results = [(json.loads(path.read_text()), measured_at(path)) for path in paths]
    for result, when in sorted(results, key=lambda r: (r[0]["jobs"], r[0]["seed"])):
        figures = " | ".join(str(result.get(name, "-")) for name in GANG_FIGURES)
        ratio = result.get("throughput_ratio_baseline_over_operator", "-")
        lines.append(
            f"| {result['jobs']} | {result['nodes']} | {result['seed']} | {figures} | {ratio} | {when} |"
        )
    return [*lines, ""]


# Where make bench keeps the BENCHMARKS.json of the commit it started from, to compare against.
PREVIOUS = BENCH / "previous.json"
MOVED = 0.10


def moved_figures(previous: dict[str, Any], current: dict[str, Any], threshold: float = MOVED) -> list[str]:
    """Table rows for the numeric figures that moved by more than `threshold` between two
    BENCHMARKS.json results, so a reader sees at once what a change of code or version did."""
    before = {(name, k): v for name, data in previous.items() for k, v in flatten(data)}
    rows = []
    for name, data in current.items():
        for key, value in flatten(data):
            old = before.get((name, key))
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, value)):
                continue
            if old == 0 or abs(value - old) / abs(old) <= threshold:
                continue
            rows.append(f"| {name} | {key} | {old} | {value} | {(value - old) / abs(old):+.0%} |")
    return rows


def render_moved() -> list[str]:
    if not PREVIOUS.exists():
        return []
    previous = json.loads(PREVIOUS.read_text())
    rows = moved_figures(previous.get("results", {}), collect()["results"])
    return [
        "## Moved by more than 10 % since the previous BENCHMARKS.json",
        "",
        f"Previous run: {previous.get('machine', 'unknown')}.",
        "",
        "| Benchmark | Figure | Before | Now | Change |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


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
