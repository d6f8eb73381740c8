"""TrainingJob handlers: the factory's training loop owns admission and status; these only
refuse what no loop will pick up (a spec that does not parse, a namespace of no factory)."""

from typing import Any

import kopf

from ..api.v1alpha1 import TrainingJob
from ..constants import GROUP, LABEL_FACTORY, VERSION
from ..reconcile.conditions import Outcome
from ..reconcile.parsing import InvalidSpec, parse_resource
from .runtime import kube, report

PLURAL = TrainingJob.info.plural


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def check_trainingjob(body: kopf.Body, patch: kopf.Patch, namespace: str, **_: Any) -> None:
    """Stalled when the spec does not parse or no factory governs the namespace."""
    try:
        parse_resource(TrainingJob, dict(body))
    except InvalidSpec as invalid:
        report(patch, body, invalid.outcome)
        return
    labels = (kube().get("v1", "Namespace", namespace) or {"metadata": {}})["metadata"].get("labels") or {}
    if not labels.get(LABEL_FACTORY):
        report(
            patch,
            body,
            Outcome.stalled(
                "NotATenantNamespace",
                f"metadata.namespace: '{namespace}' belongs to no AIFactory tenant;"
                " list it in spec.tenants[].namespaces of a factory",
            ),
        )
