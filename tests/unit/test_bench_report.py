"""bench/report.py lists the figures that moved by more than 10 % since the previous run."""

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
