"""Applies one catalogue entry as its identity and says how the API server answered:
refused with the expected rule, refused otherwise, admitted but confined (a pod the mutating webhook
gave placement, judged by the independent oracle), or admitted."""

import json
import re
from dataclasses import dataclass
from typing import Any

from attack_range import Range
from catalogue import Attack, Legit
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from placement_oracle import escapes, make_universe

from aifactory_operator.kube.client import Kube

Obj = dict[str, Any]
UNIVERSE = make_universe()
ALLOWED_POOLS = {"citizen": {"l40s"}, "research": {"h100", "l40s"}}
MERGE = "application/merge-patch+json"
FAIL_CLOSED = "failed calling webhook"


@dataclass(frozen=True)
class Outcome:
    verdict: str  # "refused", "admitted", "confined"
    message: str = ""


def marker_found(rule: str, message: str) -> bool:
    if rule == "pod-security/restricted":
        return "violates PodSecurity" in message
    if rule == "rbac":
        return " is forbidden: User " in message and "cannot " in message
    if rule == "api/validation":
        return " is invalid" in message or "Invalid value" in message or "Forbidden:" in message
    return f"[{rule}]" in message


def refusal(error: ApiException) -> Outcome:
    try:
        message = str(json.loads(error.body).get("message", error.body))
    except (TypeError, ValueError):
        message = str(error.body or error.reason)
    return Outcome("refused", message)


def judge_pod(stored: Obj, tenant: str) -> Outcome:
    """An admitted pod is confined when no node of the oracle's universe outside its bounds fits it."""
    allowed = ALLOWED_POOLS.get(tenant, set())
    found = escapes(stored.get("spec") or {}, "DE", allowed, UNIVERSE)
    return Outcome("admitted", f"can reach nodes outside: {sorted(found)}") if found else Outcome("confined")


def judge_admitted(obj: Obj, stored: Any, tenant: str) -> Outcome:
    if obj["kind"] == "Pod" and stored is not None:
        body = stored.to_dict() if hasattr(stored, "to_dict") else stored
        return judge_pod(body, tenant)
    return Outcome("admitted")


def resource(kube: Kube, obj: Obj) -> Any:
    return kube.resource(obj["apiVersion"], obj["kind"])


def namespace_of(obj: Obj) -> str | None:
    return obj["metadata"].get("namespace")


def set_up(admin: Kube, obj: Obj) -> None:
    """The object the attack changes, created by the cluster admin (kept when it already exists)."""
    if obj["kind"] == "Namespace" or admin.get(
        obj["apiVersion"], obj["kind"], obj["metadata"]["name"], namespace_of(obj)
    ):
        return
    resource(admin, obj).create(body=obj, namespace=namespace_of(obj))


def patch(kube: Kube, obj: Obj, change: Obj, *, dry_run: bool = True) -> Any:
    extra = {"dry_run": "All"} if dry_run else {}
    return resource(kube, obj).patch(
        body=change, name=obj["metadata"]["name"], namespace=namespace_of(obj), content_type=MERGE, **extra
    )


def subresource_write(who: Kube, obj: Obj, attack: Attack, change: Obj) -> Any:
    """The real write on a subresource, as the attacking identity."""
    core = k8s.CoreV1Api(who.api_client)
    name, namespace = obj["metadata"]["name"], namespace_of(obj)
    if attack.path in ("binding", "legacy-binding"):
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": change["target"]},
        }
        if attack.path == "binding":
            return core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)
        return core.create_namespaced_binding(namespace, body, _preload_content=False)
    if attack.path == "ephemeralcontainers":
        debug = {
            "name": "debug",
            "targetContainerName": "main",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            **change,
        }
        return core.patch_namespaced_pod_ephemeralcontainers(
            name, namespace, {"spec": {"ephemeralContainers": [debug]}}
        )
    if attack.path == "eviction":
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        return core.create_namespaced_pod_eviction(name, namespace, body)
    if attack.path == "scale":
        return k8s.AppsV1Api(who.api_client).patch_namespaced_deployment_scale(name, namespace, change)
    sub = {"status": "status", "resize": "resize"}[attack.path]
    kind = who.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return kind.subresources[sub].patch(body=change, name=name, namespace=namespace, content_type=MERGE)


def attempt(r: Range, admin: Kube, attack: Attack, suffix: str) -> Outcome:
    obj = r.fill(attack.obj, attack.tenant, suffix)
    if (
        attack.path != "create"
        and obj["kind"] != "Namespace"
        and not obj["metadata"]["name"].startswith("aifactory-")
    ):
        obj["metadata"]["name"] = attack.id[:55] + suffix  # each real write gets an object of its own
    change = json.loads(
        json.dumps(attack.change or {})
        .replace("{foreign}", r.places["foreign"])
        .replace("{h100_node}", r.places["h100_node"])
        .replace("{research_pv}", r.places["research_pv"])
        .replace("{audit_key}", r.places["audit_key"])
    )
    who = r.client(attack.identity, attack.home or attack.tenant)
    tenant = attack.tenant
    try:
        if attack.path == "create":
            stored = resource(who, obj).create(body=obj, namespace=namespace_of(obj), dry_run="All")
            return judge_admitted(obj, stored, tenant)
        set_up(admin, obj)
        if attack.path in ("update", "label-removal"):
            stored = patch(who, obj, change)
            return judge_admitted(obj, stored, tenant)
        if attack.path == "delete":
            resource(who, obj).delete(
                name=obj["metadata"]["name"], namespace=namespace_of(obj), dry_run="All"
            )
            return Outcome("admitted")
        if attack.path == "gate-removal":
            patch(who, obj, change, dry_run=False)
            patch(who, obj, {"spec": {"schedulingGates": None}}, dry_run=False)
            stored = admin.get("v1", "Pod", obj["metadata"]["name"], namespace_of(obj))
            return judge_admitted(obj, stored, tenant)
        subresource_write(who, obj, attack, change)
        if obj["kind"] == "Pod" and attack.path in ("binding", "legacy-binding"):
            return Outcome("admitted", "bound to a node the scheduler would not pick")
        return Outcome("admitted")
    except ApiException as error:
        return refusal(error)


def passes(attack: Attack, outcome: Outcome, *, operator_running: bool) -> bool:
    """Stopped with the expected rule; a pod admission placed (the operator's webhook, or
    kube-apiserver's MutatingAdmissionPolicy with the operator down) counts as stopped too when
    the oracle finds it confined; while the operator is down a webhook's fail-closed refusal does."""
    if outcome.verdict == "confined":
        return True
    if outcome.verdict != "refused":
        return False
    if any(marker_found(rule, outcome.message) for rule in (attack.rule, *attack.alternatives)):
        return True
    may_fail_closed = attack.webhook or attack.obj["kind"] == "Pod"
    return not operator_running and may_fail_closed and FAIL_CLOSED in outcome.message


def admit(r: Range, legit: Legit, suffix: str) -> Outcome:
    """A legitimate workload, created (dry run) as its identity; a gated pod for real, then released."""
    obj = r.fill(legit.obj, legit.tenant, suffix)
    who = r.client(legit.identity, legit.tenant)
    try:
        if legit.then is None:
            resource(who, obj).create(body=obj, namespace=namespace_of(obj), dry_run="All")
            return Outcome("admitted")
        resource(who, obj).create(body=obj, namespace=namespace_of(obj))
        patch(who, obj, legit.then, dry_run=False)
        return Outcome("admitted")
    except ApiException as error:
        return refusal(error)


RULE_ID = re.compile(r"\[([a-z-]+/[a-z-]+)\]")
