"""What every handler shares: the API client, the clock, and status reporting."""

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import kopf

from ..kube.client import Kube, load_config
from ..reconcile.conditions import Outcome, construct_conditions

# A progressing reconcile is retried this soon: KWOK nodes and pods change state within seconds.
RETRY_SECONDS = 2.0
# How often a settled object is reconciled again to repair drift (a deleted node, a changed label).
RESYNC_SECONDS = float(os.environ.get("AIFACTORY_RESYNC_SECONDS", "30"))


@cache
def kube() -> Kube:
    """One API client per process, created on first use (after kopf has parsed its options)."""
    return Kube(load_config())


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


def retry_if_progressing(outcome: Outcome) -> None:
    """ "Not yet" is a retry: kopf calls the handler again after a short delay."""
    if outcome.state == "progressing":
        raise kopf.TemporaryError(outcome.message, delay=RETRY_SECONDS)
