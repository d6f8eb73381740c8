"""Crash injection for the chaos tests: with AIFACTORY_CRASH_AFTER_WRITES=N the process dies, as
from SIGKILL (no cleanup, no flush), right after its N-th successful API write. Unset in production."""

import os
import threading

from ..settings import load_settings

CRASH_EXIT_CODE = 86
_limit = load_settings().crash_after_writes
_count = 0
_lock = threading.Lock()


def after_write() -> None:
    """Called once per successful write; the N-th one ends the process at once."""
    global _count
    if not _limit:
        return
    with _lock:
        _count += 1
        if _count >= _limit:
            os._exit(CRASH_EXIT_CODE)
