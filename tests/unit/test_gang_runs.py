"""bench/gang_runs.py gives one line per run of make bench-gangs, saying what failed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from gang_runs import describe_run

CLEAN = {
    "jobs": 400,
    "nodes": 128,
    "seed": 3,
    "throughput_ratio_baseline_over_operator": 0.66,
    "stuck_gangs": 0,
    "double_booked_nodes": 0,
    "placement_mismatches": 0,
}


def test_a_clean_run_is_one_line_of_its_size_seed_figures_and_ratio():
    assert describe_run(CLEAN) == (
        "400 jobs / 128 nodes, seed 3: stuck_gangs=0 double_booked_nodes=0 placement_mismatches=0"
        " throughput_ratio=0.66"
    )


def test_a_run_with_a_figure_not_zero_or_a_wait_given_up_says_it_failed_and_why():
    result = {**CLEAN, "stuck_gangs": 2, "gave_up_waiting_for": "500 running pods in tbench-1"}
    assert describe_run(result).endswith(
        "  FAILED (stuck_gangs=2; gave up waiting for 500 running pods in tbench-1)"
    )
