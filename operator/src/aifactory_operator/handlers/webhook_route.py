"""Keeps the webhook Service's route on the active replica (reconcile/webhook_route.py): every
ROUTE_SECONDS, on a daemon thread, reads which pods carry the route label and whether this
replica is active, and writes the difference."""

import logging

from ..kube.client import Kube
from ..reconcile.webhook_route import ROUTE_LABEL, route_changes
from . import standby
from .periodic import Periodic

ROUTE_SECONDS = 2.0
logger = logging.getLogger(__name__)


class RouteKeeper(Periodic):
    name = "webhook-route"

    def __init__(self, client: Kube, namespace: str, own_pod: str, period: float = ROUTE_SECONDS) -> None:
        self.client, self.namespace, self.own_pod = client, namespace, own_pod
        super().__init__(period, first_at_start=True)

    def once(self) -> object:
        return self.route_once()

    def route_once(self) -> dict[str, str | None]:
        """Writes the label changes this replica owes; returns them."""
        pods = self.client.list("v1", "Pod", namespace=self.namespace, label_selector=ROUTE_LABEL)
        changes = route_changes(
            self.own_pod, standby.peering.is_active(), [p["metadata"]["name"] for p in pods]
        )
        for pod, value in changes.items():
            body = {"metadata": {"labels": {ROUTE_LABEL: value}}}
            self.client.patch("v1", "Pod", pod, body, namespace=self.namespace)
            logger.info("Webhook route: %s %s", "to" if value else "away from", pod)
        return changes
