"""TrainingJob and ModelEndpoint handlers: the factory's loop owns admission and status; these only
refuse what no loop will pick up (a spec that does not parse, a namespace of no factory)."""

from typing import Any

import kopf

from ..api.v1alpha1 import ModelEndpoint, Resource, TrainingJob
from ..constants import GROUP, LABEL_FACTORY, VERSION
from ..metrics import RECONCILES
from ..reconcile.conditions import Outcome
from ..reconcile.parsing import InvalidSpec, parse_resource
from .runtime import instrumented, kube, report


def check_workload(model: type[Resource], body: kopf.Body, patch: kopf.Patch, namespace: str) -> None:
    """Stalled when the spec does not parse or no factory governs the namespace."""
    try:
        parse_resource(model, dict(body))
    except InvalidSpec as invalid:
        RECONCILES.labels(kind=model.info.kind, outcome="stalled").inc()
        report(patch, body, invalid.outcome)
        return
    labels = (kube().get("v1", "Namespace", namespace) or {"metadata": {}})["metadata"].get("labels") or {}
    governed = bool(labels.get(LABEL_FACTORY))
    # A governed object is left to its factory's training loop, which counts its own reconciles.
    RECONCILES.labels(kind=model.info.kind, outcome="checked" if governed else "stalled").inc()
    if not governed:
        report(
            patch,
            body,
            Outcome.stalled(
                "NotATenantNamespace",
                f"metadata.namespace: '{namespace}' belongs to no AIFactory tenant;"
                " list it in spec.tenants[].namespaces of a factory",
            ),
        )


@kopf.on.resume(GROUP, VERSION, TrainingJob.info.plural)
@kopf.on.create(GROUP, VERSION, TrainingJob.info.plural)
@kopf.on.update(GROUP, VERSION, TrainingJob.info.plural)
@instrumented("TrainingJob")
def check_trainingjob(body: kopf.Body, patch: kopf.Patch, namespace: str, **_: Any) -> None:
    check_workload(TrainingJob, body, patch, namespace)


@kopf.on.resume(GROUP, VERSION, ModelEndpoint.info.plural)
@kopf.on.create(GROUP, VERSION, ModelEndpoint.info.plural)
@kopf.on.update(GROUP, VERSION, ModelEndpoint.info.plural)
@instrumented("ModelEndpoint")
def check_modelendpoint(body: kopf.Body, patch: kopf.Patch, namespace: str, **_: Any) -> None:
    check_workload(ModelEndpoint, body, patch, namespace)
