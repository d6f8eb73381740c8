"""Which operator pod the webhook Service sends admission calls to (pure).

With several replicas only the active one watches, so only its view is current (peering.py). The
chart's webhook Service selects pods that carry ROUTE_LABEL, and the replicas keep that label on
the active pod alone: every pod stays Ready (a Deployment with a NotReady standby never looks
healthy to `kubectl rollout status`, Argo CD or Flux), yet the API server calls only the replica
that may judge.
"""

from collections.abc import Iterable

ROUTE_LABEL = "aifactory.dev/webhook"
ROUTE_VALUE = "serving"


def route_changes(own_pod: str, active: bool, labelled: Iterable[str]) -> dict[str, str | None]:
    """The label each pod must get (ROUTE_VALUE) or lose (None), in the order to write them.

    `labelled` names the pods that carry the label now. The active replica labels its own pod
    first and then takes the label from every other, so the Service is never left without an
    endpoint by a handover; a paused replica takes it only from itself, since it cannot know
    which peer is active."""
    labelled = set(labelled)
    if not active:
        return {own_pod: None} if own_pod in labelled else {}
    changes: dict[str, str | None] = {} if own_pod in labelled else {own_pod: ROUTE_VALUE}
    changes.update({pod: None for pod in sorted(labelled - {own_pod})})
    return changes
