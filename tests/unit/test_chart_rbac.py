"""The operator's RBAC, audited: the rendered chart may grant exactly the allow-list below and no
more; no wildcards, no Secrets beyond its own namespace, no escalate, impersonate or broad bind."""

from charttools import render

from aifactory_operator.reconcile.webhook_objects import AUDIT_TAP_NAME, PLACEMENT_NAME, VALIDATING_NAME

FULL = ("get", "list", "watch", "create", "patch", "update", "delete")
# (apiGroup, resource, resourceNames or None) -> verbs, for the ClusterRole.
CLUSTER_ALLOWED = {
    **{
        ("aifactory.dev", r, None): ("get", "list", "watch", "patch", "update")
        for r in ("aifactories", "datasets", "trainingjobs", "modelendpoints")
    },
    **{
        ("aifactory.dev", f"{r}/status", None): ("get", "patch", "update")
        for r in ("aifactories", "datasets", "trainingjobs", "modelendpoints")
    },
    ("", "nodes", None): FULL,
    **{
        ("", r, None): FULL
        for r in (
            "namespaces",
            "resourcequotas",
            "limitranges",
            "services",
            "persistentvolumeclaims",
            "persistentvolumes",
        )
    },
    ("networking.k8s.io", "networkpolicies", None): FULL,
    ("rbac.authorization.k8s.io", "rolebindings", None): FULL,
    ("rbac.authorization.k8s.io", "clusterroles", ("aifactory-tenant-admin",)): ("get", "bind"),
    # create: only as a server-side dry run, the probe that proves a namespace's policies in force.
    ("", "pods", None): ("get", "list", "watch", "create"),
    ("", "events", None): ("create", "patch"),
    ("scheduling.k8s.io", "priorityclasses", None): ("get", "list", "watch"),
    ("batch", "jobs", None): FULL,
    ("apps", "deployments", None): FULL,
    ("autoscaling", "horizontalpodautoscalers", None): FULL,
    ("policy", "poddisruptionbudgets", None): FULL,
    ("storage.k8s.io", "storageclasses", None): FULL,
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings", None): FULL,
    # The CA bundle is injected into every webhook configuration the chart renders: the names come
    # from the code that renders them, so a new one cannot be left out (the placement webhook was,
    # and only running the image under the chart's RBAC showed it: tests/e2e/test_shipped_image.py).
    **{
        ("admissionregistration.k8s.io", r, (VALIDATING_NAME, AUDIT_TAP_NAME, PLACEMENT_NAME)): (
            "get",
            "patch",
        )
        for r in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
    },
    ("apiextensions.k8s.io", "customresourcedefinitions", None): ("get", "list", "watch"),
    ("kopf.dev", "clusterkopfpeerings", None): ("get", "list", "watch", "patch"),
}
NAMESPACE_ALLOWED = {
    ("", "secrets", ("aifactory-webhook-tls",)): ("get", "patch", "update"),
    ("", "secrets", None): ("create",),
    ("", "configmaps", None): ("get", "list", "create", "patch"),
    ("", "pods", None): ("patch",),  # the webhook route label (reconcile/webhook_route.py)
}


def granted(role: dict) -> dict:
    """Each (group, resource, names) the role grants, with its verbs."""
    found: dict = {}
    for rule in role["rules"]:
        names = tuple(rule["resourceNames"]) if rule.get("resourceNames") else None
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                found[(group, resource, names)] = tuple(rule["verbs"])
    return found


def roles(kind: str) -> list[dict]:
    return [
        o for o in render("replicas=2") if o["kind"] == kind and o["metadata"]["name"] == "aifactory-operator"
    ]


def test_the_cluster_role_grants_exactly_the_allow_list():
    [role] = roles("ClusterRole")
    assert granted(role) == CLUSTER_ALLOWED


def test_the_namespaced_role_grants_secrets_and_config_maps_only_there():
    [role] = roles("Role")
    assert granted(role) == NAMESPACE_ALLOWED
    assert role["metadata"]["namespace"] == "aifactory-system"


def test_no_rule_uses_a_wildcard_escalates_impersonates_or_reads_secrets_cluster_wide():
    for role in [*roles("ClusterRole"), *roles("Role")]:
        for rule in role["rules"]:
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]
            assert not {"escalate", "impersonate"} & set(rule["verbs"])
            if "bind" in rule["verbs"]:
                assert rule.get("resourceNames") == ["aifactory-tenant-admin"]
    [cluster_role] = roles("ClusterRole")
    assert not any("secrets" in rule["resources"] for rule in cluster_role["rules"])


def test_the_tenant_admin_role_the_operator_binds_grants_no_guard_rail_writes():
    [role] = [
        o
        for o in render()
        if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "aifactory-tenant-admin"
    ]
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    guarded = {"resourcequotas", "limitranges", "networkpolicies", "rolebindings", "roles", "namespaces"}
    for rule in role["rules"]:
        if guarded & set(rule["resources"]):
            assert not writes & set(rule["verbs"]), rule
