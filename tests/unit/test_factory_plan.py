"""The factory plan: tenants, storage, pruning that never loses data, and idempotence."""

from dataclasses import replace

from aifactory_operator.api.v1alpha1 import Dataset
from aifactory_operator.reconcile.aifactory import FactoryObservation, plan_factory, plan_factory_deletion
from aifactory_operator.reconcile.datasets import plan_dataset
from aifactory_operator.reconcile.diff import is_satisfied
from aifactory_operator.reconcile.storage import construct_storage_class
from builders import make_factory, make_tenant

ENFORCED = "aifactory.dev/enforced"
TENANT = make_tenant(
    "research",
    namespaces=["research"],
    gpuQuota=[{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 16}],
    adminGroups=["research-admins"],
)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def stored(objects: list[dict]) -> FactoryObservation:
    """What the API server would hold after applying `objects` (nodes Ready)."""
    nodes = [
        {**o, "status": {**o["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
        for o in by_kind(objects, "Node")
    ]
    rest = [o for o in objects if o["kind"] not in ("Node", "ClusterRole")]
    return FactoryObservation(
        nodes=nodes,
        children=rest,
        namespaces={o["metadata"]["name"]: o for o in by_kind(objects, "Namespace")},
        cluster_role=by_kind(objects, "ClusterRole")[0],
    )


def unlocked(objects: list[dict]) -> FactoryObservation:
    """What the API server holds once the operator proved the policies in force and unlocked the
    tenant namespaces (`aifactory.dev/enforced=true`)."""
    observed = stored(objects)
    namespaces = {
        name: {**ns, "metadata": {**ns["metadata"], "labels": {**ns["metadata"]["labels"], ENFORCED: "true"}}}
        for name, ns in observed.namespaces.items()
    }
    return replace(observed, namespaces=namespaces)


def settled(factory, observed: FactoryObservation | None = None) -> list[dict]:
    """Everything the factory's reconciles apply: before and after its namespaces are unlocked."""
    first = plan_factory(factory, observed or FactoryObservation())
    return [*first.apply, *plan_factory(factory, unlocked(first.apply)).apply]


def test_a_new_factory_creates_nodes_namespaces_and_guard_rails_but_no_tenant_rights_yet():
    plan = plan_factory(make_factory(tenants=[TENANT]), FactoryObservation())
    kinds = sorted({o["kind"] for o in plan.apply})
    assert kinds == [
        "ClusterRole",
        "LimitRange",
        "Namespace",
        "NetworkPolicy",
        "Node",
        "ResourceQuota",
        "ValidatingAdmissionPolicyBinding",
    ]
    [namespace] = by_kind(plan.apply, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["metadata"]["labels"]["aifactory.dev/clearance"] == "internal"
    assert namespace["metadata"]["labels"]["aifactory.dev/factory"] == "de-1"
    assert "aifactory.dev/enforced" not in namespace["metadata"]["labels"]
    assert namespace["metadata"]["annotations"] == {"aifactory.dev/created-by-operator": "true"}
    [quota] = by_kind(plan.apply, "ResourceQuota")
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "16"}
    assert plan.enforce == ["research"]


def test_the_tenant_admins_are_bound_only_once_the_namespace_is_unlocked():
    factory = make_factory(tenants=[TENANT])
    first = plan_factory(factory, FactoryObservation())
    plan = plan_factory(factory, unlocked(first.apply))
    [binding] = by_kind(plan.apply, "RoleBinding")
    assert binding["subjects"][0]["name"] == "research-admins"
    assert binding["roleRef"]["name"] == "aifactory-tenant-admin"
    assert plan.enforce == []


def test_an_air_gapped_tenant_may_reach_only_dns_itself_and_allowed_egress():
    factory = make_factory(tenants=[TENANT])
    factory.spec.sovereignty.allowed_egress = ["10.20.0.0/16"]
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in by_kind(plan_factory(factory, FactoryObservation()).apply, "NetworkPolicy")
    }
    assert policies["aifactory-default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    assert policies["aifactory-allow-egress"]["egress"] == [{"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}]
    assert policies["aifactory-allow-dns"]["egress"][0]["ports"][0] == {"protocol": "UDP", "port": 53}


def test_a_connected_factory_lets_tenants_egress_anywhere():
    factory = make_factory(tenants=[TENANT])
    factory.spec.sovereignty.air_gapped = False
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in by_kind(plan_factory(factory, FactoryObservation()).apply, "NetworkPolicy")
    }
    assert policies["aifactory-allow-egress"]["egress"] == [{}]


def test_the_tenant_admin_role_cannot_touch_quota_network_policy_or_bindings():
    [role] = by_kind(plan_factory(make_factory(tenants=[TENANT]), FactoryObservation()).apply, "ClusterRole")
    writable = {
        (group, resource)
        for rule in role["rules"]
        if "update" in rule["verbs"] or "delete" in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert not writable & {
        ("", "resourcequotas"),
        ("", "limitranges"),
        ("networking.k8s.io", "networkpolicies"),
        ("rbac.authorization.k8s.io", "rolebindings"),
    }
    assert all(
        "*" not in rule["verbs"] and "escalate" not in rule["verbs"] and "bind" not in rule["verbs"]
        for rule in role["rules"]
    )


def test_reconciling_what_is_already_there_writes_nothing():
    factory = make_factory(tenants=[TENANT])
    second = plan_factory(factory, unlocked(settled(factory)))
    assert second.writes == 0, [o["metadata"]["name"] for o in second.apply]


def test_an_existing_namespace_is_adopted_not_marked_as_created():
    existing = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "research"}}
    plan = plan_factory(make_factory(tenants=[TENANT]), FactoryObservation(namespaces={"research": existing}))
    [namespace] = by_kind(plan.apply, "Namespace")
    assert "annotations" not in namespace["metadata"]


def test_a_removed_tenant_with_data_keeps_its_namespace_and_says_why():
    observed = unlocked(settled(make_factory(tenants=[TENANT])))
    observed = FactoryObservation(**{**observed.__dict__, "datasets": {"research": ["corpus"]}})
    plan = plan_factory(make_factory(tenants=[]), observed)
    assert plan.delete == []
    assert plan.status["retained"] == [
        {"kind": "Namespace", "name": "research", "reason": "holds Dataset research/corpus"}
    ]
    # Kept, and locked: no longer enforced, so the lifecycle guard refuses tenant writes there.
    assert plan.patch[0][1] == {
        "metadata": {
            "labels": {"aifactory.dev/enforced": "false"},
            "annotations": {"aifactory.dev/retained": "holds Dataset research/corpus"},
        }
    }


def test_a_removed_tenant_without_data_loses_the_namespace_we_created():
    observed = stored(plan_factory(make_factory(tenants=[TENANT]), FactoryObservation()).apply)
    plan = plan_factory(make_factory(tenants=[]), observed)
    assert [(r.kind, r.name) for r in plan.delete] == [("Namespace", "research")]


def test_a_removed_tenant_in_an_adopted_namespace_is_released_not_deleted():
    existing = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "research"}}
    objects = settled(make_factory(tenants=[TENANT]), FactoryObservation(namespaces={"research": existing}))
    plan = plan_factory(make_factory(tenants=[]), unlocked(objects))
    assert ("Namespace", "research") not in [(r.kind, r.name) for r in plan.delete]
    assert {r.kind for r in plan.delete} == {"ResourceQuota", "LimitRange", "RoleBinding", "NetworkPolicy"}
    assert plan.patch[0][1]["metadata"]["labels"]["aifactory.dev/factory"] is None


def test_deleting_the_factory_keeps_bound_volumes_and_removes_unused_ones():
    factory = make_factory(tenants=[TENANT])
    observed = stored(plan_factory(factory, FactoryObservation()).apply)
    volumes = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "used"},
            "status": {"phase": "Bound"},
            "spec": {"claimRef": {"namespace": "research", "name": "dataset-x"}},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "unused"},
            "status": {"phase": "Available"},
            "spec": {},
        },
    ]
    plan = plan_factory_deletion(factory, FactoryObservation(**{**observed.__dict__, "volumes": volumes}))
    deleted = {(r.kind, r.name) for r in plan.delete}
    assert ("PersistentVolume", "unused") in deleted and ("PersistentVolume", "used") not in deleted
    assert ("Node", "de-1-h100-0") in deleted and ("Namespace", "research") in deleted
    assert plan.status["retained"][0]["name"] == "used"


def test_storage_classes_pin_volumes_to_the_jurisdiction_and_retain_data():
    factory = make_factory()
    factory.spec.storage = []
    from aifactory_operator.api.v1alpha1.aifactory import Storage

    storage = Storage(
        name="data", storage_class_provisioner="nfs.csi.k8s.io", region="de-fra", capacity="1Pi"
    )
    sc = construct_storage_class(factory, storage)
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["reclaimPolicy"] == "Retain"
    terms = sc["allowedTopologies"][0]["matchLabelExpressions"]
    assert {"key": "node-restriction.kubernetes.io/aifactory.dev-jurisdiction", "values": ["DE"]} in terms


def make_dataset(**spec) -> Dataset:
    base = {
        "purpose": "training-data",
        "storage": {"name": "nfs", "path": "/corpus"},
        "jurisdiction": "DE",
        "classification": "internal",
    }
    return Dataset.model_validate(
        {
            "metadata": {"name": "corpus", "namespace": "research", "uid": "ds-uid"},
            "apiVersion": "aifactory.dev/v1alpha1",
            "spec": {**base, **spec},
        }
    )


def factory_with_static_storage():
    factory = make_factory(tenants=[TENANT])
    from aifactory_operator.api.v1alpha1.aifactory import StaticSource, Storage

    factory.spec.storage = [
        Storage(
            name="nfs",
            static=StaticSource(nfs_server="nfs.factory", path="/export"),
            region="de-fra",
            capacity="1Pi",
        )
    ]
    return factory


NS_LABELS = {"aifactory.dev/factory": "de-1", "aifactory.dev/tenant": "research"}


def test_a_dataset_on_static_storage_gets_a_volume_pinned_to_the_jurisdiction():
    plan = plan_dataset(make_dataset(), NS_LABELS, factory_with_static_storage(), None, None)
    volume, claim = plan.apply
    assert volume["spec"]["nfs"] == {"server": "nfs.factory", "path": "/export/research/corpus"}
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    expressions = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert expressions[0] == {
        "key": "node-restriction.kubernetes.io/aifactory.dev-jurisdiction",
        "operator": "In",
        "values": ["DE"],
    }
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert claim["metadata"]["labels"]["aifactory.dev/classification"] == "internal"


def test_a_dataset_of_another_jurisdiction_is_refused():
    plan = plan_dataset(make_dataset(jurisdiction="FR"), NS_LABELS, factory_with_static_storage(), None, None)
    assert (plan.outcome.state, plan.outcome.reason) == ("stalled", "OutsideJurisdiction")
    assert plan.outcome.message.startswith("spec.jurisdiction: the data belongs to jurisdiction FR")
    assert plan.apply == []


def test_a_dataset_above_the_tenants_clearance_is_refused():
    plan = plan_dataset(
        make_dataset(classification="secret"), NS_LABELS, factory_with_static_storage(), None, None
    )
    assert (plan.outcome.state, plan.outcome.reason) == ("stalled", "AboveClearance")
    assert "above the tenant's clearance 'internal'" in plan.outcome.message


def test_a_dataset_outside_any_tenant_namespace_is_refused():
    plan = plan_dataset(make_dataset(), {}, None, None, None)
    assert plan.outcome.reason == "NotATenantNamespace"


def test_subset_comparison_ignores_server_added_fields_but_not_changed_lists():
    desired = {"spec": {"taints": [{"key": "a"}]}, "metadata": {"labels": {}}}
    assert is_satisfied(
        desired, {"spec": {"taints": [{"key": "a", "timeAdded": "t"}]}, "metadata": {"uid": "x"}}
    )
    assert not is_satisfied(desired, {"spec": {"taints": [{"key": "a"}, {"key": "b"}]}, "metadata": {}})
