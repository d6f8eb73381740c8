"""The periodic thread behind certificate renewal and the webhook route: when the first pass runs,
that a failing pass is tried again, and that stop ends the thread."""

import threading

from aifactory_operator.handlers.periodic import Periodic


class Counting(Periodic):
    name = "counting"

    def __init__(self, first_at_start: bool, fail_first: bool = False) -> None:
        super().__init__(0.01, first_at_start=first_at_start)
        self.passes, self.fail_first, self.third = 0, fail_first, threading.Event()

    def once(self) -> object:
        self.passes += 1
        if self.passes == 3:
            self.third.set()
        if self.fail_first and self.passes == 1:
            raise RuntimeError("the API server is away")
        return None


def test_a_pass_at_start_only_when_asked():
    for first_at_start in (True, False):
        worker = Counting(first_at_start)
        worker.period = 3600.0  # only the pass at start can run
        worker.start()
        worker.stopped.wait(0.2)
        worker.stop()
        worker.thread.join(5)
        assert worker.passes == (1 if first_at_start else 0)


def test_a_failed_pass_is_tried_again_and_stop_ends_the_thread():
    worker = Counting(True, fail_first=True)
    worker.start()
    assert worker.third.wait(5), "the passes after a failure did not come"
    worker.stop()
    worker.thread.join(5)
    assert not worker.thread.is_alive()
