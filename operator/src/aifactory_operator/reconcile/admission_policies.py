"""The object-only sovereignty rules as ValidatingAdmissionPolicies: CEL that kube-apiserver runs
itself, so the rules hold while the operator is down.

Each policy mirrors a rule of `policy/` (same rule ids, same field paths, same verdicts; a test
holds them to agree). The policies are generic and read the factory through `params`: each
factory binds them to its tenant namespaces with itself as the parameter object, so a change of
`spec.sovereignty` takes effect at once, with or without the operator.
"""

from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, Sovereignty
from ..constants import (
    API_VERSION,
    LABEL_ENFORCED,
    LABEL_FACTORY,
    LABEL_JURISDICTION,
    LABEL_POOL,
    LABEL_REGION,
    LOCKED,
)
from ..policy import airgap, allow_lists, host_escape, locality, placement
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
# A pool's level; an unclassified pool takes any work (as `policy.data_use.check_pool_use` reads it).
POOL_LEVEL = "variables.levels.indexOf(p.?classification.orValue(variables.levels[0]))"
DEFAULT_LEVELS = Sovereignty.model_fields["classification_levels"].default
# The tenant whose namespace the request is in, and what placement and scheduling it may ask
# for: the CEL twin of `policy.placement.scope_of`.
TENANT_VARIABLES = [
    {
        "name": "tenant",
        "expression": "params.spec.?tenants.orValue([]).filter(t, request.namespace in t.namespaces)",
    },
    {
        "name": "levels",
        "expression": f"variables.sovereignty.?classificationLevels.orValue({DEFAULT_LEVELS})",
    },
    {
        "name": "cleared",
        "expression": "size(variables.tenant) == 1 ?"
        " variables.levels.indexOf(variables.tenant[0].clearance) : -1",
    },
    {
        "name": "products",
        "expression": "size(variables.tenant) == 1 ? variables.tenant[0].?gpuQuota.orValue([])"
        ".filter(q, q.gpus > 0).map(q, q.product) : []",
    },
    {
        "name": "pools",
        "expression": f"params.spec.?nodePools.orValue([]).filter(p, p.gpuProduct in variables.products"
        f" && {POOL_LEVEL} >= 0 && {POOL_LEVEL} <= variables.cleared).map(p, p.name)",
    },
    {
        "name": "priorityClasses",
        "expression": "size(variables.tenant) == 1 ? variables.tenant[0].?priorityClasses.orValue([]) : []",
    },
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


def is_confined(key: str, allowed: str) -> str:
    """CEL for `policy.placement.is_confined`: every node the pod can match carries `key` with a
    value in the CEL list `allowed`."""
    selector = "variables.pod.?nodeSelector.orValue({})"
    terms = (
        "variables.pod.?affinity.?nodeAffinity.?requiredDuringSchedulingIgnoredDuringExecution"
        ".?nodeSelectorTerms.orValue([])"
    )
    confining = (
        f"t.?matchExpressions.orValue([]).exists(e, e.key == {quote(key)} && e.operator == 'In'"
        f" && size(e.?values.orValue([])) > 0 && e.values.all(v, v in {allowed}))"
    )
    return (
        f"({quote(key)} in {selector} && {selector}[{quote(key)}] in {allowed})"
        f" || (size({terms}) > 0 && {terms}.all(t, {confining}))"
    )


def placement_validations() -> list[Obj]:
    """The positive placement rule, for Pods (the pod rule is complete on its own: every kind
    that carries a pod template is judged again at its pods)."""
    return [
        validation(
            placement.JURISDICTION,
            "spec.nodeSelector",
            f"object.kind != 'Pod' || {is_confined(LABEL_JURISDICTION, '[variables.jurisdiction]')}",
            f"the pod must run inside the factory's jurisdiction; set nodeSelector {LABEL_JURISDICTION}"
            " to it (the operator adds it when it is running)",
            f"'the pod must run inside jurisdiction ' + variables.jurisdiction + '; set nodeSelector"
            f" {LABEL_JURISDICTION}: ' + variables.jurisdiction + ' (the operator adds it when it is"
            " running)'",
        ),
        validation(
            placement.POOL,
            "spec.nodeSelector",
            f"object.kind != 'Pod' || {is_confined(LABEL_POOL, 'variables.pools')}",
            "the pod must run on a pool its tenant is cleared for and holds quota for; set nodeSelector"
            f" {LABEL_POOL} to one of them (the operator adds it when it is running)",
            "'the pod must run on a pool its tenant is cleared for and holds quota for (' +"
            " (size(variables.pools) == 0 ? 'none: the tenant has no cleared pool with GPU quota' :"
            f" variables.pools.join(', ')) + '); set nodeSelector {LABEL_POOL} to one of them (the operator"
            " adds it when it is running)'",
        ),
    ]


def template_pool_validation(prefix: str) -> Obj:
    """The CEL twin of `policy.placement.check_template_pools`."""
    selector = "variables.pod.?nodeSelector.orValue({})"
    terms = (
        "variables.pod.?affinity.?nodeAffinity.?requiredDuringSchedulingIgnoredDuringExecution"
        ".?nodeSelectorTerms.orValue([])"
    )
    key = quote(LABEL_POOL)
    return validation(
        placement.POOL,
        f"{prefix}.nodeSelector",
        f"(!({key} in {selector}) || {selector}[{key}] in variables.pools) && {terms}.all(t,"
        f" t.?matchExpressions.orValue([]).all(e, e.key != {key} || e.operator != 'In'"
        " || e.?values.orValue([]).all(v, v in variables.pools)))",
        "names a pool its tenant is not cleared for or holds no quota for; use one of the tenant's pools",
        "'names a pool its tenant is not cleared for or holds no quota for; use one of ' +"
        " (size(variables.pools) == 0 ? 'none' : variables.pools.join(', '))",
    )


def is_core_resource(name: str) -> str:
    domain = f"{name}.split('/')[0]"
    return (
        f"(!{name}.contains('/') || {domain} == {quote(allow_lists.CORE_RESOURCE_DOMAIN)}"
        f" || {domain}.endsWith({quote('.' + allow_lists.CORE_RESOURCE_DOMAIN)}))"
    )


def by_operator(operator_users: list[str]) -> str:
    """CEL: written by the operator, a cluster admin, or a kube-system controller copying a
    template (every template kind is judged when a tenant writes it)."""
    return (
        f"request.userInfo.username in {operator_users}"
        " || request.userInfo.?groups.orValue([]).exists(g, g == 'system:masters')"
        " || request.userInfo.username.startsWith('system:serviceaccount:kube-system:')"
        " || request.userInfo.username == 'system:kube-controller-manager'"
    )


def allow_list_validations(prefix: str, operator_users: list[str]) -> list[Obj]:
    """Volume sources, PriorityClasses and extended resources of the pod in `variables.pod`."""
    containers = " + ".join(f"variables.pod.?{field}.orValue([])" for field in CONTAINER_LISTS)
    core_only = (
        f"c.?resources.?requests.orValue({{}}).all(k, {is_core_resource('k')})"
        f" && c.?resources.?limits.orValue({{}}).all(k, {is_core_resource('k')})"
    )
    sources = str(list(allow_lists.ALLOWED_VOLUME_SOURCES))
    volume_ok = f"v.all(k, k == 'name' || k in {sources})"
    allowed = ", ".join(allow_lists.ALLOWED_VOLUME_SOURCES)
    return [
        validation(
            allow_lists.VOLUME_TYPE,
            f"{prefix}.volumes",
            f"variables.pod.?volumes.orValue([]).all(v, {volume_ok})",
            f"a volume source is not allowed in a tenant pod; use one of {allowed} (data comes through"
            " a Dataset's claim)",
            f"'volume \\'' + variables.pod.volumes.filter(v, !({volume_ok}))[0].name + '\\' uses a source"
            f" that is not allowed in a tenant pod; use one of {allowed} (data comes through a"
            " Dataset\\'s claim)'",
        ),
        validation(
            allow_lists.PRIORITY_CLASS,
            f"{prefix}.priorityClassName",
            "variables.pod.?priorityClassName.orValue('') == '' || variables.pod.priorityClassName in"
            " variables.priorityClasses",
            "the PriorityClass is not one the tenant may use; remove it or ask the platform team to list"
            " it in the tenant's priorityClasses",
            "'PriorityClass \\'' + variables.pod.priorityClassName + '\\' is not one the tenant may use"
            " (' + (size(variables.priorityClasses) == 0 ? 'none' : variables.priorityClasses.join(', '))"
            " + '); remove it or ask the platform team to list it in the tenant\\'s priorityClasses'",
        ),
        validation(
            allow_lists.EXTENDED_RESOURCES,
            f"{prefix}.containers[].resources",
            f"{by_operator(operator_users)} || (({containers}).all(c, {core_only})"
            " && size(variables.pod.?resourceClaims.orValue([])) == 0)",
            "GPUs and other devices can be used only through a TrainingJob or ModelEndpoint, which the"
            " operator admits against the tenant's quota per GPU product",
        ),
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
        checks += locality_validations(prefix, key, allowed)
    for field in CONTAINER_LISTS:
        checks += container_validations(field, prefix)
    return checks


def locality_validations(prefix: str, key: str, allowed: str) -> list[Obj]:
    """A pod may name node label `key` in its nodeSelector or required node affinity only with the
    values the CEL expression `allowed` holds, so no placement term reaches outside the jurisdiction."""
    selector = "variables.pod.?nodeSelector.orValue({})"
    terms = (
        "variables.pod.?affinity.?nodeAffinity.?requiredDuringSchedulingIgnoredDuringExecution"
        ".?nodeSelectorTerms.orValue([])"
    )
    inside = (
        f"e.key != {quote(key)} || (e.operator == 'In' ? e.?values.orValue([]).all(v, v in {allowed})"
        " : e.operator != 'DoesNotExist')"
    )
    return [
        validation(
            locality.NODE_AFFINITY,
            f"{prefix}.nodeSelector[{key}]",
            f"!({quote(key)} in {selector}) || {selector}[{quote(key)}] in {allowed}",
            f"targets nodes outside the jurisdiction; use only the factory's values for {key}",
            f"'targets nodes outside the jurisdiction; use only ' + {allowed}.join(', ') + ' for {key}'",
        ),
        validation(
            locality.NODE_AFFINITY,
            f"{prefix}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
            f"{terms}.all(t, t.?matchExpressions.orValue([]).all(e, {inside}))",
            f"targets nodes outside the jurisdiction; use only the factory's values for {key}",
            f"'a required term targets nodes outside the jurisdiction; use only ' +"
            f" {allowed}.join(', ') + ' for {key}'",
        ),
    ]


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
        spec["matchConditions"] = conditions or [SPEC_CHANGED]
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


TEMPLATE_CHANGED = {
    "name": "template-changed",
    "expression": "request.operation != 'UPDATE' || object.template != oldObject.template",
}


def pod_policy(name: str, rules: list[Obj], pod: str, prefix: str, operator_users: list[str]) -> Obj:
    variables = [*TENANT_VARIABLES, {"name": "pod", "expression": pod}]
    for field in CONTAINER_LISTS:
        variables += container_variables(field)
    validations = pod_validations(prefix) + allow_list_validations(prefix, operator_users)
    validations += placement_validations() if prefix == "spec" else [template_pool_validation(prefix)]
    # A PodTemplate keeps its pod spec at the top, not under spec.
    changed = TEMPLATE_CHANGED if prefix.startswith("template") else SPEC_CHANGED
    return construct_policy(name, rules, variables, validations, conditions=[changed])


def construct_factory_policies(operator_users: list[str] | None = None) -> list[Obj]:
    """The generic policies every factory binds; applied once, shared by all factories.
    `operator_users`: the identities whose pods and templates may request GPUs."""
    users = list(operator_users or [])
    return [
        pod_policy(
            "aifactory-pods",
            [rule("", "v1", ["pods", "pods/ephemeralcontainers"])],
            "object.spec",
            "spec",
            users,
        ),
        pod_policy(
            "aifactory-pod-templates",
            [
                rule("apps", "v1", ["deployments", "statefulsets", "daemonsets", "replicasets"]),
                rule("batch", "v1", ["jobs"]),
                rule("", "v1", ["replicationcontrollers"]),
            ],
            "object.spec.template.spec",
            "spec.template.spec",
            users,
        ),
        pod_policy(
            "aifactory-cronjobs",
            [rule("batch", "v1", ["cronjobs"])],
            "object.spec.jobTemplate.spec.template.spec",
            "spec.jobTemplate.spec.template.spec",
            users,
        ),
        pod_policy(
            "aifactory-podtemplates",
            [rule("", "v1", ["podtemplates"])],
            "object.template.spec",
            "template.spec",
            users,
        ),
        construct_service_policy(),
        construct_ingress_policy(),
    ]


def construct_service_policy() -> Obj:
    """Services keep traffic inside: no externalIPs anywhere, and only ClusterIP when air-gapped."""
    return construct_policy(
        "aifactory-services",
        [rule("", "v1", ["services"])],
        [],
        [
            validation(
                airgap.SERVICE_EXTERNAL_IPS,
                "spec.externalIPs",
                "size(object.spec.?externalIPs.orValue([])) == 0",
                "externalIPs capture traffic meant for other addresses; remove them and reach the"
                " Service through its ClusterIP",
            ),
            validation(
                airgap.SERVICE_TYPE,
                "spec.type",
                "!variables.airGapped || object.spec.?type.orValue('ClusterIP') == 'ClusterIP'",
                "this type publishes or leaves the air-gapped factory; use ClusterIP",
                "'type ' + object.spec.type + ' publishes or leaves the air-gapped factory; use ClusterIP'",
            ),
        ],
    )


def construct_ingress_policy() -> Obj:
    """An air-gapped factory has no way in from outside, so it admits no Ingress at all."""
    return construct_policy(
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
    )


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
