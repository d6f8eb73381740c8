"""Certificates and keys for the local control plane, made with `cryptography`.

The API server gets a serving certificate from our own CA so that clients verify it (no
insecure-skip-tls-verify), and a key pair for signing service-account tokens.
"""

import ipaddress
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

VALIDITY = timedelta(days=365)


def write_pki(directory: Path) -> None:
    """Creates ca.crt, apiserver.crt/key, sa.key/pub and the admin token, unless they exist."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "apiserver.crt").exists():
        return
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _sign(_name("aifactory-devcluster-ca"), ca_key.public_key(), ca_key, None, is_ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _sign(_name("kube-apiserver"), server_key.public_key(), ca_key, ca_cert, is_ca=False)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(directory / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(directory / "apiserver.crt", server_cert.public_bytes(serialization.Encoding.PEM))
    _write(directory / "apiserver.key", _private_pem(server_key))
    _write(directory / "sa.key", _private_pem(sa_key))
    _write(
        directory / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    token = secrets.token_hex(32)
    _write(directory / "admin.token", token.encode())
    # Static token file: token,user,uid,"groups". system:masters is the cluster-admin group.
    _write(directory / "tokens.csv", f'{token},admin,admin,"system:masters"\n'.encode())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    *,
    is_ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)
