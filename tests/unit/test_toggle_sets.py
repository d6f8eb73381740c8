"""Our toggle set answers exactly as kopf's does, and wakes its waiters only when its answer
changes: filling thousands of toggles at start must not wake every waiting worker each time."""

import asyncio
import inspect
from collections.abc import Callable, Iterable

from hypothesis import given
from hypothesis import strategies as st
from kopf._cogs.aiokits import aiotoggles

from aifactory_operator.handlers.toggles import CountingToggleSet

# Each step: make a toggle (on or off), turn toggle i, or drop toggle i (i modulo those made).
Step = tuple[str, int, bool]
steps = st.lists(
    st.tuples(st.sampled_from(["make", "turn", "drop"]), st.integers(0, 50), st.booleans()), max_size=60
)


async def answers(toggle_set: aiotoggles.ToggleSet, script: list[Step]) -> list[bool]:
    made: list[aiotoggles.Toggle] = []
    seen = []
    for action, index, state in script:
        if action == "make":
            made.append(await toggle_set.make_toggle(state))
        elif made and action == "turn":
            await made[index % len(made)].turn_to(state)
        elif made and action == "drop":
            await toggle_set.drop_toggle(made[index % len(made)])
        seen.append(toggle_set.is_on())
    return seen


def run_both(fn: Callable[[Iterable[bool]], bool], script: list[Step]) -> tuple[list[bool], list[bool]]:
    async def both() -> tuple[list[bool], list[bool]]:
        return await answers(aiotoggles.ToggleSet(fn), script), await answers(CountingToggleSet(fn), script)

    return asyncio.run(both())


@given(steps)
def test_an_all_set_answers_as_kopfs_after_every_step(script: list[Step]):
    kopfs, ours = run_both(all, script)
    assert ours == kopfs


@given(steps)
def test_an_any_set_answers_as_kopfs_after_every_step(script: list[Step]):
    kopfs, ours = run_both(any, script)
    assert ours == kopfs


def test_waiters_wake_once_when_the_last_of_many_toggles_is_dropped():
    async def scenario() -> tuple[int, list[bool]]:
        toggle_set = CountingToggleSet(all)
        wakeups = 0
        notify_all = toggle_set._condition.notify_all

        def counting_notify_all() -> None:
            nonlocal wakeups
            wakeups += 1
            notify_all()

        toggle_set._condition.notify_all = counting_notify_all  # type: ignore[method-assign]
        toggles = [await toggle_set.make_toggle(name=f"object-{i}") for i in range(1000)]
        waiters = [asyncio.create_task(toggle_set.wait_for(True)) for _ in range(1000)]
        for toggle in toggles[:-1]:
            await toggle_set.drop_toggle(toggle)
        await asyncio.sleep(0)
        waiting = [not w.done() for w in waiters]
        await toggle_set.drop_toggle(toggles[-1])
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=10)
        return wakeups, waiting

    wakeups, waiting_before_last = asyncio.run(scenario())
    assert all(waiting_before_last)
    # Once when the first off toggle turned the set off, once when the last one left.
    assert wakeups == 2


def test_a_task_waiting_on_one_toggle_of_the_set_is_woken_when_it_turns():
    async def scenario() -> bool:
        toggle_set = CountingToggleSet(any)
        first = await toggle_set.make_toggle(True)
        second = await toggle_set.make_toggle(False)
        waiter = asyncio.create_task(second.wait_for(True))
        await asyncio.sleep(0)
        await second.turn_to(True)  # the set's answer (on) does not change
        await asyncio.wait_for(waiter, timeout=10)
        return toggle_set.is_on() and first.is_on()

    assert asyncio.run(scenario())


def test_kopf_still_builds_its_toggle_sets_through_the_module_install_replaces():
    from kopf._core.reactor import orchestration, running

    assert "aiotoggles.ToggleSet(all)" in inspect.getsource(orchestration.orchestrator)
    assert "aiotoggles.ToggleSet(any)" in inspect.getsource(running.spawn_tasks)
