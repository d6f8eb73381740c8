"""A small simulated cluster for driving the training loop's real tick code (the protocol test).

Not a mock API server for end-to-end behaviour (the e2e suite has the real one): this is the
protocol's model checker. The truth is what an API server would store; the operator reads it only
through views that lag by chosen amounts (its informers), and writes to it through a client whose
writes can fail before landing or land and then fail (a lost response). A job controller, a
scheduler and kubelets move the truth along as theirs would: pods from Jobs, bound to a pinned
node only where the node's allocatable holds them, run, finish.
"""

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from aifactory_operator.kube.client import AlreadyExists
from aifactory_operator.reconcile.gang_views import batch_job_view, pinned_nodes, pod_view, unschedulable_view
from aifactory_operator.reconcile.resources import fits, parse_amounts, pod_requests

Obj = dict[str, Any]
START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ("trainingjobs", "jobs", "pods")


class WriteLost(Exception):
    """A write whose response never came back (it may or may not have landed)."""


@dataclass
class World:
    nodes: list[Obj]
    namespace: str = "research"
    trainingjobs: dict[str, Obj] = field(default_factory=dict)
    jobs: dict[str, Obj] = field(default_factory=dict)
    pods: dict[str, Obj] = field(default_factory=dict)
    step: int = 0
    history: list[dict[str, list[Obj]]] = field(default_factory=list)
    lags: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    fault: str = (
        ""  # "", "before" (the write fails and nothing lands) or "after" (it lands, the answer is lost)
    )
    # (job key, attempt) -> every node set a status or a Job of that attempt ever named
    decisions: dict[tuple[str, int], set[tuple[str, ...]]] = field(default_factory=dict)
    durations: dict[str, int] = field(default_factory=dict)  # TrainingJob name -> steps its pods run
    failing: set[str] = field(default_factory=set)  # Jobs whose next worker to finish fails
    # Nodes whose kubelet refuses every pod for a reason the operator's views do not show.
    refusing: set[str] = field(default_factory=set)
    events: list[tuple[str, str, str, bool]] = field(
        default_factory=list
    )  # (object, reason, message, warning)
    uids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def now(self) -> datetime:
        return START + timedelta(seconds=5 * self.step)

    def stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- what the operator sees --------------------------------------------------------------
    def snapshot(self) -> None:
        self.history.append(
            {
                "trainingjobs": [copy.deepcopy(t) for t in self.trainingjobs.values()],
                "jobs": [copy.deepcopy(j) for j in self.jobs.values()],
                "pods": [copy.deepcopy(p) for p in self.pods.values()],
            }
        )
        del self.history[:-8]

    def view(self, kind: str) -> list[Obj]:
        lag = min(self.lags[kind], len(self.history) - 1)
        return self.history[-1 - lag][kind]

    def catch_up(self) -> None:
        self.lags = dict.fromkeys(KINDS, 0)

    # -- the tenant --------------------------------------------------------------------------
    def submit(
        self, name: str, nodes: int, gpus: int, duration: int, max_restarts: int = 2, priority: int = 0
    ) -> None:
        self.trainingjobs[name] = {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "uid": f"uid-{name}-{next(self.uids)}",
                "generation": 1,
                "resourceVersion": "1",
                "creationTimestamp": self.stamp(),
            },
            "spec": {
                "image": "registry/t:1",
                "pool": "h100",
                "nodes": nodes,
                "gpusPerNode": gpus,
                "maxRestarts": max_restarts,
                "priority": priority,
                "topology": {"mode": "none"},
            },
        }
        self.durations[name] = duration

    # -- the API server, as the operator's client reaches it ------------------------------------
    def _write(self, land: Any) -> Any:
        fault, self.fault = self.fault, ""
        if fault == "before":
            raise ApiException(status=503, reason="injected: the write did not land")
        result = land()
        if fault == "after":
            raise WriteLost("injected: the write landed and its answer was lost")
        return result

    def create(self, obj: Obj) -> Obj:
        def land() -> Obj:
            name = obj["metadata"]["name"]
            if name in self.jobs:
                raise AlreadyExists(name)
            stored = copy.deepcopy(obj)
            stored["status"] = {}
            self.jobs[name] = stored
            self._record_decision(stored)
            return stored

        return self._write(land)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        assert kind == "Job"
        found = self.jobs.get(name)
        return copy.deepcopy(found) if found else None

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, patch: Obj) -> Obj:
        def land() -> Obj:
            body = self.trainingjobs[name]
            status = body.setdefault("status", {})
            for key, value in patch.items():
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = copy.deepcopy(value)
            version = int(body["metadata"]["resourceVersion"]) + 1
            body["metadata"]["resourceVersion"] = str(version)
            if status.get("placement"):
                attempt = int(status.get("attempt", 0))
                nodes = tuple(sorted(status["placement"]["nodes"]))
                self.decisions.setdefault((f"{self.namespace}/{name}", attempt), set()).add(nodes)
            return body

        return self._write(land)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        def land() -> bool:
            gone = self.jobs.pop(name, None)
            for pod in [p for p in self.pods.values() if p["metadata"]["labels"]["job-name"] == name]:
                del self.pods[pod["metadata"]["name"]]
            return gone is not None

        return self._write(land)

    def apply(self, obj: Obj) -> Obj:
        return obj  # the headless Service: nothing in the protocol reads it

    def record_event(self, involved: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append((involved["metadata"]["name"], reason, message, warning))

    def _record_decision(self, job: Obj) -> None:
        labels = job["metadata"]["labels"]
        key = f"{self.namespace}/{labels['aifactory.dev/trainingjob']}"
        nodes = pinned_nodes(job["spec"]["template"]["spec"])
        self.decisions.setdefault((key, int(labels["aifactory.dev/attempt"])), set()).add(nodes)

    # -- the controllers and kubelets ------------------------------------------------------------
    def advance(self) -> None:
        """One round: pods for Jobs, binding where the node holds them, running pods finish, Jobs
        report; then time moves on."""
        self._make_pods()
        self._schedule()
        self._run()
        self._report_jobs()
        self.step += 1

    def _make_pods(self) -> None:
        for name, job in self.jobs.items():
            if job["status"].get("done"):
                continue
            for index in range(job["spec"]["completions"]):
                pod_name = f"{name}-{index}"
                if pod_name not in self.pods and index not in job["status"].get("finished", []):
                    template = job["spec"]["template"]
                    labels = {**template["metadata"]["labels"], "job-name": name}
                    self.pods[pod_name] = {
                        "metadata": {"name": pod_name, "namespace": self.namespace, "labels": labels},
                        "spec": copy.deepcopy(template["spec"]),
                        "status": {"phase": "Pending"},
                    }

    def bound_requests(self, node: str) -> dict[str, int]:
        taken: dict[str, int] = {}
        for pod in self.pods.values():
            if pod["spec"].get("nodeName") == node and pod["status"]["phase"] in ("Pending", "Running"):
                for resource, amount in pod_requests(pod["spec"]).items():
                    taken[resource] = taken.get(resource, 0) + amount
        return taken

    def _schedule(self) -> None:
        for pod in sorted(self.pods.values(), key=lambda p: p["metadata"]["name"]):
            if pod["spec"].get("nodeName"):
                continue
            allowed = pinned_nodes(pod["spec"]) or tuple(n["metadata"]["name"] for n in self.nodes)
            # The gang's pod anti-affinity: one worker of a Job per node.
            job = pod["metadata"]["labels"]["job-name"]
            siblings = {
                p["spec"].get("nodeName")
                for p in self.pods.values()
                if job
                and p["metadata"]["labels"]["job-name"] == job
                and p["status"]["phase"] in ("Pending", "Running")
            }
            allowed = tuple(n for n in allowed if n not in siblings)
            need = pod_requests(pod["spec"])
            for node in self.nodes:
                name = node["metadata"]["name"]
                free = parse_amounts(node["status"]["allocatable"])
                taken = self.bound_requests(name)
                free = {k: v - taken.get(k, 0) for k, v in free.items()}
                if name in allowed and name not in self.refusing and fits(need, free):
                    pod["spec"]["nodeName"] = name
                    pod["status"] = {"phase": "Running", "started": self.step}
                    break
            else:
                if not pod["status"].get("conditions"):
                    pod["status"]["conditions"] = [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": "0/N nodes are available: Insufficient resources",
                            "lastTransitionTime": self.stamp(),
                        }
                    ]

    def _run(self) -> None:
        for pod in self.pods.values():
            labels = pod["metadata"]["labels"]
            if pod["status"]["phase"] != "Running" or "started" not in pod["status"]:
                continue
            if self.step - pod["status"]["started"] >= self.durations.get(
                labels["aifactory.dev/trainingjob"], 1
            ):
                failed = labels["job-name"] in self.failing
                self.failing.discard(labels["job-name"])
                pod["status"]["phase"] = "Failed" if failed else "Succeeded"

    def _report_jobs(self) -> None:
        for name, job in self.jobs.items():
            pods = [p for p in self.pods.values() if p["metadata"]["labels"]["job-name"] == name]
            status = job["status"]
            if status.get("done"):
                continue
            if any(p["status"]["phase"] == "Failed" for p in pods):
                status["conditions"] = [{"type": "Failed", "status": "True", "message": "exit code 1"}]
                status["done"] = True
                for pod in pods:  # FailJob: the Job controller stops the rest of the gang
                    if pod["status"]["phase"] in ("Pending", "Running"):
                        pod["status"]["phase"] = "Failed"
                continue
            finished = [
                int(p["metadata"]["name"].rsplit("-", 1)[1])
                for p in pods
                if p["status"]["phase"] == "Succeeded"
            ]
            status["finished"] = sorted(set(status.get("finished", [])) | set(finished))
            status["ready"] = sum(1 for p in pods if p["status"]["phase"] == "Running")
            if len(status["finished"]) >= job["spec"]["completions"]:
                status["conditions"] = [{"type": "Complete", "status": "True"}]
                status["done"] = True

    # -- the promises --------------------------------------------------------------------------
    def gang_reservations(self) -> dict[str, dict[str, int]]:
        """Per node, what the live gang Jobs pinned there hold: one worker each."""
        held: dict[str, dict[str, int]] = {}
        for job in self.jobs.values():
            if job["status"].get("done"):
                continue
            worker = pod_requests(job["spec"]["template"]["spec"])
            for node in pinned_nodes(job["spec"]["template"]["spec"]):
                for resource, amount in worker.items():
                    held.setdefault(node, {})[resource] = held.setdefault(node, {}).get(resource, 0) + amount
        return held

    def double_booked(self) -> list[str]:
        """Nodes where live gangs hold more than the node has: two decisions on the same GPUs."""
        over = []
        for node in self.nodes:
            name = node["metadata"]["name"]
            offered = parse_amounts(node["status"]["allocatable"])
            held = self.gang_reservations().get(name, {})
            if not fits(held, offered):
                over.append(name)
        return over

    def decided_twice(self) -> list[tuple[str, int]]:
        return [attempt for attempt, sets in self.decisions.items() if len(sets) > 1]

    def mismatches(self) -> list[str]:
        """Statuses that name other nodes than their attempt's Job pins (both as stored)."""
        wrong = []
        for name, body in self.trainingjobs.items():
            status = body.get("status") or {}
            job = self.jobs.get(f"{name}-{status.get('attempt', 0)}")
            named = tuple(sorted((status.get("placement") or {}).get("nodes") or []))
            if named and job and named != pinned_nodes(job["spec"]["template"]["spec"]):
                wrong.append(name)
        return wrong


def observed_from(world: World) -> Any:
    """The tick's Observed, built from the lagging views with the index functions' pure halves."""
    from aifactory_operator.handlers.training import Observed

    jobs = world.view("trainingjobs")
    batch: dict[str, list[Any]] = {}
    for job in world.view("jobs"):
        key = f"{world.namespace}/{job['metadata']['labels']['aifactory.dev/trainingjob']}"
        batch.setdefault(key, []).append(batch_job_view(_as_batch_job(job)))
    pods = [view for p in world.view("pods") if (view := pod_view(p)) is not None]
    unschedulable: dict[str, list[Any]] = {}
    for pod in world.view("pods"):
        if (seen := unschedulable_view(pod)) is not None:
            unschedulable.setdefault(seen[0], []).append(seen[1])
    return Observed(
        jobs=jobs,
        datasets=[],
        endpoints=[],
        batch=batch,
        nodes=world.nodes,
        pods=pods,
        deployments={},
        unschedulable=unschedulable,
    )


def _as_batch_job(job: Obj) -> Obj:
    """The simulated Job's status in batch/v1's words."""
    status = job["status"]
    return {**job, "status": {"conditions": status.get("conditions", []), "ready": status.get("ready", 0)}}
