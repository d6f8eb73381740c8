"""What every end-to-end benchmark shares: the control plane with our CRDs, the operator's own
write counter, readiness checks, and printing the result."""

import json
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gang_audit import read_gang_audit

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.constants import API_VERSION
from aifactory_operator.crdgen import generate_crds
from aifactory_operator.devcluster import down, up
from aifactory_operator.devcluster.layout import Layout, default_layout, find_repo_root
from aifactory_operator.kube.client import Kube, load_config
from aifactory_operator.launcher import OperatorProcess, interrupt_on_sigterm

# Parallel clients for creating many objects, each with its own connection.
CLIENTS = 8


def start_cluster() -> tuple[Layout, Kube]:
    """A fresh local control plane with the CRDs applied and discoverable. Never one left up: the
    benchmark before may still be deleting what it made (10,000 nodes and their jobs for minutes),
    and the next would measure that cleanup as well."""
    repo = find_repo_root(Path.cwd())
    layout = default_layout(repo)
    down(layout)
    up(repo, layout)
    kube = Kube(load_config(str(layout.kubeconfig)))
    for crd in generate_crds().values():
        kube.apply(crd)
    time.sleep(2)
    kube.dynamic.resources.invalidate_cache()
    return layout, kube


def run_interruptible(main: Callable[[], int]) -> int:
    """Runs a benchmark that starts a control plane. SIGTERM (`timeout`, CI) is handled like Ctrl-C:
    the benchmark's own finally blocks stop its operator, and the control plane is stopped here, so
    an interrupted benchmark leaves no process behind."""
    interrupt_on_sigterm()
    try:
        return main()
    except KeyboardInterrupt:
        down(default_layout(find_repo_root(Path.cwd())))
        print("interrupted: stopped the operator and the local control plane", file=sys.stderr)
        return 130


def create_all(kubeconfig: Path, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """Creates every body, CLIENTS clients in parallel: one client alone leaves kube-apiserver idle
    between its requests and measures the client, not the cluster."""

    def create(chunk: list[dict[str, Any]]) -> None:
        kube = Kube(load_config(str(kubeconfig)))
        for body in chunk:
            kube.apply(body)

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(create, [bodies[i::CLIENTS] for i in range(CLIENTS)]))
    seconds = time.monotonic() - started
    return {"created": len(bodies), "creations_per_second": round(len(bodies) / seconds, 1)}


def operator_writes(port: int) -> float:
    """All API writes the operator made, from its own Prometheus counter."""
    return operator_counter(port, "aifactory_api_writes_total")


def operator_gc_seconds(port: int) -> float:
    """CPU seconds the operator's cycle collector has spent, all generations."""
    return operator_counter(port, "aifactory_gc_cpu_seconds_total")


def operator_counter(port: int, name: str) -> float:
    """The sum of a counter's series, scraped from the operator's metrics endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def start_operator(layout: Layout, log_name: str, metrics_port: int) -> OperatorProcess:
    """The operator on this control plane (its webhook port follows AIFACTORY_PORT_BASE)."""
    operator = OperatorProcess(
        layout.kubeconfig, layout.logs / log_name, verbose=False, metrics_port=metrics_port
    )
    operator.start()
    return operator


def is_training_loop_running(port: int, factory: str) -> bool:
    """The factory's training loop has ticked: it publishes the queue length after every tick."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    except OSError:
        return False
    return f'aifactory_training_queue_length{{factory="{factory}"}}' in text


def create_factory(kube: Kube, body: dict[str, Any]) -> AIFactory:
    """Applies a factory and returns it once Ready (its nodes exist and are ready)."""
    name = body["metadata"]["name"]
    kube.apply(body)
    wait(lambda: is_ready(kube.get(API_VERSION, "AIFactory", name) or {}), f"factory {name}")
    return AIFactory.model_validate(kube.get(API_VERSION, "AIFactory", name))


def create_namespace(kube: Kube, name: str) -> None:
    """A plain namespace, once its default service account exists (pods are refused before)."""
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait(lambda: kube.get("v1", "ServiceAccount", "default", name) is not None, f"namespace {name}")


def delete_and_wait(kube: Kube, api_version: str, kind: str, name: str, timeout: float = 900) -> None:
    """Deletes a cluster-scoped object (a factory, a namespace) and waits until it is gone."""
    kube.delete(api_version, kind, name)
    wait(lambda: kube.get(api_version, kind, name) is None, f"{kind} {name} to be deleted", timeout)


def is_ready(obj: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", [])
    )


def wait(check: Any, what: str, timeout: float = 900) -> None:
    if not wait_until(check, timeout):
        raise SystemExit(f"timed out waiting for {what}")


def wait_until(check: Any, timeout: float, interval: float = 0.5) -> bool:
    """Polls `check` until it is true (True) or `timeout` seconds have passed (False), so that a
    benchmark that gives up can still report what it saw."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# Seconds a benchmark waits, per job, for its jobs to run before it gives up and reports; never
# less than GIVE_UP_MIN_SECONDS. About 4 times what 1,000 jobs on 256 nodes take on 2 CPUs.
GIVE_UP_SECONDS_PER_JOB = 0.3
GIVE_UP_MIN_SECONDS = 120.0


def give_up_seconds(jobs: int, per_job: float = GIVE_UP_SECONDS_PER_JOB) -> float:
    """A wait bounded in proportion to the size: a gang stuck for good (issue 20) ends the run in
    minutes, with its figures, instead of at a fixed limit of most of an hour."""
    return max(GIVE_UP_MIN_SECONDS, per_job * jobs)


# The gang audit's figures (bench/gang_audit.py); each must be 0.
GANG_FIGURES = ("stuck_gangs", "double_booked_nodes", "placement_mismatches")


def audit_figures(kube: Kube, namespaces: list[str], node_selector: str = "") -> dict[str, Any]:
    """The gang audit of the namespaces' TrainingJobs on the selected nodes, as figures for the
    result (with the names behind any that is not 0), also told on stderr at once."""
    audit = read_gang_audit(kube, namespaces, node_selector=node_selector)
    print(f"gang audit: {audit.summary()}", file=sys.stderr, flush=True)
    return {**audit.counts(), **({} if audit.is_clean() else {"gang_audit_names": audit.names()})}


def failures(result: dict[str, Any]) -> list[str]:
    """What makes a run fail after its result is written: a gang figure that is not 0, or a wait
    it gave up."""
    problems = [f"{figure}={result[figure]}" for figure in GANG_FIGURES if result.get(figure)]
    if result.get("gave_up_waiting_for"):
        problems.append(f"gave up waiting for {result['gave_up_waiting_for']}")
    return problems


def report(result: dict[str, Any], json_path: Path | None) -> int:
    """Prints and writes the result; non-zero when it failed, so that make bench fails loudly."""
    print(json.dumps(result, indent=2))
    if json_path:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    if problems := failures(result):
        print(f"FAILED: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def factory_body(
    name: str,
    region: str,
    *,
    pools: list[dict[str, Any]] | None = None,
    tenants: list[dict[str, Any]] | None = None,
    storage: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An air-gapped factory in one German region that admits images from the factory registry."""
    sovereignty = {
        "jurisdiction": "DE",
        "regions": [region],
        "allowedRegistries": ["registry.factory.internal"],
    }
    spec: dict[str, Any] = {"sovereignty": sovereignty, "nodePools": pools or []}
    if tenants:
        spec["tenants"] = tenants
    if storage:
        spec["storage"] = storage
    return {"apiVersion": API_VERSION, "kind": "AIFactory", "metadata": {"name": name}, "spec": spec}


def dataset_body(name: str, namespace: str, storage: str, purpose: str = "training-data") -> dict[str, Any]:
    """A German, internal Dataset on one of the factory's storage entries."""
    spec = {
        "purpose": purpose,
        "storage": {"name": storage, "path": f"/{name}"},
        "jurisdiction": "DE",
        "classification": "internal",
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# The user agents of the operator's own client and of kopf, as the audit log records them.
OPERATOR_AGENTS = ("aifactory-operator", "kopf")


def audit_offset(layout: Layout) -> int:
    """Where the API server's audit log ends now: count requests from here on."""
    path = layout.logs / "audit.log"
    return path.stat().st_size if path.exists() else 0


def requests_by_verb(
    layout: Layout, offset: int, agents: tuple[str, ...] = ("OpenAPI-Generator", "kopf")
) -> dict[str, int]:
    """API requests since `offset` from clients whose user agent starts with one of `agents`, by
    verb (create, patch, update, delete, get, list, watch), from the audit log."""
    counts: dict[str, int] = {}
    path = layout.logs / "audit.log"
    if not path.exists():
        return counts
    with path.open("rb") as log:
        log.seek(offset)
        for line in log:
            event = json.loads(line)
            if event.get("userAgent", "").startswith(agents):
                verb = event.get("verb", "")
                counts[verb] = counts.get(verb, 0) + 1
    return counts
