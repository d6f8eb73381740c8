"""What every handler shares: the API client, the clock, and status reporting."""

import functools
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

import kopf

from ..constants import FIELD_MANAGER
from ..kube.client import Kube, load_config
from ..metrics import RECONCILE_ERRORS, RECONCILE_SECONDS, RECONCILES
from ..reconcile.conditions import Outcome, construct_conditions
from ..settings import load_settings

# A progressing reconcile is retried this soon: KWOK nodes and pods change state within seconds.
RETRY_SECONDS = 2.0
# How often a settled object is reconciled again to repair drift (a deleted node, a changed label).
RESYNC_SECONDS = load_settings().resync_seconds
# Set by the Helm chart, which installs the shared admission policies, the webhook configurations
# and the tenant-admin role itself: the operator then only binds the role and injects the CA bundle.
INSTALLED_BY_HELM = load_settings().installed_by == "helm"


@cache
def kube() -> Kube:
    """One API client per process, created on first use (after kopf has parsed its options)."""
    api_client = load_config()
    # Tells our requests apart in the API server's audit log (the benchmarks count them by verb).
    api_client.user_agent = f"{FIELD_MANAGER}/python"
    return Kube(api_client)


def now() -> datetime:
    return datetime.now(UTC)


def report(
    patch: kopf.Patch,
    body: kopf.Body,
    outcome: Outcome,
    *,
    extra: Sequence[tuple[str, str, str, str]] = (),
    **fields: Any,
) -> None:
    """Puts observedGeneration, conditions and `fields` into the status patch kopf sends, leaving
    out whatever already has that value, so that an unchanged object gets no write at all."""
    generation = int(body.metadata.get("generation") or 0)
    current = dict(body.get("status") or {})
    existing = list(current.get("conditions") or [])
    wanted = {
        **fields,
        "observedGeneration": generation,
        "conditions": construct_conditions(outcome, existing, generation=generation, now=now(), extra=extra),
    }
    for key, value in wanted.items():
        if current.get(key) != value:
            patch.status[key] = value


class Progressing(kopf.TemporaryError):
    """ "Not yet": the handler ran well and asks to be called again; not counted as an error."""


def retry_if_progressing(outcome: Outcome) -> None:
    """ "Not yet" is a retry: kopf calls the handler again after a short delay."""
    if outcome.state == "progressing":
        raise Progressing(outcome.message, delay=RETRY_SECONDS)


@contextmanager
def measured(kind: str) -> Iterator[None]:
    """Times one reconcile of `kind`; an exception that escapes it (kopf retries the handler) is
    counted as an error and as a reconcile with outcome "error"."""
    started = time.monotonic()
    try:
        yield
    except Progressing:
        raise
    except Exception:
        count_error(kind)
        raise
    finally:
        RECONCILE_SECONDS.labels(kind=kind).observe(time.monotonic() - started)


def count_error(kind: str) -> None:
    RECONCILE_ERRORS.labels(kind=kind).inc()
    RECONCILES.labels(kind=kind, outcome="error").inc()


Handler = TypeVar("Handler", bound=Callable[..., Any])


def instrumented(kind: str) -> Callable[[Handler], Handler]:
    """Wraps a kopf handler in `measured(kind)`, keeping its name (kopf's handler id) and whether it
    is a coroutine (kopf runs plain functions in a thread)."""

    def decorate(handler: Handler) -> Handler:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with measured(kind):
                    return await handler(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            with measured(kind):
                return handler(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
