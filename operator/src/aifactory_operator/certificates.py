"""X.509 made with `cryptography`: a CA and serving certificates for the dev control plane and for
the operator's admission webhook (kopf's own self-signing needs tools this machine lacks)."""

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

VALIDITY = timedelta(days=365)
# A CA lives this many times as long as the serving certificates it signs.
CA_LIFETIMES = 10


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert: bytes
    key: bytes


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    *,
    hosts: list[str] | None = None,
    validity: timedelta = VALIDITY,
) -> x509.Certificate:
    """A certificate for `public_key`; a CA when `hosts` is None, else a server for those hosts."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - min(timedelta(minutes=5), validity / 10))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=hosts is None, path_length=None), critical=True)
    )
    if hosts is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names(hosts)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issue_ca(common_name: str, validity: timedelta = VALIDITY * CA_LIFETIMES) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sign(name(common_name), key.public_key(), key, None, validity=validity)
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), private_pem(key))


def issue_server(ca: KeyPair, common_name: str, hosts: list[str], validity: timedelta = VALIDITY) -> KeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sign(name(common_name), key.public_key(), ca_key, ca_cert, hosts=hosts, validity=validity)
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), private_pem(key))


def renewal_due(cert_pem: bytes, now: datetime) -> bool:
    """Two thirds of the certificate's life have passed (as cert-manager renews by default): the
    last third leaves time to retry a renewal that fails, whatever the lifetime."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return now >= start + (end - start) * 2 / 3


def expires(cert_pem: bytes) -> datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def is_usable(server: KeyPair, ca: KeyPair, hosts: list[str], now: datetime) -> bool:
    """The server certificate was issued by `ca`, names every host, and is not due for renewal."""
    cert = x509.load_pem_x509_certificate(server.cert)
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    if cert.issuer != ca_cert.subject or renewal_due(server.cert, now):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(alt_names(hosts)) <= set(names)
