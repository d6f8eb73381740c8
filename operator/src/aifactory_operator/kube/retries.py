"""Retrying writes the API server turned away for now: 429 (throttled) after the Retry-After it
names, 409 (a conflicting writer) after a short jittered pause. Anything else is the caller's."""

import random
import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
MAX_ATTEMPTS = 6
MAX_WAIT_SECONDS = 30.0


def wait_before_retry(error: ApiException, attempt: int) -> float | None:
    """Seconds to wait before trying again, or None when the error is not worth a retry."""
    if attempt >= MAX_ATTEMPTS:
        return None
    if error.status == 429:
        header = (error.headers or {}).get("Retry-After", "")
        seconds = float(header) if header.replace(".", "", 1).isdigit() else 2.0**attempt / 4
        return min(seconds, MAX_WAIT_SECONDS)
    if error.status == 409:
        return random.uniform(0.05, 0.2) * attempt
    return None


def retrying(call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """Runs `call`, waiting and repeating on throttling and conflicts as the API server asks."""
    attempt = 1
    while True:
        try:
            return call()
        except ApiException as error:
            delay = wait_before_retry(error, attempt)
            if delay is None:
                raise
            sleep(delay)
            attempt += 1
