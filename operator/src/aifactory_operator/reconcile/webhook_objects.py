"""The operator's admission webhook configurations, built as plain objects.

Validating webhooks carry the rules that need other objects (which Dataset a claim belongs to, the
tenant's clearance): they fail closed in tenant namespaces. A mutating "audit tap" sees what the
ValidatingAdmissionPolicies are about to refuse (mutating admission runs before them) so that those
refusals are recorded too; it never patches and fails open, since the policies stand on their own.
"""

import base64
import json
from dataclasses import dataclass
from typing import Any

from ..constants import (
    GROUP,
    LABEL_FACTORY,
    LABEL_JURISDICTION,
    LABEL_MANAGED_BY,
    LABEL_POOL,
    MANAGED_BY,
    VERSION,
)
from .ownership import managed_labels

Obj = dict[str, Any]
API = "admissionregistration.k8s.io/v1"
VALIDATING_NAME = "aifactory-sovereignty"
AUDIT_TAP_NAME = "aifactory-refusal-audit"
# Named to sort before the tap: mutating configurations run in name order, so the tap sees the
# pod as placed.
PLACEMENT_NAME = "aifactory-placement"
TIMEOUT_SECONDS = 5
# Only requests that change what runs: a metadata-only update (a finalizer, an annotation) of an
# object admitted earlier must never be refused, or it could not even be deleted.
SPEC_CHANGED = {
    "name": "spec-changed",
    "expression": "request.operation != 'UPDATE' || object.spec != oldObject.spec",
}
# The controllers that make Pods (and Jobs, ReplicaSets) from a template admitted earlier. Their
# objects are copies of that template, which the tap has seen; the policies still judge every copy,
# and a refused copy shows up as the controller's FailedCreate Event on its owner.
TEMPLATE_CONTROLLERS = [
    f"system:serviceaccount:kube-system:{name}"
    for name in (
        "job-controller",
        "cronjob-controller",
        "replicaset-controller",
        "deployment-controller",
        "statefulset-controller",
        "daemon-set-controller",
    )
]
NOT_FROM_A_TEMPLATE = {
    "name": "not-from-a-template",
    "expression": f"!(request.userInfo.username in {json.dumps(TEMPLATE_CONTROLLERS)})",
}


def not_the_operators_own(operator_user: str) -> Obj:
    """The operator's own Jobs, Deployments and Services (its identity and its label): the policies
    still judge them, and the operator records a refusal of one itself, from the API server's
    answer; a tap call per child was ~50 ms on each of the training loop's creates."""
    label = f"object.metadata.?labels[{json.dumps(LABEL_MANAGED_BY)}].orValue('')"
    return {
        "name": "not-the-operators-own",
        "expression": f"!(request.userInfo.username == {json.dumps(operator_user)}"
        f" && {label} == {json.dumps(MANAGED_BY)})",
    }


@dataclass(frozen=True)
class Hook:
    """One webhook: the kopf handler id that serves it (the URL path) and what it matches."""

    handler_id: str
    rules: list[Obj]
    mounts_claims: str | None = None  # CEL path of the pod spec: call only when it mounts a claim
    skips_template_copies: bool = False  # not called for what TEMPLATE_CONTROLLERS create
    skips_operator_writes: bool = False  # not called for the operator's own children
    only_if: Obj | None = None  # a further match condition


def rule(group: str, version: str, resources: list[str], operations: list[str]) -> Obj:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "operations": operations,
        "resources": resources,
        "scope": "Namespaced",
    }


WRITE = ["CREATE", "UPDATE"]
POD_TEMPLATE_RULES = [
    rule("apps", "v1", ["deployments", "statefulsets", "daemonsets", "replicasets"], WRITE),
    rule("batch", "v1", ["jobs"], WRITE),
    rule("", "v1", ["replicationcontrollers"], WRITE),
]
VALIDATING_HOOKS = [
    Hook("mounts-pods", [rule("", "v1", ["pods"], ["CREATE"])], "object.spec"),
    Hook("mounts-pod-templates", POD_TEMPLATE_RULES, "object.spec.template.spec"),
    Hook(
        "mounts-cronjobs",
        [rule("batch", "v1", ["cronjobs"], WRITE)],
        "object.spec.jobTemplate.spec.template.spec",
    ),
    Hook("datasets", [rule(GROUP, VERSION, ["datasets"], WRITE)]),
    Hook("trainingjobs", [rule(GROUP, VERSION, ["trainingjobs"], WRITE)]),
    Hook("modelendpoints", [rule(GROUP, VERSION, ["modelendpoints"], WRITE)]),
]
# Only pods whose nodeSelector does not already name a jurisdiction and a pool (the operator's
# own pods name both, so the training loop's pods never call it).
NEEDS_PLACEMENT = {
    "name": "needs-placement",
    "expression": f"!({json.dumps(LABEL_JURISDICTION)} in object.spec.?nodeSelector.orValue({{}}))"
    f" || !({json.dumps(LABEL_POOL)} in object.spec.?nodeSelector.orValue({{}}))",
}
PLACEMENT_HOOKS = [Hook("place-pods", [rule("", "v1", ["pods"], ["CREATE"])], only_if=NEEDS_PLACEMENT)]
AUDIT_TAP_HOOKS = [
    Hook("tap-pods", [rule("", "v1", ["pods"], ["CREATE"])], skips_template_copies=True),
    Hook("tap-ephemeral-containers", [rule("", "v1", ["pods/ephemeralcontainers"], ["UPDATE"])]),
    Hook("tap-pod-templates", POD_TEMPLATE_RULES, skips_template_copies=True, skips_operator_writes=True),
    Hook("tap-cronjobs", [rule("batch", "v1", ["cronjobs"], WRITE)]),
    Hook("tap-services", [rule("", "v1", ["services"], WRITE)], skips_operator_writes=True),
    Hook("tap-ingresses", [rule("networking.k8s.io", "v1", ["ingresses"], WRITE)]),
]


@dataclass(frozen=True)
class Endpoint:
    """How kube-apiserver reaches the webhook server: a URL (an operator outside the cluster, as
    in development) or a Service (the operator's Deployment), and the CA that signed its cert."""

    ca_bundle: bytes
    url: str | None = None
    service_namespace: str | None = None
    service_name: str | None = None
    service_port: int = 443

    def client_config(self, path: str) -> Obj:
        bundle = base64.b64encode(self.ca_bundle).decode()
        if self.url is not None:
            return {"url": f"{self.url.rstrip('/')}/{path}", "caBundle": bundle}
        service = {
            "namespace": self.service_namespace,
            "name": self.service_name,
            "port": self.service_port,
            "path": f"/{path}",
        }
        return {"service": service, "caBundle": bundle}


def tenant_namespaces(operator_namespace: str) -> Obj:
    """Every factory's tenant namespaces, never the operator's own (so it can always restart)."""
    return {
        "matchExpressions": [
            {"key": LABEL_FACTORY, "operator": "Exists"},
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [operator_namespace]},
        ]
    }


def construct_webhook(
    hook: Hook, endpoint: Endpoint, operator_namespace: str, *, tap: bool, operator_user: str = ""
) -> Obj:
    conditions = [SPEC_CHANGED]
    if hook.mounts_claims:
        conditions.append(
            {
                "name": "mounts-a-claim",
                "expression": f"{hook.mounts_claims}.?volumes.orValue([])"
                ".exists(v, has(v.persistentVolumeClaim))",
            }
        )
    if hook.skips_template_copies:
        conditions.append(NOT_FROM_A_TEMPLATE)
    if hook.only_if:
        conditions.append(hook.only_if)
    if hook.skips_operator_writes and operator_user:
        conditions.append(not_the_operators_own(operator_user))
    webhook: Obj = {
        "name": f"{hook.handler_id}.{GROUP}",
        "clientConfig": endpoint.client_config(hook.handler_id),
        "rules": hook.rules,
        "namespaceSelector": tenant_namespaces(operator_namespace),
        "matchConditions": conditions,
        "failurePolicy": "Ignore" if tap else "Fail",
        "sideEffects": "NoneOnDryRun",
        "timeoutSeconds": 2 if tap else TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
        "matchPolicy": "Equivalent",
    }
    if tap:
        webhook["reinvocationPolicy"] = "Never"
    return webhook


def construct_validating_configuration(endpoint: Endpoint, operator_namespace: str) -> Obj:
    return {
        "apiVersion": API,
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATING_NAME, "labels": managed_labels()},
        "webhooks": [construct_webhook(h, endpoint, operator_namespace, tap=False) for h in VALIDATING_HOOKS],
    }


def construct_audit_tap_configuration(endpoint: Endpoint, operator_namespace: str, operator_user: str) -> Obj:
    """`operator_user` is the identity the operator writes as: the tap skips its labelled children."""
    return {
        "apiVersion": API,
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": AUDIT_TAP_NAME, "labels": managed_labels()},
        "webhooks": [
            construct_webhook(h, endpoint, operator_namespace, tap=True, operator_user=operator_user)
            for h in AUDIT_TAP_HOOKS
        ],
    }


def construct_placement_configuration(endpoint: Endpoint, operator_namespace: str) -> Obj:
    """Adds the jurisdiction and the tenant's pools to pods that do not name them. It fails open:
    the pods policy refuses any pod left unplaced, so the mutation is a convenience and the
    validating rule the guarantee."""
    return {
        "apiVersion": API,
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": PLACEMENT_NAME, "labels": managed_labels()},
        "webhooks": [construct_webhook(h, endpoint, operator_namespace, tap=True) for h in PLACEMENT_HOOKS],
    }
