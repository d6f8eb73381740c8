"""The webhook's TLS, kept current while the operator runs.

A CA and a serving certificate live in one Secret, so every replica serves a certificate that
the same CA signed. At start and then every AIFACTORY_WEBHOOK_CERT_CHECK_SECONDS the operator
reads that Secret:
- a serving certificate that is due (two thirds of its life gone) or that misses a name the
  webhook needs is replaced, and signed by the same CA;
- a CA that is due is replaced too, and the old CA stays in the bundle the API server trusts
  until it expires, so certificates signed by either CA are accepted during the swap;
- the new pair goes into the running server's SSL context, which serves the next handshake with
  it without a restart;
- a new bundle is injected into the webhook configurations.

The Secret is written with its resourceVersion, so when two replicas renew at once one write
wins and the other replica reads the winner's pair at its next check.
"""

import base64
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..certificates import CA_LIFETIMES, KeyPair, expires, is_usable, issue_ca, issue_server, renewal_due
from ..kube.client import Kube
from ..reconcile.ownership import managed_labels
from .periodic import Periodic

TLS_SECRET = "aifactory-webhook-tls"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tls:
    """What the webhook serves and what the API server must trust."""

    server: KeyPair
    bundle: bytes  # the current CA, then the previous one while it is still valid


def ensure_tls(client: Kube, namespace: str, hosts: list[str], now: datetime, validity: timedelta) -> Tls:
    """The pair and bundle from the Secret, renewed where due (see the module's docstring)."""
    secret = client.get("v1", "Secret", TLS_SECRET, namespace) or {}
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    ca = KeyPair(data["ca.crt"], data["ca.key"]) if {"ca.crt", "ca.key"} <= set(data) else None
    previous = data.get("ca-previous.crt", b"")
    if ca is not None and renewal_due(ca.cert, now):
        previous, ca = ca.cert, None
    if previous and expires(previous) <= now:
        previous = b""
    if ca is not None and {"tls.crt", "tls.key"} <= set(data):
        server = KeyPair(data["tls.crt"], data["tls.key"])
        if is_usable(server, ca, hosts, now):
            return Tls(server, ca.cert + previous)
    ca = ca or issue_ca("aifactory-webhook-ca", validity * CA_LIFETIMES)
    server = issue_server(ca, hosts[0], hosts, validity)
    metadata: dict[str, Any] = {"name": TLS_SECRET, "namespace": namespace, "labels": managed_labels()}
    if version := (secret.get("metadata") or {}).get("resourceVersion"):
        metadata["resourceVersion"] = version  # one writer wins a race of renewals
    files = {"ca.crt": ca.cert, "ca.key": ca.key, "tls.crt": server.cert, "tls.key": server.key}
    if previous:
        files["ca-previous.crt"] = previous
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "Opaque",
            "stringData": {name: content.decode() for name, content in files.items()},
        }
    )
    return Tls(server, ca.cert + previous)


class ServingContext:
    """The SSL context the webhook server serves with, and the files its pair is loaded from; a
    new pair is loaded into the same context, so the next handshake uses it."""

    def __init__(self, folder: Path, server: KeyPair) -> None:
        self.folder = folder
        self.context = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
        self.load(server)

    def load(self, server: KeyPair) -> None:
        cert, key = self.folder / "tls.crt", self.folder / "tls.key"
        key.touch(mode=0o600)
        cert.write_bytes(server.cert)
        key.write_bytes(server.key)
        self.context.load_cert_chain(str(cert), str(key))
        self.server = server


class TlsKeeper(Periodic):
    """Checks the TLS every `period` seconds, the first time one period after start (the start
    itself has just checked it). A failed check is retried: the certificate still has a third of
    its life."""

    name = "webhook-tls"

    def __init__(
        self,
        check: Callable[[], Tls],
        serving: ServingContext,
        publish: Callable[[bytes], None],
        bundle: bytes,
        period: float,
    ) -> None:
        self.check, self.serving, self.publish, self.bundle = check, serving, publish, bundle
        super().__init__(period, first_at_start=False)

    def once(self) -> object:
        return self.renew_once()

    def renew_once(self) -> bool:
        """Serves and publishes what the Secret now holds; True when something changed."""
        tls = self.check()
        changed = False
        if tls.bundle != self.bundle:
            self.publish(tls.bundle)
            self.bundle, changed = tls.bundle, True
        if tls.server != self.serving.server:
            self.serving.load(tls.server)
            changed = True
            logger.info("Renewed the webhook serving certificate; valid until %s", expires(tls.server.cert))
        return changed
