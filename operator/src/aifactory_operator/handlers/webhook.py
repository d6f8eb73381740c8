"""The operator's admission webhooks (served by kopf): the rules that need other objects, and the
audit tap that records what the ValidatingAdmissionPolicies refuse."""

import time
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from ..api.v1alpha1.aifactory import AIFactory, Tenant
from ..constants import GROUP, VERSION
from ..metrics import ADMISSION_SECONDS, STANDBY_REFUSALS
from ..policy.allow_lists import check_training_priority_class
from ..policy.clearance import check_clearance
from ..policy.data_use import DataUse, check_data_use, check_mounted_data, check_pool_use
from ..policy.dataset_paths import check_canonical_path, check_tenant_subtree, declared_path, declared_paths
from ..policy.lifecycle import check_namespace_owner
from ..policy.locality import check_dataset_jurisdiction
from ..policy.object_rules import check_object
from ..policy.placement import place, scope_of
from ..policy.violations import Violation
from ..reconcile.parsing import InvalidSpec, parse_resource
from ..reconcile.storage import dataset_claim
from . import standby
from .refusals import Refusal, RefusalRecorder

Obj = dict[str, Any]
STANDBY_REFUSAL = (
    "this operator replica is on standby (peering) and its view of the cluster is not current; retry"
    " (the webhook Service routes to the active replica once it has labelled its pod: docs/install.md)"
)
POD_TEMPLATE_KINDS = [("apps", "v1", p) for p in ("deployments", "statefulsets", "daemonsets", "replicasets")]
POD_TEMPLATE_KINDS += [("batch", "v1", "jobs"), ("", "v1", "replicationcontrollers")]
_parsed: dict[tuple[str, str], AIFactory] = {}
recorder: RefusalRecorder | None = None
operator_user = ""  # who the operator writes as; the audit tap skips its own children


def tenant_of(namespace: str, index: kopf.Index[str, Obj]) -> tuple[AIFactory, Tenant] | None:
    """The factory and tenant a namespace belongs to (parsed once per factory version)."""
    bodies = list(index.get(namespace, []))
    if len(bodies) != 1:
        return None
    meta = bodies[0].get("metadata", {})
    key = (str(meta.get("uid")), str(meta.get("resourceVersion")))
    if key not in _parsed:
        try:
            _parsed.clear()
            _parsed[key] = parse_resource(AIFactory, bodies[0])
        except InvalidSpec:
            return None
    factory = _parsed[key]
    tenant = next((t for t in factory.spec.tenants if namespace in t.namespaces), None)
    return (factory, tenant) if tenant else None


def orphaned(namespace: str, kwargs: dict[str, Any]) -> list[Violation]:
    """The webhook is called only in namespaces labelled with a factory; when no factory lists the
    namespace (it was deleted, or let go of it), the namespace is locked, not left open."""
    labels = list(kwargs["factory_label_by_namespace"].get(namespace, []))
    return check_namespace_owner(namespace, labels[0] if labels else None, listed=False)


def dataset_uses(namespace: str, index: kopf.Index[str, Obj]) -> dict[str, DataUse]:
    """The namespace's Datasets by their claim name (and by their own name), as declared."""
    uses = {}
    for body in list(index.get(namespace, [])):
        name, spec = body["metadata"]["name"], body.get("spec") or {}
        use = DataUse("", str(spec.get("jurisdiction", "")), str(spec.get("classification", "")))
        uses[dataset_claim(name)] = use
    return uses


def refuse(violations: list[Violation], layer: str, **request: Any) -> None:
    """Records the refusal (unless a dry run) and, for the webhook's own rules, denies."""
    if not violations:
        return
    body, userinfo = request["body"], request.get("userinfo") or {}
    if recorder is not None and not request.get("dryrun"):
        recorder.record(
            Refusal(
                violations=violations,
                layer=layer,
                operation=str(request.get("operation", "")),
                api_version=str(body.get("apiVersion", "")),
                kind=str(body.get("kind", "")),
                namespace=str(request.get("namespace") or ""),
                name=str(body.get("metadata", {}).get("name") or ""),
                uid=str(body.get("metadata", {}).get("uid") or ""),
                user=str(userinfo.get("username", "")),
            )
        )
    if layer == "webhook":
        raise kopf.AdmissionError("; ".join(str(v) for v in violations), code=403)


def is_policy_refusal(error: ApiException) -> bool:
    """kube-apiserver's answer when a ValidatingAdmissionPolicy denies a request."""
    return error.status in (403, 422) and "ValidatingAdmissionPolicy" in str(error.body or "")


def record_audit(entries: list[dict[str, Any]]) -> None:
    """Audit entries of the operator's own decisions, through the same hash-chained log."""
    if recorder is not None:
        recorder.note(entries)


def record_own_refusal(obj: Obj, error: ApiException, factory: AIFactory) -> None:
    """One of our children refused by an admission policy: the audit tap does not look at the
    operator's own writes, so the refusal is recorded here, with the rules the object breaks (the
    same pure checks the tap runs), or the API server's words if a policy refused it for a rule we
    do not model."""
    if not is_policy_refusal(error):
        return
    found = check_object(obj, factory.spec.sovereignty, operation="CREATE", by_operator=True)
    refuse(
        found or [Violation("admission-policy", "", str(error.body or error.reason))],
        "admission-policy",
        body=obj,
        namespace=(obj.get("metadata") or {}).get("namespace"),
        operation="CREATE",
        userinfo={"username": operator_user},
    )


def check_mounts(body: kopf.Body, namespace: str, kwargs: dict[str, Any]) -> list[Violation]:
    context = tenant_of(namespace, kwargs["factories_by_tenant_namespace"])
    if context is None:
        return orphaned(namespace, kwargs)
    factory, tenant = context
    uses = dataset_uses(namespace, kwargs["datasets_by_namespace"])
    return check_mounted_data(dict(body), factory, tenant, uses)


def check_own_kind(body: kopf.Body, namespace: str, kwargs: dict[str, Any]) -> list[Violation]:
    """Datasets: jurisdiction and clearance. TrainingJobs and ModelEndpoints: every rule, their
    image included (no admission policy judges them: this webhook fails closed), their pool and the
    datasets they name (those not created yet are left to the reconciler, as GitOps applies in
    any order)."""
    context = tenant_of(namespace, kwargs["factories_by_tenant_namespace"])
    if context is None:
        return orphaned(namespace, kwargs)
    factory, tenant = context
    spec, kind = body.get("spec") or {}, body.get("kind")
    levels = factory.spec.sovereignty.classification_levels
    if kind == "Dataset":
        return [
            *check_dataset_jurisdiction(
                str(spec.get("jurisdiction")), factory.spec.sovereignty.jurisdiction, "spec.jurisdiction"
            ),
            *check_clearance(
                str(spec.get("classification")), tenant.clearance, levels, "spec.classification"
            ),
            *check_dataset_path(dict(body), factory, tenant, kwargs["datasets_by_namespace"]),
        ]
    pool = next((p for p in factory.spec.node_pools if p.name == spec.get("pool")), None)
    found = check_object(dict(body), factory.spec.sovereignty, operation=str(kwargs.get("operation")))
    found += check_pool_use(factory, tenant, pool, "spec.pool") if pool else []
    if kind == "TrainingJob":
        name = str(spec.get("priorityClassName") or "")
        found += check_training_priority_class(name, tenant.name, tenant.priority_classes)
    uses = dataset_uses(namespace, kwargs["datasets_by_namespace"])
    for path, name in named_datasets(kind, spec):
        if use := uses.get(dataset_claim(name)):
            found += check_data_use(
                factory, tenant, pool, DataUse(path, use.jurisdiction, use.classification)
            )
    return found


def check_dataset_path(
    body: Obj, factory: AIFactory, tenant: Tenant, index: kopf.Index[str, Obj]
) -> list[Violation]:
    """A canonical path that overlaps no other tenant's dataset on the same static storage."""
    path = str(((body.get("spec") or {}).get("storage") or {}).get("path") or "")
    if found := check_canonical_path(path):
        return found
    namespaces = [ns for t in factory.spec.tenants if t.name != tenant.name for ns in t.namespaces]
    others = declared_paths(factory, {ns: list(index.get(ns, [])) for ns in namespaces})
    return check_tenant_subtree(declared_path(tenant, body), others)


def named_datasets(kind: Any, spec: Obj) -> list[tuple[str, str]]:
    if kind == "ModelEndpoint":
        return [("spec.model", str(spec.get("model", "")))]
    named = [
        (f"spec.datasets[{i}].name", str(d.get("name", ""))) for i, d in enumerate(spec.get("datasets") or [])
    ]
    if checkpoint := spec.get("checkpoint"):
        named.append(("spec.checkpoint.dataset", str(checkpoint.get("dataset", ""))))
    return named


def check_tapped(body: kopf.Body, namespace: str, kwargs: dict[str, Any]) -> list[Violation]:
    context = tenant_of(namespace, kwargs["factories_by_tenant_namespace"])
    if context is None:
        return []
    return check_object(
        dict(body),
        context[0].spec.sovereignty,
        operation=str(kwargs.get("operation")),
        scope=scope_of(*context),
        by_operator=is_by_operator(kwargs.get("userinfo") or {}),
    )


def is_by_operator(userinfo: dict[str, Any]) -> bool:
    """The identities the pods policy lets request GPUs: the operator, cluster admins and the
    kube-system controllers that copy templates it admitted (the CEL twin is `by_operator`)."""
    user = str(userinfo.get("username", ""))
    return (
        user == operator_user
        or user.startswith("system:serviceaccount:kube-system:")
        or user == "system:kube-controller-manager"
        or "system:masters" in (userinfo.get("groups") or [])
    )


def place_pod(body: kopf.Body, namespace: str, kwargs: dict[str, Any]) -> list[Violation]:
    """Adds what the positive placement rule asks for and the pod does not say yet, to kopf's
    patch; it refuses nothing (the pods policy does)."""
    context = tenant_of(namespace, kwargs["factories_by_tenant_namespace"])
    if context is None:
        return []
    spec = dict(body.get("spec") or {})
    placed = place(spec, scope_of(*context))
    for field in ("nodeSelector", "affinity"):
        if placed.get(field) != spec.get(field):
            kwargs["patch"].setdefault("spec", {})[field] = placed[field]
    return []


def serve(handler_id: str, check: Any, layer: str) -> Any:
    """A kopf admission handler that times itself, checks, and refuses."""

    async def handle(body: kopf.Body, namespace: str, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            if not standby.peering.is_active():
                # Paused by peering, this replica watches nothing: its view is stale. Fail closed.
                STANDBY_REFUSALS.inc()
                raise kopf.AdmissionError(STANDBY_REFUSAL, code=503)
            refuse(check(body, namespace, kwargs), layer, body=body, namespace=namespace, **kwargs)
        finally:
            ADMISSION_SECONDS.labels(webhook=handler_id).observe(time.perf_counter() - started)

    handle.__name__ = handler_id.replace("-", "_")
    return handle


def register() -> None:
    """One kopf handler per webhook; its id is the URL path the configuration points at."""
    validating = [
        ("", "v1", "pods", "mounts-pods", None),
        *((g, v, p, "mounts-pod-templates", None) for g, v, p in POD_TEMPLATE_KINDS),
        ("batch", "v1", "cronjobs", "mounts-cronjobs", None),
        *((GROUP, VERSION, p, p, None) for p in ("datasets", "trainingjobs", "modelendpoints")),
    ]
    tapping = [
        ("", "v1", "pods", "tap-pods", None),
        ("", "v1", "pods", "tap-ephemeral-containers", "ephemeralcontainers"),
        *((g, v, p, "tap-pod-templates", None) for g, v, p in POD_TEMPLATE_KINDS),
        ("batch", "v1", "cronjobs", "tap-cronjobs", None),
        ("", "v1", "services", "tap-services", None),
        ("networking.k8s.io", "v1", "ingresses", "tap-ingresses", None),
    ]
    for group, version, plural, handler_id, subresource in validating:
        check = check_mounts if handler_id.startswith("mounts-") else check_own_kind
        kopf.on.validate(*resource(group, version, plural), id=handler_id, subresource=subresource)(
            serve(handler_id, check, "webhook")
        )
    kopf.on.mutate("v1", "pods", id="place-pods")(serve("place-pods", place_pod, "placement"))
    for group, version, plural, handler_id, subresource in tapping:
        kopf.on.mutate(*resource(group, version, plural), id=handler_id, subresource=subresource)(
            serve(handler_id, check_tapped, "admission-policy")
        )


def resource(group: str, version: str, plural: str) -> tuple[str, ...]:
    """kopf's positional resource spec: (version, plural) for the core group."""
    return (version, plural) if not group else (group, version, plural)
