"""Keeps the webhook Service's route on the active replica (reconcile/webhook_route.py): every
ROUTE_SECONDS, on a daemon thread, reads which pods carry the route label and whether this
replica is active, and writes the difference."""

import logging
import threading

from ..kube.client import Kube
from ..reconcile.webhook_route import ROUTE_LABEL, route_changes
from . import standby

ROUTE_SECONDS = 2.0
logger = logging.getLogger(__name__)


class RouteKeeper:
    def __init__(self, client: Kube, namespace: str, own_pod: str, period: float = ROUTE_SECONDS) -> None:
        self.client, self.namespace, self.own_pod, self.period = client, namespace, own_pod, period
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="webhook-route", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while True:
            try:
                self.route_once()
            except Exception as error:  # the API server may be away for a moment; the next pass retries
                logger.warning("Routing the webhook to the active replica failed, will retry: %s", error)
            if self.stopped.wait(self.period):
                return

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
