"""bench/report.py lists the figures that moved by more than 10 % since the previous run."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from report import moved_figures


def test_a_figure_that_moved_by_more_than_ten_percent_is_listed_with_its_change():
    rows = moved_figures({"training_e2e": {"seconds": 50.0}}, {"training_e2e": {"seconds": 60.0}})
    assert rows == ["| training_e2e | seconds | 50.0 | 60.0 | +20% |"]


def test_figures_within_ten_percent_words_and_new_figures_are_left_out():
    previous = {"admission": {"ratio": 1.0, "unit": "s", "nested": {"p50": 10}}}
    current = {"admission": {"ratio": 1.09, "unit": "ms", "nested": {"p50": 10}, "new": 3}}
    assert moved_figures(previous, current) == []


def test_nested_figures_are_compared_by_their_dotted_names():
    rows = moved_figures({"x": {"by_verb": {"get": 2}}}, {"x": {"by_verb": {"get": 1}}})
    assert rows == ["| x | by_verb.get | 2 | 1 | -50% |"]


def test_each_gang_run_is_one_row_ordered_by_size_then_seed(tmp_path):
    from report import render_gang_runs

    for jobs, seed, stuck in ((1000, 1, 0), (400, 2, 1), (400, 1, 0)):
        result = {
            "jobs": jobs,
            "nodes": jobs // 4,
            "seed": seed,
            "stuck_gangs": stuck,
            "double_booked_nodes": 0,
            "placement_mismatches": 0,
            "throughput_ratio_baseline_over_operator": 0.7,
        }
        (tmp_path / f"gangs-{jobs}-{seed}.json").write_text(json.dumps(result))
    rendered = render_gang_runs(sorted(tmp_path.glob("*.json")))
    rows = [line for line in rendered if line[:3].removeprefix("| ").isdigit()]
    assert [row.split(" | ")[:7] for row in rows] == [
        ["| 400", "100", "1", "0", "0", "0", "0.7"],
        ["| 400", "100", "2", "1", "0", "0", "0.7"],
        ["| 1000", "250", "1", "0", "0", "0", "0.7"],
    ]


def test_no_gang_runs_means_no_section():
    from report import render_gang_runs

    assert render_gang_runs([]) == []


def test_the_peer_section_puts_each_figure_of_both_controllers_beside_their_ratio():
    from report import render_peers

    run = {
        "jobs": 200,
        "nodes": 100,
        "kueue_version": "v0.17.0",
        "operator_seconds_to_all_running": 30.0,
        "kueue_seconds_to_all_running": 60.0,
        "baseline_direct_jobs_seconds_to_all_running": 25.0,
        "operator_cpu_seconds": 10.0,
        "kueue_cpu_seconds": 5.0,
    }
    lines = render_peers({"training_e2e": run, "training_e2e_400": {"jobs": 400}})
    assert lines[0] == "## peer: Kueue"
    rows = [line for line in lines if line.startswith("| training_e2e")]
    assert len(rows) == 4, "a row per figure, only for the run that had Kueue"
    assert rows[0].endswith("| lower | 30.0 | 60.0 | 25.0 | 0.5 |")
    assert rows[1].endswith("| lower | 10.0 | 5.0 | - | 2.0 |")
    assert render_peers({"training_e2e": {"jobs": 1}}) == []


def test_nested_figures_of_the_three_runners_are_found_by_their_dotted_names():
    from report import render_peers

    runner = {"gpu_utilisation": 0.9, "gangs_half_placed_for_5_samples": 0}
    run = {
        "jobs": 300,
        "nodes": 64,
        "kueue_version": "v0.17.0",
        "operator": runner,
        "kueue": {**runner, "gpu_utilisation": 0.75},
        "baseline_kube_scheduler_plain_jobs": {**runner, "gangs_half_placed_for_5_samples": 14},
    }
    rows = [line for line in render_peers({"training_quality": run}) if line.startswith("| training_quality")]
    assert rows[0] == (
        "| training_quality (300 jobs, 64 nodes, Kueue v0.17.0) | GPU utilisation, saturated queue"
        " | higher | 0.9 | 0.75 | 0.9 | 1.2 |"
    )
    half_placed = next(r for r in rows if "half placed 5 samples" in r)
    assert half_placed.endswith("| lower | 0 | 0 | 14 | - |"), "no ratio over a Kueue figure of 0"


def test_a_run_that_names_kueues_version_in_its_kueue_figures_is_a_peer_run():
    from report import render_peers

    run = {
        "jobs": 3000,
        "nodes": 256,
        "operator": {"admissions": {"decisions_per_second": 9.0}},
        "kueue": {"version": "v0.17.0", "admissions": {"decisions_per_second": 1.5}},
    }
    rows = [line for line in render_peers({"admission_e2e": run}) if line.startswith("| admission_e2e")]
    assert rows[0].startswith("| admission_e2e (3000 jobs, 256 nodes, Kueue v0.17.0) | gang decisions")
    assert rows[0].endswith("| higher | 9.0 | 1.5 | - | 6.0 |")
