"""A check run every `period` seconds on a daemon thread until stopped: the webhook's certificate
renewal and its Service route. A failed pass is logged and the next one tries again."""

import logging
import threading

logger = logging.getLogger(__name__)


class Periodic:
    name = "periodic"  # the thread's name, and what a failure's log line calls the work

    def __init__(self, period: float, *, first_at_start: bool) -> None:
        self.period, self.first_at_start = period, first_at_start
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        if not self.first_at_start and self.stopped.wait(self.period):
            return
        while True:
            try:
                self.once()
            except Exception as error:  # the API server may be away for a moment
                logger.warning("%s failed, will retry: %s", self.name, error)
            if self.stopped.wait(self.period):
                return

    def once(self) -> object:
        raise NotImplementedError
