"""The object-only sovereignty rules as ValidatingAdmissionPolicies: CEL that kube-apiserver runs
itself, so the rules hold while the operator is down.

Each policy mirrors a rule of `policy/` (same rule ids, same field paths, same verdicts; a test
holds them to agree). The policies are generic and read the factory through `params`: each
factory binds them to its tenant namespaces with itself as the parameter object, so a change of
`spec.sovereignty` takes effect at once, with or without the operator.
"""

from typing import Any

from ..api.v1alpha1.aifactory import AIFactory
from ..constants import (
    API_VERSION,
    LABEL_ENFORCED,
    LABEL_FACTORY,
    LABEL_JURISDICTION,
    LABEL_REGION,
    LOCKED,
)
from ..policy import airgap, host_escape, locality
from ..policy.podspec import CONTAINER_LISTS
from .ownership import managed_labels
from .webhook_objects import SPEC_CHANGED

Obj = dict[str, Any]
VAP_API = "admissionregistration.k8s.io/v1"
WRITE = ["CREATE", "UPDATE"]


def quote(text: str) -> str:
    """A CEL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def host_of(image: str) -> str:
    """CEL for `policy.airgap.registry_host`."""
    first = f"{image}.split('/')[0]"
    return (
        f"(({image}.split('/').size() > 1 && ({first}.contains('.') || {first}.contains(':')"
        f" || {first} == 'localhost')) ? {first}.lowerAscii() : {quote(airgap.DEFAULT_REGISTRY)})"
    )


def validation(rule: str, path: str, expression: str, message: str, detail: str = "") -> Obj:
    """One CEL check whose refusal reads like a `Violation`: `path: message [rule]`; `detail` is a
    CEL string expression that names the offending element."""
    text = f"{path}: {message} [{rule}]"
    entry: Obj = {"expression": expression, "message": text, "reason": "Forbidden"}
    if detail:
        entry["messageExpression"] = f"{quote(path)} + ': ' + {detail} + {quote(f' [{rule}]')}"
    return entry


SOVEREIGNTY_VARIABLES = [
    {"name": "sovereignty", "expression": "params.spec.sovereignty"},
    {"name": "airGapped", "expression": "variables.sovereignty.?airGapped.orValue(true)"},
    {"name": "registries", "expression": "variables.sovereignty.?allowedRegistries.orValue([])"},
    {
        "name": "registryRuleOn",
        "expression": "variables.airGapped || size(variables.registries) > 0",
    },
    {"name": "digests", "expression": "variables.sovereignty.?requireImageDigests.orValue(false)"},
    {"name": "jurisdiction", "expression": "variables.sovereignty.jurisdiction"},
    {"name": "regions", "expression": "variables.sovereignty.regions"},
]
ALLOWED_REGISTRIES = "(size(variables.registries) == 0 ? 'none' : variables.registries.join(', '))"


def image_validations(image: str, path: str) -> list[Obj]:
    """Registry and digest rules for one image expression (our own kinds)."""
    return [
        validation(
            airgap.REGISTRY,
            path,
            f"!variables.registryRuleOn || {host_of(image)} in variables.registries",
            "the image's registry is not in the factory's allowedRegistries; mirror it into an allowed"
            " registry",
            f"'image \\'' + {image} + '\\' comes from registry \\'' + {host_of(image)} + '\\', which is"
            f" not in the factory\\'s allowedRegistries (' + {ALLOWED_REGISTRIES} + '); mirror it into"
            " an allowed registry'",
        ),
        validation(
            airgap.DIGEST,
            path,
            f"!variables.digests || {image}.matches({quote(airgap.DIGEST_PATTERN.pattern)})",
            "the image is not pinned by digest; refer to it as <name>@sha256:<digest>",
            f"'image \\'' + {image} + '\\' is not pinned by digest; refer to it as <name>@sha256:<digest>'",
        ),
    ]


def container_variables(field: str) -> list[Obj]:
    """Per container list: the containers breaking each per-container rule (for the messages)."""
    containers = f"variables.pod.?{field}.orValue([])"
    image = "c.?image.orValue('')"
    return [
        {
            "name": f"foreign_{field}",
            "expression": f"{containers}.filter(c, !({host_of(image)} in variables.registries))",
        },
        {
            "name": f"unpinned_{field}",
            "expression": f"{containers}.filter(c, !{image}.matches({quote(airgap.DIGEST_PATTERN.pattern)}))",
        },
        {
            "name": f"privileged_{field}",
            "expression": f"{containers}.filter(c, c.?securityContext.?privileged.orValue(false))",
        },
        {
            "name": f"hostports_{field}",
            "expression": f"{containers}.filter(c, c.?ports.orValue([])"
            ".exists(p, p.?hostPort.orValue(0) != 0))",
        },
    ]


def container_validations(field: str, prefix: str) -> list[Obj]:
    """The per-container rules of one list (containers, initContainers, ephemeralContainers)."""
    path = f"{prefix}.{field}"
    first = f"variables.{{kind}}_{field}[0]"
    named = f"{quote(path + '[name=')} + {first}.name + ']"

    def at(kind: str, suffix: str) -> str:
        return named.format(kind=kind) + suffix + "'"

    foreign = first.format(kind="foreign")
    unpinned = first.format(kind="unpinned")
    image = f"{foreign}.?image.orValue('')"
    return [
        {
            "expression": f"!variables.registryRuleOn || size(variables.foreign_{field}) == 0",
            "message": f"{path}[].image: the image's registry is not in the factory's allowedRegistries;"
            f" mirror it into an allowed registry [{airgap.REGISTRY}]",
            "messageExpression": f"{at('foreign', '.image')} + ': image \\'' + {image} + '\\' comes from"
            f" registry \\'' + {host_of(image)} + '\\', which is not in the factory\\'s allowedRegistries"
            f" (' + {ALLOWED_REGISTRIES} + '); mirror it into an allowed registry [{airgap.REGISTRY}]'",
            "reason": "Forbidden",
        },
        {
            "expression": f"!variables.digests || size(variables.unpinned_{field}) == 0",
            "message": f"{path}[].image: the image is not pinned by digest; refer to it as"
            f" <name>@sha256:<digest> [{airgap.DIGEST}]",
            "messageExpression": f"{at('unpinned', '.image')} + ': image \\'' + {unpinned}.?image.orValue('')"
            f" + '\\' is not pinned by digest; refer to it as <name>@sha256:<digest> [{airgap.DIGEST}]'",
            "reason": "Forbidden",
        },
        {
            "expression": f"size(variables.privileged_{field}) == 0",
            "message": f"{path}[].securityContext.privileged: privileged containers control the node;"
            f" remove privileged: true [{host_escape.PRIVILEGED}]",
            "messageExpression": f"{at('privileged', '.securityContext.privileged')} + ': privileged"
            f" containers control the node; remove privileged: true [{host_escape.PRIVILEGED}]'",
            "reason": "Forbidden",
        },
        {
            "expression": f"size(variables.hostports_{field}) == 0",
            "message": f"{path}[].ports: hostPort opens a port on the node; remove it and expose the pod"
            f" through a Service [{host_escape.HOST_PORT}]",
            "messageExpression": f"{at('hostports', '.ports')} + ': hostPort opens a port on the node;"
            f" remove it and expose the pod through a Service [{host_escape.HOST_PORT}]'",
            "reason": "Forbidden",
        },
    ]


def pod_validations(prefix: str) -> list[Obj]:
    """Host escape and node targeting for the pod spec held in `variables.pod`. A Pod's nodeName is
    judged at creation only: the scheduler's binding sets it afterwards."""
    node_name_guard = "(request.operation != 'CREATE' && object.kind == 'Pod')"
    checks = [
        validation(
            host_escape.HOST_NAMESPACE,
            f"{prefix}.{field}",
            f"!variables.pod.?{field}.orValue(false)",
            f"{field} shares the node's namespace; remove it",
        )
        for field in host_escape.HOST_NAMESPACE_FIELDS
    ]
    checks.append(
        validation(
            host_escape.HOST_PATH,
            f"{prefix}.volumes",
            "variables.pod.?volumes.orValue([]).all(v, !has(v.hostPath))",
            "hostPath mounts the node's files; use a PersistentVolumeClaim (a Dataset) instead",
            "'volume \\'' + variables.pod.volumes.filter(v, has(v.hostPath))[0].name + '\\' uses"
            " hostPath, which mounts the node\\'s files; use a PersistentVolumeClaim (a Dataset) instead'",
        )
    )
    checks.append(
        validation(
            locality.NODE_NAME,
            f"{prefix}.nodeName",
            f"{node_name_guard} || variables.pod.?nodeName.orValue('') == ''",
            "a pod in a tenant namespace is placed by the scheduler, which keeps it inside the"
            f" jurisdiction; remove nodeName and select nodes with nodeSelector ({LABEL_REGION}"
            " or aifactory.dev/pool)",
        )
    )
    for key, allowed in (
        (LABEL_JURISDICTION, "[variables.jurisdiction]"),
        (LABEL_REGION, "variables.regions"),
    ):
        selector = "variables.pod.?nodeSelector.orValue({})"
        checks.append(
            validation(
                locality.NODE_AFFINITY,
                f"{prefix}.nodeSelector[{key}]",
                f"!({quote(key)} in {selector}) || {selector}[{quote(key)}] in {allowed}",
                f"targets nodes outside the jurisdiction; use only the factory's values for {key}",
                f"'targets nodes outside the jurisdiction; use only ' + {allowed}.join(', ') + ' for {key}'",
            )
        )
        terms = (
            "variables.pod.?affinity.?nodeAffinity.?requiredDuringSchedulingIgnoredDuringExecution"
            ".?nodeSelectorTerms.orValue([])"
        )
        inside = (
            f"e.key != {quote(key)} || (e.operator == 'In' ? e.?values.orValue([]).all(v, v in {allowed})"
            " : e.operator != 'DoesNotExist')"
        )
        checks.append(
            validation(
                locality.NODE_AFFINITY,
                f"{prefix}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
                f"{terms}.all(t, t.?matchExpressions.orValue([]).all(e, {inside}))",
                f"targets nodes outside the jurisdiction; use only the factory's values for {key}",
                f"'a required term targets nodes outside the jurisdiction; use only ' +"
                f" {allowed}.join(', ') + ' for {key}'",
            )
        )
    for field in CONTAINER_LISTS:
        checks += container_validations(field, prefix)
    return checks


def construct_policy(
    name: str,
    rules: list[Obj],
    variables: list[Obj],
    validations: list[Obj],
    *,
    conditions: list[Obj] | None = None,
    by_factory: bool = True,
) -> Obj:
    """A policy that fails closed; one `by_factory` reads its AIFactory as `params` (and denies when
    the factory is missing), and judges only requests that change what runs."""
    spec: Obj = {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules}}
    if by_factory:
        spec["paramKind"] = {"apiVersion": API_VERSION, "kind": "AIFactory"}
        spec["matchConditions"] = [SPEC_CHANGED]
        spec["variables"] = [*SOVEREIGNTY_VARIABLES, *variables]
    else:
        spec["matchConditions"] = conditions or []
    spec["validations"] = validations
    return {
        "apiVersion": VAP_API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": managed_labels()},
        "spec": spec,
    }


def rule(group: str, version: str, resources: list[str], operations: list[str] = WRITE) -> Obj:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "operations": operations,
        "resources": resources,
    }


def pod_policy(name: str, rules: list[Obj], pod: str, prefix: str) -> Obj:
    variables = [{"name": "pod", "expression": pod}]
    for field in CONTAINER_LISTS:
        variables += container_variables(field)
    return construct_policy(name, rules, variables, pod_validations(prefix))


def construct_factory_policies() -> list[Obj]:
    """The generic policies every factory binds; applied once, shared by all factories."""
    return [
        pod_policy(
            "aifactory-pods", [rule("", "v1", ["pods", "pods/ephemeralcontainers"])], "object.spec", "spec"
        ),
        pod_policy(
            "aifactory-pod-templates",
            [
                rule("apps", "v1", ["deployments", "statefulsets", "daemonsets", "replicasets"]),
                rule("batch", "v1", ["jobs"]),
            ],
            "object.spec.template.spec",
            "spec.template.spec",
        ),
        pod_policy(
            "aifactory-cronjobs",
            [rule("batch", "v1", ["cronjobs"])],
            "object.spec.jobTemplate.spec.template.spec",
            "spec.jobTemplate.spec.template.spec",
        ),
        construct_policy(
            "aifactory-services",
            [rule("", "v1", ["services"])],
            [],
            [
                validation(
                    airgap.SERVICE_TYPE,
                    "spec.type",
                    "!variables.airGapped || !(object.spec.?type.orValue('ClusterIP') in"
                    f" {list(airgap.EXPOSING_SERVICE_TYPES)})",
                    "this type publishes or leaves the air-gapped factory; use ClusterIP",
                    "'type ' + object.spec.type + ' publishes or leaves the air-gapped factory;"
                    " use ClusterIP'",
                )
            ],
        ),
        construct_policy(
            "aifactory-ingresses",
            [rule("networking.k8s.io", "v1", ["ingresses"])],
            [],
            [
                validation(
                    airgap.INGRESS,
                    "kind",
                    "!variables.airGapped",
                    "an air-gapped factory admits no Ingress; reach the service from inside the factory"
                    " through its ClusterIP Service",
                )
            ],
        ),
    ]


FACTORY_POLICY_NAMES = [p["metadata"]["name"] for p in construct_factory_policies()]
# Policies earlier versions applied: TrainingJobs and ModelEndpoints are now judged whole by the
# validating webhook, which fails closed, so a policy of their own only added a second look.
RETIRED_POLICY_NAMES = ["aifactory-trainingjobs", "aifactory-modelendpoints"]


def construct_factory_bindings(factory: AIFactory) -> list[Obj]:
    """One binding per policy: this factory's tenant namespaces, checked against this factory.

    The bindings outlive the factory, where garbage collection would have left the namespaces it
    kept unguarded: the operator locks those (`enforced=false`, the lifecycle guard's alone), and
    in one still unlocked (a finalizer removed by hand) `parameterNotFoundAction: Deny` refuses
    every matched write. They are deleted once no namespace carries the factory's label, and a new
    factory of the same name adopts them. The empty ownerReferences makes server-side apply remove
    the one earlier versions set (it is ours alone)."""
    return [
        {
            "apiVersion": VAP_API,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {
                "name": f"{policy}.{factory.name}",
                "labels": managed_labels(**{LABEL_FACTORY: factory.name}),
                "ownerReferences": [],
            },
            "spec": {
                "policyName": policy,
                "paramRef": {"name": factory.name, "parameterNotFoundAction": "Deny"},
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {
                        "matchLabels": {LABEL_FACTORY: factory.name},
                        # A locked namespace is the lifecycle guard's alone (see reconcile/enforcement.py).
                        "matchExpressions": [
                            {"key": LABEL_ENFORCED, "operator": "NotIn", "values": [LOCKED]}
                        ],
                    }
                },
            },
        }
        for policy in FACTORY_POLICY_NAMES
    ]
