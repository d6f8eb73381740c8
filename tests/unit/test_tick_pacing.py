"""The training loop's pace: ticks start a period apart, and a tick cut short by its admission
limit is followed at once."""

import pytest

from aifactory_operator.handlers.training import seconds_to_next_tick


@pytest.mark.parametrize(
    ("took", "wait"),
    [(0.0, 1.0), (0.25, 0.75), (1.0, 0.0), (3.5, 0.0)],
    ids=["instant tick", "quarter-second tick", "tick as long as the period", "tick longer than it"],
)
def test_the_next_tick_starts_a_period_after_this_one_started(took, wait):
    assert seconds_to_next_tick(took, capped=False, period=1.0) == pytest.approx(wait)


def test_a_tick_stopped_at_its_admission_limit_is_followed_at_once():
    assert seconds_to_next_tick(0.1, capped=True, period=1.0) == 0.0
