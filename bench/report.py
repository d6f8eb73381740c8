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
    "training_e2e_400_tenants": "training_e2e.py --jobs 400 --nodes 128 --tenants 4",
    "training_e2e": "training_e2e.py",
    "admission_e2e": "admission_e2e.py",
    "training_quality": "training_quality.py",
    "preemption_e2e": "preemption_e2e.py --nodes 32 --urgent 6 --grace 10",
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


# The runs that put Kueue beside the operator and kube-scheduler's plain Jobs, and their figures:
# (words, which way is better, the operator's, Kueue's and the plain Jobs' dotted names).
TE2E = (
    (
        "seconds from creating the jobs to all pods Running",
        "lower",
        "operator_seconds_to_all_running",
        "kueue_seconds_to_all_running",
        "baseline_direct_jobs_seconds_to_all_running",
    ),
    ("controller CPU seconds", "lower", "operator_cpu_seconds", "kueue_cpu_seconds", None),
    ("controller peak RSS (MiB)", "lower", "operator_peak_rss_mib", "kueue_peak_rss_mib", None),
    ("API writes per job", "lower", "operator_writes_per_trainingjob", "kueue_writes_per_job", None),
)
PLAIN = "baseline_kube_scheduler_plain_jobs"
GANGS_BOUND = f"{PLAIN}.jobs_with_every_pod_bound"
QUALITY = tuple(
    (words, better, f"operator.{key}", f"kueue.{key}", f"{PLAIN}.{key}")
    for words, better, key in (
        ("GPU utilisation, saturated queue", "higher", "gpu_utilisation"),
        ("GPU utilisation without half-placed gangs", "higher", "gpu_utilisation_without_half_placed_gangs"),
        ("required gangs within their domain", "higher", "required_gangs_in_one_domain_of_their_level"),
        ("preferred gangs within their domain", "higher", "preferred_gangs_in_one_domain_of_their_level"),
        ("gangs half placed 5 samples in a row", "lower", "gangs_half_placed_for_5_samples"),
        ("most gangs half placed at one instant", "lower", "partial_gangs_max"),
        ("gangs completed in the window", "higher", "gangs_completed"),
    )
)
PEER_FIGURES: dict[str, tuple[tuple[str, str, str, str, str | None], ...]] = {
    "training_e2e": TE2E,
    "training_e2e_400": TE2E,
    "training_e2e_400_tenants": TE2E,
    "admission_e2e": (
        (
            "gang decisions per second, deep queue",
            "higher",
            "operator.admissions.decisions_per_second",
            "kueue.admissions.decisions_per_second",
            f"{GANGS_BOUND}.decisions_per_second",
        ),
        (
            "workers per second, deep queue",
            "higher",
            "operator.admissions.workers_per_second",
            "kueue.admissions.workers_per_second",
            f"{GANGS_BOUND}.workers_per_second",
        ),
        (
            "wait p50 (s), deep queue",
            "lower",
            "operator.admissions.wait_p50_seconds",
            "kueue.admissions.wait_p50_seconds",
            f"{GANGS_BOUND}.wait_p50_seconds",
        ),
    ),
    "training_quality": QUALITY,
    "preemption_e2e": tuple(
        (words, "lower", f"operator.{key}", f"kueue.{key}", f"{PLAIN}.{key}")
        for words, key in (
            ("seconds until every urgent gang ran", "seconds_until_every_urgent_gang_ran"),
            ("urgent gang time to start p50 (s)", "time_to_start_p50_seconds"),
            ("low-priority GPUs stopped", "low_priority_gpus_stopped"),
        )
    ),
}
PEER_RUNS = tuple(PEER_FIGURES)


def render_peers(runs: dict[str, dict[str, Any]]) -> list[str]:
    """The "peer: Kueue" section: for each run that had Kueue beside the operator, each figure of
    both controllers (and of plain Jobs where it has one) and the operator's ratio to Kueue."""
    versions = {
        name: r.get("kueue_version") or (r.get("kueue") or {}).get("version") for name, r in runs.items()
    }
    runs = {name: r for name, r in runs.items() if versions[name]}
    if not runs:
        return []
    lines = [
        "## peer: Kueue",
        "",
        "The same gang Jobs, in the same run on the same control plane: through our operator, through",
        "Kueue (built from its module, run out of cluster with the factory's rules, bench/kueue_peer.py),",
        "and created directly for kube-scheduler alone. Ratio: operator / Kueue; the Better column says",
        "which way is better for the operator.",
        "",
        "| Run | Figure | Better | Operator | Kueue | Plain Jobs | Ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        values = dict(flatten(run))
        label = f"{name} ({describe_size(run)}, Kueue {versions[name]})"
        for words, better, ours, theirs, plain in PEER_FIGURES[name]:
            a, b = values.get(ours), values.get(theirs)
            ratio = (
                round(a / b, 2) if isinstance(a, int | float) and isinstance(b, int | float) and b else "-"
            )
            base = values.get(plain, "-") if plain else "-"
            lines.append(f"| {label} | {words} | {better} | {a} | {b} | {base} | {ratio} |")
    return [*lines, ""]


def describe_size(run: dict[str, Any]) -> str:
    parts = [
        f"{run[k]} {k.replace('_', ' ')}" for k in ("jobs", "urgent_gangs", "nodes", "tenants") if k in run
    ]
    return ", ".join(parts)


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
