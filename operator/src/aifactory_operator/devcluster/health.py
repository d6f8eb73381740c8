"""Waiting for control-plane endpoints to answer (HTTP(S) on loopback, standard library only)."""

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def fetch(
    url: str, *, ca_file: Path | None, token: str | None = None, timeout: float = 2.0
) -> tuple[int, bytes]:
    """GET `url`; (status, body), with status 0 when nothing answered."""
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else _unverified()
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.25) -> bool:
    """Polls `check` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def has_default_service_account(api_url: str, ca_file: Path, token: str) -> bool:
    """True once kube-controller-manager has created default/default: its controllers run."""
    status, body = fetch(
        f"{api_url}/api/v1/namespaces/default/serviceaccounts/default", ca_file=ca_file, token=token
    )
    return status == 200 and json.loads(body).get("metadata", {}).get("name") == "default"


def _unverified() -> ssl.SSLContext:
    # The controller-manager and scheduler serve healthz with self-signed certificates on loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
