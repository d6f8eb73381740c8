"""What every handler shares: the API client, the clock, and status reporting."""

import os
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


def report(patch: kopf.Patch, body: kopf.Body, outcome: Outcome, **fields: Any) -> None:
    """Writes observedGeneration, conditions and `fields` into the status patch kopf sends once."""
    generation = int(body.metadata.get("generation") or 0)
    existing = list(body.get("status", {}).get("conditions") or [])
    for key, value in fields.items():
        patch.status[key] = value
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = construct_conditions(outcome, existing, generation=generation, now=now())


def retry_if_progressing(outcome: Outcome) -> None:
    """ "Not yet" is a retry: kopf calls the handler again after a short delay."""
    if outcome.state == "progressing":
        raise kopf.TemporaryError(outcome.message, delay=RETRY_SECONDS)
