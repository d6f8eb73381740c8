"""kopf's toggle sets, made to scale with the number of watched objects.

On start, kopf holds every handler back until every index is filled: each listed object of an
indexed kind gets a toggle in one `ToggleSet(all)`, and each object's worker waits on that set.
kopf's set wakes every waiter whenever a toggle is added or dropped, and each waiter then
re-checks every toggle: with 3,000 queued TrainingJobs (and their Pods and Jobs) that was half of
the operator's CPU for the first minute (py-spy), before any job could be admitted.

`CountingToggleSet` gives the same answers, keeps a count of the toggles that are on so a check
is O(1), and wakes waiters only when the set's own answer changes, which is all they wait for.
"""

from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles


class CountedToggle(aiotoggles.Toggle):
    """A toggle that tells its set when it turns, so that the set's count stays right."""

    def __init__(self, state: bool, *, name: str | None, owner: "CountingToggleSet") -> None:
        super().__init__(state, name=name, condition=owner._condition)
        self.owner = owner

    async def turn_to(self, __state: bool) -> None:
        async with self._condition:
            if self in self.owner and self._state != bool(__state):
                self.owner.on_count += 1 if __state else -1
            self._state = bool(__state)
            # Always: a task may wait on this one toggle, not on the set.
            self._condition.notify_all()


class CountingToggleSet(aiotoggles.ToggleSet):
    """kopf's ToggleSet for `all` and `any`, with O(1) checks and wake-ups only on a change."""

    def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
        super().__init__(fn)
        self.on_count = 0

    def is_on(self) -> bool:
        if self._fn is all:
            return self.on_count == len(self._toggles)
        if self._fn is any:
            return self.on_count > 0
        return super().is_on()

    async def make_toggle(self, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
        toggle = CountedToggle(__val, name=name, owner=self)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            self.on_count += toggle.is_on()
            self.notify_if_changed(before)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles([toggle])

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            for toggle in toggles:
                if toggle in self._toggles:
                    self._toggles.discard(toggle)
                    self.on_count -= toggle.is_on()
            self.notify_if_changed(before)

    def notify_if_changed(self, before: bool) -> None:
        if self.is_on() != before:
            self._condition.notify_all()


def install() -> None:
    """kopf builds its toggle sets as `aiotoggles.ToggleSet(...)` when the operator starts (its
    orchestration and run modules look the class up on the module then), so replacing the module's
    class before `kopf.operator()` runs is enough."""
    aiotoggles.ToggleSet = CountingToggleSet  # type: ignore[misc]
