"""The placement mutation as a MutatingAdmissionPolicy, which kube-apiserver runs itself (served as
admissionregistration.k8s.io/v1 from Kubernetes 1.36), so pods that do not say where they run are
placed even while the operator is down. Where the API server lacks it, the operator's webhook does
the same; in both cases the pods policy is what guarantees placement.

One binding serves every factory: it reads each factory as a parameter, and only the factory that
lists the pod's namespace as a tenant namespace places it.
"""

from typing import Any

from ..constants import API_VERSION, LABEL_FACTORY, LABEL_JURISDICTION, LABEL_POOL
from .admission_policies import SOVEREIGNTY_VARIABLES, TENANT_VARIABLES, is_confined, quote, rule
from .ownership import managed_labels
from .webhook_objects import NEEDS_PLACEMENT

Obj = dict[str, Any]
MAP_API = "admissionregistration.k8s.io/v1"
NAME = "aifactory-placement"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
TYPE = "Object.spec.affinity.nodeAffinity"
TERM_TYPE = f"{TYPE}.{REQUIRED}.nodeSelectorTerms"
NODE_AFFINITY = "object.spec.affinity.nodeAffinity"


def add(path: str, value: str) -> str:
    return f'[JSONPatch{{op: "add", path: {quote(path)}, value: {value}}}]'


def jurisdiction_patch() -> str:
    """The jurisdiction as a nodeSelector entry, unless the pod names one (a value outside is
    left for the pods policy to refuse, never silently changed)."""
    key = quote(LABEL_JURISDICTION)
    return (
        "!has(object.spec.nodeSelector) ?"
        f" {add('/spec/nodeSelector', f'{{{key}: variables.jurisdiction}}')}"
        f" : ({key} in object.spec.nodeSelector ? [] :"
        f' [JSONPatch{{op: "add", path: "/spec/nodeSelector/" + jsonpatch.escapeKey({key}),'
        " value: variables.jurisdiction}])"
    )


def pool_patch() -> str:
    """`pool In [the tenant's pools]` ANDed into every required node-affinity term, creating
    the affinity where the pod has none; never where the pod names a pool itself (one outside
    is for the pods policy to refuse, with the reason)."""
    expression = (
        f"{TERM_TYPE}.matchExpressions{{key: {quote(LABEL_POOL)}, operator: 'In', values: variables.pools}}"
    )
    new_term = f"{TERM_TYPE}{{matchExpressions: [{expression}]}}"
    required = f"{TYPE}.{REQUIRED}{{nodeSelectorTerms: [{new_term}]}}"
    node_affinity = f"{TYPE}{{{REQUIRED}: {required}}}"
    terms = f"{NODE_AFFINITY}.{REQUIRED}.?nodeSelectorTerms.orValue([])"
    # The pod's own requirements are rebuilt as Object types: a list of the pod's values and one of
    # Object values do not concatenate.
    copied = "{key: e.key, operator: e.operator, values: e.?values.orValue([])}"
    extended = (
        f"size({terms}) == 0 ? [{new_term}] : {terms}.map(t, {TERM_TYPE}{{matchExpressions:"
        f" t.?matchExpressions.orValue([]).map(e, {TERM_TYPE}.matchExpressions{copied}) + [{expression}],"
        f" matchFields: t.?matchFields.orValue([]).map(e, {TERM_TYPE}.matchFields{copied})}})"
    )
    affinity = f"Object.spec.affinity{{nodeAffinity: {node_affinity}}}"
    return (
        f"(variables.poolConfined || size(variables.pools) == 0 || {quote(LABEL_POOL)} in"
        " object.spec.?nodeSelector.orValue({})) ? [] :"
        f" !has(object.spec.affinity) ? {add('/spec/affinity', affinity)}"
        f" : !has(object.spec.affinity.nodeAffinity) ? {add('/spec/affinity/nodeAffinity', node_affinity)}"
        f" : !has({NODE_AFFINITY}.{REQUIRED}) ? {add(f'/spec/affinity/nodeAffinity/{REQUIRED}', required)}"
        f" : {add(f'/spec/affinity/nodeAffinity/{REQUIRED}/nodeSelectorTerms', f'({extended})')}"
    )


def construct_placement_mutation() -> list[Obj]:
    """The policy and its one binding, for every namespace that carries a factory label."""
    policy = {
        "apiVersion": MAP_API,
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": NAME, "labels": managed_labels()},
        "spec": {
            "paramKind": {"apiVersion": API_VERSION, "kind": "AIFactory"},
            "matchConstraints": {"resourceRules": [rule("", "v1", ["pods"], ["CREATE"])]},
            "matchConditions": [
                # Cheapest first: a pod that names both (the operator's own) costs no more.
                NEEDS_PLACEMENT,
                {
                    "name": "its-own-factory",
                    "expression": "size(params.spec.?tenants.orValue([])"
                    ".filter(t, request.namespace in t.namespaces)) == 1",
                },
            ],
            "variables": [
                *SOVEREIGNTY_VARIABLES,
                *TENANT_VARIABLES,
                {"name": "pod", "expression": "object.spec"},
                {"name": "poolConfined", "expression": is_confined(LABEL_POOL, "variables.pools")},
            ],
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "Never",
            "mutations": [
                {"patchType": "JSONPatch", "jsonPatch": {"expression": jurisdiction_patch()}},
                {"patchType": "JSONPatch", "jsonPatch": {"expression": pool_patch()}},
            ],
        },
    }
    binding = {
        "apiVersion": MAP_API,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": NAME, "labels": managed_labels()},
        "spec": {
            "policyName": NAME,
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"},
            "matchResources": {
                "namespaceSelector": {"matchExpressions": [{"key": LABEL_FACTORY, "operator": "Exists"}]}
            },
        },
    }
    return [policy, binding]
