"""The admission objects the operator renders: policies bound per factory, webhooks that fail closed
only where they must, and the webhook's certificate."""

from datetime import UTC, datetime, timedelta

from aifactory_operator.certificates import is_usable, issue_ca, issue_server
from aifactory_operator.reconcile.admission_policies import (
    FACTORY_POLICY_NAMES,
    construct_factory_bindings,
    construct_factory_policies,
    host_of,
    quote,
)
from aifactory_operator.reconcile.guard_policies import construct_guard_rails
from aifactory_operator.reconcile.webhook_objects import (
    Endpoint,
    construct_audit_tap_configuration,
    construct_validating_configuration,
)
from builders import make_factory

NOW = datetime.now(UTC)


def test_each_factory_binds_every_policy_to_its_own_tenant_namespaces_with_itself_as_parameter():
    bindings = construct_factory_bindings(make_factory(name="de-1"))
    assert [b["spec"]["policyName"] for b in bindings] == FACTORY_POLICY_NAMES
    for binding in bindings:
        spec = binding["spec"]
        assert spec["paramRef"] == {"name": "de-1", "parameterNotFoundAction": "Deny"}
        assert spec["matchResources"]["namespaceSelector"] == {
            "matchLabels": {"aifactory.dev/factory": "de-1"},
            "matchExpressions": [{"key": "aifactory.dev/enforced", "operator": "NotIn", "values": ["false"]}],
        }
        assert spec["validationActions"] == ["Deny"]
        # No owner: the bindings outlive the factory while a namespace carries its label, and the
        # empty list makes server-side apply drop the owner reference earlier versions set.
        assert binding["metadata"]["ownerReferences"] == []


def test_every_policy_fails_closed_and_judges_only_changes_of_what_runs():
    for policy in construct_factory_policies():
        spec = policy["spec"]
        assert spec["failurePolicy"] == "Fail"
        assert spec["paramKind"] == {"apiVersion": "aifactory.dev/v1alpha1", "kind": "AIFactory"}
        changed = (
            "template-changed" if policy["metadata"]["name"] == "aifactory-podtemplates" else "spec-changed"
        )
        assert [c["name"] for c in spec["matchConditions"]] == [changed]
        for validation in spec["validations"]:
            assert validation["message"].endswith("]"), validation["message"]


def test_the_pods_policy_covers_ephemeral_containers_and_the_cronjob_policy_its_nested_template():
    policies = {p["metadata"]["name"]: p["spec"] for p in construct_factory_policies()}
    assert (
        "pods/ephemeralcontainers"
        in policies["aifactory-pods"]["matchConstraints"]["resourceRules"][0]["resources"]
    )
    pod = {v["name"]: v["expression"] for v in policies["aifactory-cronjobs"]["variables"]}["pod"]
    assert pod == "object.spec.jobTemplate.spec.template.spec"
    expressions = " ".join(v["expression"] for v in policies["aifactory-pods"]["variables"])
    assert "ephemeralContainers" in expressions and "initContainers" in expressions


def test_cel_literals_are_quoted_safely():
    assert quote("it's") == "'it\\'s'"
    assert "split('/')[0]" in host_of("i")


def test_guard_rails_exempt_the_operator_and_cluster_admins_only():
    objects = construct_guard_rails(["system:serviceaccount:aifactory-system:aifactory-operator"])
    policies = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"]
    namespace_guard = next(p for p in policies if p["metadata"]["name"] == "aifactory-namespace-guard")
    condition = namespace_guard["spec"]["matchConditions"][0]["expression"]
    assert "system:serviceaccount:aifactory-system:aifactory-operator" in condition
    assert "system:masters" in condition
    audit_guard = next(p for p in policies if p["metadata"]["name"] == "aifactory-audit-log-guard")
    assert "aifactory-operator" not in audit_guard["spec"]["matchConditions"][0]["expression"]


def test_validating_webhooks_fail_closed_in_tenant_namespaces_but_never_in_the_operators():
    endpoint = Endpoint(b"CA", url="https://127.0.0.1:16450")
    config = construct_validating_configuration(endpoint, "aifactory-system")
    for webhook in config["webhooks"]:
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["timeoutSeconds"] <= 10
        assert webhook["sideEffects"] == "NoneOnDryRun"
        expressions = webhook["namespaceSelector"]["matchExpressions"]
        assert {"key": "aifactory.dev/factory", "operator": "Exists"} in expressions
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["aifactory-system"],
        } in expressions
        assert webhook["clientConfig"]["url"] == f"https://127.0.0.1:16450/{webhook['name'].split('.')[0]}"


def test_the_audit_tap_never_blocks():
    endpoint = Endpoint(b"CA", service_namespace="aifactory-system", service_name="aifactory-operator")
    config = construct_audit_tap_configuration(endpoint, "aifactory-system", OPERATOR)
    assert {w["failurePolicy"] for w in config["webhooks"]} == {"Ignore"}
    assert {w["reinvocationPolicy"] for w in config["webhooks"]} == {"Never"}
    assert config["webhooks"][0]["clientConfig"]["service"]["path"] == "/tap-pods"


def test_the_audit_tap_skips_only_the_copies_controllers_make_of_templates_it_has_seen():
    endpoint = Endpoint(b"CA", url="https://127.0.0.1:16450")
    config = construct_audit_tap_configuration(endpoint, "aifactory-system", OPERATOR)
    skipping = {
        w["name"].split(".")[0]
        for w in config["webhooks"]
        if any(c["name"] == "not-from-a-template" for c in w["matchConditions"])
    }
    assert skipping == {"tap-pods", "tap-pod-templates"}
    condition = next(
        c for c in config["webhooks"][0]["matchConditions"] if c["name"] == "not-from-a-template"
    )
    assert '"system:serviceaccount:kube-system:job-controller"' in condition["expression"]
    validating = construct_validating_configuration(endpoint, "aifactory-system")
    assert not any(
        c["name"] == "not-from-a-template" for w in validating["webhooks"] for c in w["matchConditions"]
    )


OPERATOR = "system:serviceaccount:aifactory-system:aifactory-operator"


def test_the_audit_tap_skips_the_operators_own_labelled_children_and_nothing_else():
    endpoint = Endpoint(b"CA", url="https://127.0.0.1:16450")
    config = construct_audit_tap_configuration(endpoint, "aifactory-system", OPERATOR)
    skipping = {
        w["name"].split(".")[0]: c["expression"]
        for w in config["webhooks"]
        for c in w["matchConditions"]
        if c["name"] == "not-the-operators-own"
    }
    assert set(skipping) == {"tap-pod-templates", "tap-services"}
    expression = skipping["tap-services"]
    assert f'request.userInfo.username == "{OPERATOR}"' in expression
    assert '"app.kubernetes.io/managed-by"' in expression and '"aifactory-operator"' in expression


def test_a_serving_certificate_is_usable_only_for_its_hosts_its_ca_and_its_lifetime():
    ca = issue_ca("test-ca")
    server = issue_server(ca, "svc", ["svc.ns.svc", "127.0.0.1"])
    assert is_usable(server, ca, ["127.0.0.1"], NOW)
    assert not is_usable(server, ca, ["other.ns.svc"], NOW)
    assert not is_usable(server, issue_ca("other-ca"), ["127.0.0.1"], NOW)
    assert not is_usable(server, ca, ["127.0.0.1"], NOW + timedelta(days=340))


def test_tenant_guards_fail_closed_bind_to_tenant_namespaces_and_exempt_only_whom_they_name():
    from aifactory_operator.reconcile.tenant_guards import construct_tenant_guards

    objects = construct_tenant_guards(["system:serviceaccount:aifactory-system:aifactory-operator"])
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"}
    bindings = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert (
        set(policies)
        == {b["spec"]["policyName"] for b in bindings}
        == {
            "aifactory-binding-guard",
            "aifactory-network-policy-guard",
            "aifactory-status-guard",
            "aifactory-scale-guard",
        }
    )
    for policy in policies.values():
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert [v["expression"] for v in policy["spec"]["validations"]] == ["false"]
    for binding in bindings:
        selector = binding["spec"]["matchResources"]["namespaceSelector"]
        assert selector == {"matchExpressions": [{"key": "aifactory.dev/factory", "operator": "Exists"}]}
    binding_exempt = policies["aifactory-binding-guard"]["spec"]["matchConditions"][0]["expression"]
    assert "system:kube-scheduler" in binding_exempt and "aifactory-operator" not in binding_exempt
    network_exempt = policies["aifactory-network-policy-guard"]["spec"]["matchConditions"][0]["expression"]
    assert "aifactory-operator" in network_exempt
