"""The shared shell of kinds whose controllers only validate so far: parse and report."""

from typing import Any

import kopf

from ..api.v1alpha1 import Resource
from ..reconcile.conditions import Outcome
from ..reconcile.parsing import InvalidSpec, parse_resource
from .runtime import report


def accept(model: type[Resource], body: kopf.Body, patch: kopf.Patch) -> None:
    """Stalled when the spec cannot be parsed; otherwise accepted and waiting for its controller."""
    try:
        parse_resource(model, dict(body))
    except InvalidSpec as invalid:
        report(patch, body, invalid.outcome)
        return
    report(
        patch,
        body,
        Outcome.progressing(
            "Accepted",
            f"the {model.info.kind} spec is valid; it is not materialised by this operator version",
        ),
    )


def register(model: type[Resource]) -> None:
    """Registers create/update/resume handlers for `model` that call accept()."""
    from ..constants import GROUP, VERSION

    plural = model.info.plural

    @kopf.on.resume(GROUP, VERSION, plural)
    @kopf.on.create(GROUP, VERSION, plural)
    @kopf.on.update(GROUP, VERSION, plural)
    def accept_handler(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        accept(model, body, patch)
