"""The webhook's TLS while the operator runs: when a certificate is due, what a renewal keeps and
replaces, and that a renewed pair is served by the running TLS server from the next handshake."""

import base64
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from aifactory_operator.certificates import CA_LIFETIMES, expires, issue_ca, issue_server, renewal_due
from aifactory_operator.handlers.webhook_tls import TLS_SECRET, ServingContext, Tls, TlsKeeper, ensure_tls

HOSTS = ["aifactory-operator-webhook.aif.svc", "127.0.0.1"]
VALIDITY = timedelta(hours=3)


class Secrets:
    """The two calls ensure_tls makes, over a dict: get a Secret, apply one (stringData)."""

    def __init__(self) -> None:
        self.stored: dict | None = None
        self.writes = 0

    def get(self, api_version, kind, name, namespace=None):
        return self.stored

    def apply(self, obj):
        assert obj["metadata"]["name"] == TLS_SECRET
        data = {k: base64.b64encode(v.encode()).decode() for k, v in obj["stringData"].items()}
        self.writes += 1
        self.stored = {"metadata": {"resourceVersion": str(self.writes)}, "data": data}
        return self.stored


def serial(pem: bytes) -> int:
    return x509.load_pem_x509_certificate(pem).serial_number


def test_a_certificate_is_due_once_two_thirds_of_its_life_have_passed():
    ca = issue_ca("ca", timedelta(hours=30))
    server = issue_server(ca, "svc", HOSTS, VALIDITY)
    cert = x509.load_pem_x509_certificate(server.cert)
    start, life = cert.not_valid_before_utc, cert.not_valid_after_utc - cert.not_valid_before_utc
    assert not renewal_due(server.cert, start + life * 0.66)
    assert renewal_due(server.cert, start + life * 0.67)


def test_the_pair_is_made_once_then_kept_until_it_is_due():
    secrets, now = Secrets(), datetime.now(UTC)
    first = ensure_tls(secrets, "aif", HOSTS, now, VALIDITY)
    again = ensure_tls(secrets, "aif", HOSTS, now + VALIDITY / 2, VALIDITY)
    assert again == first and secrets.writes == 1
    assert expires(first.bundle) - now > VALIDITY * (CA_LIFETIMES - 1)


def test_a_due_serving_certificate_is_replaced_and_signed_by_the_same_ca():
    secrets, now = Secrets(), datetime.now(UTC)
    first = ensure_tls(secrets, "aif", HOSTS, now, VALIDITY)
    renewed = ensure_tls(secrets, "aif", HOSTS, now + VALIDITY * 0.7, VALIDITY)
    assert renewed.server != first.server and renewed.bundle == first.bundle
    assert secrets.stored["metadata"]["resourceVersion"] == "2"


def test_a_certificate_missing_a_name_the_webhook_needs_is_replaced():
    secrets, now = Secrets(), datetime.now(UTC)
    first = ensure_tls(secrets, "aif", HOSTS[:1], now, VALIDITY)
    wider = ensure_tls(secrets, "aif", HOSTS, now, VALIDITY)
    assert wider.server != first.server


def test_a_due_ca_is_replaced_and_the_old_one_stays_trusted_until_it_expires():
    secrets, now = Secrets(), datetime.now(UTC)
    first = ensure_tls(secrets, "aif", HOSTS, now, VALIDITY)
    ca_life = VALIDITY * CA_LIFETIMES
    swapped = ensure_tls(secrets, "aif", HOSTS, now + ca_life * 0.7, VALIDITY)
    assert swapped.bundle.endswith(first.bundle) and swapped.bundle != first.bundle
    new_ca = swapped.bundle[: -len(first.bundle)]
    server = x509.load_pem_x509_certificate(swapped.server.cert)
    assert server.issuer == x509.load_pem_x509_certificate(new_ca).subject
    after_old_expired = ensure_tls(secrets, "aif", HOSTS, now + ca_life * 1.01, VALIDITY)
    assert first.bundle not in after_old_expired.bundle


def test_the_keeper_publishes_a_new_bundle_before_it_serves_a_certificate_signed_by_it(tmp_path):
    old_ca, new_ca = issue_ca("old"), issue_ca("new")
    serving = ServingContext(tmp_path, issue_server(old_ca, "svc", HOSTS))
    order: list[str] = []
    renewed = Tls(issue_server(new_ca, "svc", HOSTS), new_ca.cert + old_ca.cert)
    keeper = TlsKeeper(lambda: renewed, serving, lambda bundle: order.append("publish"), old_ca.cert, 3600)
    original_load = serving.load
    serving.load = lambda server: (order.append("serve"), original_load(server))  # type: ignore[method-assign]
    assert keeper.renew_once() is True
    assert order == ["publish", "serve"]
    assert keeper.renew_once() is False, "nothing new the second time"


@pytest.fixture
def tls_server(tmp_path):
    """A real TLS server on 127.0.0.1 serving through a ServingContext; yields (context, port)."""
    ca = issue_ca("ca")
    serving = ServingContext(tmp_path, issue_server(ca, "svc", HOSTS))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with serving.context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield ca, serving, listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


def served_serial(ca_pem: bytes, port: int) -> int:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        pem = ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))
        tls.send(b"x")
    return serial(pem.encode())


def test_a_renewed_pair_is_served_from_the_next_handshake_without_a_restart(tls_server):
    ca, serving, port = tls_server
    before = served_serial(ca.cert, port)
    renewed = issue_server(ca, "svc", HOSTS)
    serving.load(renewed)
    assert served_serial(ca.cert, port) == serial(renewed.cert) != before


def test_kopfs_server_serves_from_our_context_and_a_renewal_reaches_it(tmp_path):
    """kopf's WebhookServer, given our context and files, serves our pair and not one of its own."""
    import kopf

    ca = issue_ca("ca")
    serving = ServingContext(tmp_path, issue_server(ca, "svc", HOSTS))
    server = kopf.WebhookServer(
        addr="127.0.0.1",
        port=0,
        context=serving.context,
        certfile=str(tmp_path / "tls.crt"),
        pkeyfile=str(tmp_path / "tls.key"),
    )
    _, context = server._build_ssl()
    assert context is serving.context
    renewed = issue_server(ca, "svc", HOSTS)
    serving.load(renewed)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    assert served_serial(ca.cert, port) == serial(renewed.cert)
    thread.join(5)
    listener.close()
