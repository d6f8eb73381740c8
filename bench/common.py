"""What every end-to-end benchmark shares: the control plane with our CRDs, the operator's own
write counter, readiness checks, and printing the result."""

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from aifactory_operator.crdgen import generate_crds
from aifactory_operator.devcluster import up
from aifactory_operator.devcluster.layout import Layout, default_layout, find_repo_root
from aifactory_operator.kube.client import Kube, load_config


def start_cluster() -> tuple[Layout, Kube]:
    """The local control plane (reused when up) with the CRDs applied and discoverable."""
    repo = find_repo_root(Path.cwd())
    layout = default_layout(repo)
    up(repo, layout)
    kube = Kube(load_config(str(layout.kubeconfig)))
    for crd in generate_crds().values():
        kube.apply(crd)
    time.sleep(2)
    kube.dynamic.resources.invalidate_cache()
    return layout, kube


def operator_writes(port: int) -> float:
    """All API writes the operator made, from its own Prometheus counter."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("aifactory_api_writes_total{")
    )


def is_ready(obj: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", [])
    )


def wait(check: Any, what: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def report(result: dict[str, Any], json_path: Path | None) -> int:
    print(json.dumps(result, indent=2))
    if json_path:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    return 0
