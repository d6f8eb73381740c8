"""Whether this replica may judge admission requests: only the active one of several peering
replicas watches, so only its indexes are current (reconcile/peering.py). Read from the
ClusterKopfPeering at most every CACHE_SECONDS, on the webhook's thread."""

import threading
import time
from datetime import UTC, datetime

from ..kube.client import Kube
from ..reconcile.peering import is_active

CACHE_SECONDS = 2.0
PEERING_API = "kopf.dev/v1"


class PeeringView:
    def __init__(self) -> None:
        self.name: str | None = None  # the ClusterKopfPeering, when peering
        self.priority: int | None = None
        self.client: Kube | None = None
        self.lock = threading.Lock()
        self.checked, self.active = 0.0, True

    def is_active(self) -> bool:
        if self.name is None or self.client is None:
            return True
        with self.lock:
            if time.monotonic() - self.checked >= CACHE_SECONDS:
                record = self.client.get(PEERING_API, "ClusterKopfPeering", self.name) or {}
                self.active = is_active(self.priority, record.get("status") or {}, datetime.now(UTC))
                self.checked = time.monotonic()
            return self.active


peering = PeeringView()
