"""kubeconfig files for the local cluster (pure apart from writing the file)."""

import base64
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "aifactory-dev"


def construct_kubeconfig(server: str, ca_pem: bytes, token: str, user: str = "admin") -> dict[str, Any]:
    """A kubeconfig with one context that verifies the server against our CA and sends a token."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
