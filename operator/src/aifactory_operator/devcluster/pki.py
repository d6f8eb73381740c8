"""Certificates and keys for the local control plane, made with `cryptography`.

The API server gets a serving certificate from our own CA so that clients verify it (no
insecure-skip-tls-verify), and a key pair for signing service-account tokens.
"""

import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..certificates import issue_ca, issue_server, private_pem

API_SERVER_HOSTS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "127.0.0.1",
    "10.96.0.1",
]


# The name of the real node node.py starts beside the simulated ones.
NODE_NAME = "aifactory-node"
# The identities of a real node's agents: the Node authorizer and NodeRestriction admit a kubelet by
# this user and group; the bootstrap ClusterRoleBinding system:node-proxier binds kube-proxy's user.
NODE_AGENTS = {
    "kubelet": (f"system:node:{NODE_NAME}", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", ""),
}


def write_pki(directory: Path) -> None:
    """Creates ca.crt, apiserver.crt/key, sa.key/pub and the tokens of the admin and of a real node's
    agents (<agent>.token), unless they exist."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "apiserver.crt").exists():
        return
    ca = issue_ca("aifactory-devcluster-ca")
    server = issue_server(ca, "kube-apiserver", API_SERVER_HOSTS)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(directory / "ca.crt", ca.cert)
    _write(directory / "apiserver.crt", server.cert)
    _write(directory / "apiserver.key", server.key)
    _write(directory / "sa.key", private_pem(sa_key))
    _write(
        directory / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    token = secrets.token_hex(32)
    _write(directory / "admin.token", token.encode())
    # Static token file: token,user,uid,"groups". system:masters is the cluster-admin group.
    lines = [f'{token},admin,admin,"system:masters"']
    for agent, (user, group) in NODE_AGENTS.items():
        agent_token = secrets.token_hex(32)
        _write(directory / f"{agent}.token", agent_token.encode())
        lines.append(f'{agent_token},{user},{user},"{group}"')
    _write(directory / "tokens.csv", "".join(f"{line}\n" for line in lines).encode())


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)
