"""TrainingJob and ModelEndpoint handlers: the factory's loop owns admission and status; these only
refuse what no loop will pick up (a spec that does not parse, a namespace of no factory).

They watch events rather than changes: a change handler costs one more write per object (kopf
records the handled spec in an annotation), and a check that only ever writes a status on failure
has nothing to remember."""

from typing import Any

import kopf

from ..api.v1alpha1 import ModelEndpoint, Resource, TrainingJob
from ..constants import GROUP, VERSION
from ..metrics import RECONCILES
from ..reconcile.conditions import Outcome
from ..reconcile.lifecycle_events import construct_lifecycle_events
from ..reconcile.parsing import InvalidSpec, parse_resource
from .runtime import instrumented, kube, report


def check_workload(
    model: type[Resource],
    body: kopf.Body,
    patch: kopf.Patch,
    namespace: str,
    factories: kopf.Index[str, Any],
) -> None:
    """Stalled when the spec does not parse or no factory lists the namespace as a tenant's."""
    try:
        parse_resource(model, dict(body))
    except InvalidSpec as invalid:
        RECONCILES.labels(kind=model.info.kind, outcome="stalled").inc()
        refuse(model, body, patch, invalid.outcome)
        return
    governed = namespace in factories
    # A governed object is left to its factory's training loop, which counts its own reconciles.
    RECONCILES.labels(kind=model.info.kind, outcome="checked" if governed else "stalled").inc()
    if not governed:
        refuse(
            model,
            body,
            patch,
            Outcome.stalled(
                "NotATenantNamespace",
                f"metadata.namespace: '{namespace}' belongs to no AIFactory tenant;"
                " list it in spec.tenants[].namespaces of a factory",
            ),
        )


def refuse(model: type[Resource], body: kopf.Body, patch: kopf.Patch, outcome: Outcome) -> None:
    """Stalled (a TrainingJob also in phase Refused), with the Warning Event the change tells."""
    report(patch, body, outcome, **({"phase": "Refused"} if model is TrainingJob else {}))
    stored = dict(body.get("status") or {})
    for event in construct_lifecycle_events(model.info.kind, stored, dict(patch.status)):
        kube().record_event(dict(body), event.reason, event.message, warning=event.warning)


def is_unreported(body: kopf.Body, type: str | None, **_: Any) -> bool:
    """Worth a check: no factory's loop has reported on this generation (the loop parses every
    spec it reports on, and only governed namespaces have a loop), or our own stale verdict,
    NotATenantNamespace, is to be looked at again. A filter, not a branch in the handler: kopf
    then skips the thread hop and the log line for each of the loop's own status writes."""
    if type == "DELETED":
        return False
    status = body.get("status") or {}
    stalled_here = any(c.get("reason") == "NotATenantNamespace" for c in status.get("conditions") or [])
    return status.get("observedGeneration") != body.metadata.get("generation") or stalled_here


@kopf.on.event(GROUP, VERSION, TrainingJob.info.plural, when=is_unreported)
@instrumented("TrainingJob")
def check_trainingjob(
    body: kopf.Body,
    patch: kopf.Patch,
    namespace: str,
    factories_by_tenant_namespace: kopf.Index[str, Any],
    **_: Any,
) -> None:
    check_workload(TrainingJob, body, patch, namespace, factories_by_tenant_namespace)


@kopf.on.event(GROUP, VERSION, ModelEndpoint.info.plural, when=is_unreported)
@instrumented("ModelEndpoint")
def check_modelendpoint(
    body: kopf.Body,
    patch: kopf.Patch,
    namespace: str,
    factories_by_tenant_namespace: kopf.Index[str, Any],
    **_: Any,
) -> None:
    check_workload(ModelEndpoint, body, patch, namespace, factories_by_tenant_namespace)
