"""What an AIFactory makes besides nodes: tenants with guard rails, storage bound to the
jurisdiction, adopted nodes, drains, and deletion that never loses data."""

import pytest
from factories import make_dataset, make_existing_node, make_factory, make_restricted_pod, make_tenant

from aifactory_operator.constants import API_VERSION, LABEL_FACTORY, LABEL_JURISDICTION, LABEL_POOL
from aifactory_operator.kube.client import Kube
from aifactory_operator.metrics import WRITES
from conftest import condition, create_refusal, unique, wait_for

STATIC_STORAGE = [
    {
        "name": "nfs",
        "static": {"nfsServer": "nfs.factory.internal", "path": "/export"},
        "region": "de-fra",
        "capacity": "1Pi",
    }
]


def get_factory(kube: Kube, name: str) -> dict:
    return kube.get(API_VERSION, "AIFactory", name) or {}


def wait_ready(kubectl, name: str) -> None:
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")


@pytest.fixture
def tenant_factory(kube, kubectl, operator):
    """A factory with one tenant namespace and static storage; deleted afterwards with its namespace."""
    name, namespace = unique("aif"), unique("team")
    # Quota on the untainted L40S pool too, so the plain reader pods placed by admission can run.
    quota = [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 16}, {"product": "NVIDIA-L40S", "gpus": 4}]
    tenant = make_tenant("research", namespace, gpuQuota=quota)
    kube.apply(make_factory(name, tenants=[tenant], storage=STATIC_STORAGE))
    wait_ready(kubectl, name)
    yield name, namespace
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: not get_factory(kube, name), "the factory to go")
    for dataset in kube.list(API_VERSION, "Dataset", namespace=namespace):
        kube.delete(API_VERSION, "Dataset", dataset["metadata"]["name"], namespace)
    kube.delete("v1", "Namespace", namespace)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"{LABEL_FACTORY}={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def test_tenant_namespace_gets_quota_limits_binding_and_network_policies(kube, tenant_factory):
    _, namespace = tenant_factory
    ns = kube.get("v1", "Namespace", namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["labels"]["aifactory.dev/tenant"] == "research"
    quota = kube.get("v1", "ResourceQuota", "aifactory-gpu", namespace)
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "20"}
    assert (
        kube.get("v1", "LimitRange", "aifactory-defaults", namespace)["spec"]["limits"][0]["type"]
        == "Container"
    )
    binding = kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", "aifactory-tenant-admin", namespace)
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "research-admins"}
    ]
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in kube.list("networking.k8s.io/v1", "NetworkPolicy", namespace=namespace)
    }
    assert sorted(policies) == [
        "aifactory-allow-dns",
        "aifactory-allow-egress",
        "aifactory-allow-same-namespace",
        "aifactory-default-deny",
    ]
    assert policies["aifactory-allow-egress"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_tenant_admin_runs_work_but_cannot_touch_the_guard_rails(kubectl, tenant_factory):
    _, namespace = tenant_factory

    def can(verb: str, resource: str) -> str:
        args = ["auth", "can-i", verb, resource, "-n", namespace, "--as=alice", "--as-group=research-admins"]
        return kubectl(*args, check=False).stdout.strip()

    assert can("create", "trainingjobs.aifactory.dev") == "yes"
    assert can("create", "pods") == "yes"
    assert can("update", "resourcequotas") == "no"
    assert can("delete", "resourcequotas") == "no"
    assert can("delete", "networkpolicies") == "no"
    assert can("patch", "namespaces") == "no"
    assert can("create", "rolebindings") == "no"


def test_a_restricted_violation_is_refused_in_tenant_namespaces(kube, tenant_factory):
    _, namespace = tenant_factory
    pod = make_restricted_pod("root", namespace)
    pod["spec"]["securityContext"] = {}
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        kube.apply(pod)
    assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value.body)


def test_dataset_pods_are_scheduled_only_inside_the_jurisdiction(kube, kubectl, tenant_factory):
    _, namespace = tenant_factory
    foreign = unique("foreign")
    # A node in the same region but outside the jurisdiction (no protected jurisdiction label).
    kube.apply(
        make_existing_node(
            foreign, {"topology.kubernetes.io/region": "de-fra", "kubernetes.io/hostname": foreign}
        )
    )
    try:
        dataset = {
            "apiVersion": API_VERSION,
            "kind": "Dataset",
            "metadata": {"name": "corpus", "namespace": namespace},
            "spec": {
                "purpose": "training-data",
                "storage": {"name": "nfs", "path": "/corpus", "size": "1Ti"},
                "jurisdiction": "DE",
                "classification": "internal",
            },
        }
        kube.apply(dataset)
        kubectl("wait", "--for=condition=Ready", "dataset/corpus", "-n", namespace, "--timeout=60s")
        stored = kube.get(API_VERSION, "Dataset", "corpus", namespace)
        assert stored["status"]["phase"] == "Bound" and stored["status"]["claimName"] == "dataset-corpus"
        # The volume is in de-fra, where the h100 pool is: the readers tolerate its taint.
        gpu_taint = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        for i in range(4):
            kube.apply(
                make_restricted_pod(f"reader-{i}", namespace, claim="dataset-corpus", tolerations=gpu_taint)
            )
        placed = wait_for(
            lambda: (
                all(
                    (p := kube.get("v1", "Pod", f"reader-{i}", namespace)) and p["spec"].get("nodeName")
                    for i in range(4)
                )
                and [kube.get("v1", "Pod", f"reader-{i}", namespace)["spec"]["nodeName"] for i in range(4)]
            ),
            "the readers to be scheduled",
        )
        for node_name in placed:
            assert kube.get("v1", "Node", node_name)["metadata"]["labels"].get(LABEL_JURISDICTION) == "DE"
        pinned = make_restricted_pod("pinned-outside", namespace, claim="dataset-corpus")
        pinned["spec"]["nodeSelector"] = {"kubernetes.io/hostname": foreign}
        kube.apply(pinned)
        verdict = wait_for(
            lambda: condition(kube.get("v1", "Pod", "pinned-outside", namespace), "PodScheduled"), "a verdict"
        )
        # Two layers keep it off the foreign node: the placement admission added (the node has no
        # jurisdiction label) and the volume's node affinity.
        assert verdict["status"] == "False" and "didn't match" in verdict["message"]
    finally:
        kube.delete("v1", "Node", foreign)


def test_a_foreign_dataset_is_refused_at_the_door_and_stalled_if_it_predates_the_tenancy(
    kube, kubectl, tenant_factory
):
    factory, namespace = tenant_factory
    dataset = {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": "french", "namespace": namespace},
        "spec": {
            "purpose": "model",
            "storage": {"name": "nfs"},
            "jurisdiction": "FR",
            "classification": "internal",
        },
    }
    assert "[data-locality/dataset-jurisdiction]" in create_refusal(kube, dataset, status=403)
    # Created before its namespace joined the factory, the webhook never saw it: the reconciler
    # refuses it instead.
    late = unique("late")
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": late}})
    kube.apply({**dataset, "metadata": {"name": "french", "namespace": late}})
    body = kube.get(API_VERSION, "AIFactory", factory)
    tenants = [*body["spec"]["tenants"], make_tenant("late", late)]
    kube.resource(API_VERSION, "AIFactory").patch(
        body={"spec": {"tenants": tenants}}, name=factory, content_type="application/merge-patch+json"
    )
    try:
        wait_for(
            lambda: (
                (condition(kube.get(API_VERSION, "Dataset", "french", late), "Stalled") or {}).get("reason")
                == "OutsideJurisdiction"
            ),
            "the Dataset Stalled as outside the jurisdiction",
        )
        stalled = condition(kube.get(API_VERSION, "Dataset", "french", late), "Stalled")
        assert "spec.jurisdiction" in stalled["message"]
        assert kube.get("v1", "PersistentVolumeClaim", "dataset-french", late) is None
    finally:
        kube.delete(API_VERSION, "Dataset", "french", late)
        kube.resource(API_VERSION, "AIFactory").patch(
            body={"spec": {"tenants": body["spec"]["tenants"]}},
            name=factory,
            content_type="application/merge-patch+json",
        )
        kube.delete("v1", "Namespace", late)


def test_static_nodes_are_adopted_and_released_keeping_what_the_admin_set(kube, kubectl, operator):
    name, hw = unique("aif"), unique("dgx")
    nodes = [f"{hw}-{i}" for i in range(2)]
    admin_taint = {"key": "site.example/maintenance-window", "value": "sunday", "effect": "PreferNoSchedule"}
    for node in nodes:
        kube.apply(make_existing_node(node, {"hw": hw, "kubernetes.io/hostname": node}, taints=[admin_taint]))
    static_pool = {
        "name": "dgx",
        "provisioner": "static",
        "nodeSelector": {"hw": hw},
        "gpuProduct": "NVIDIA-H100-80GB-HBM3",
        "nodes": 2,
        "region": "de-fra",
        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    }
    kube.apply(make_factory(name, pools=[static_pool]))
    try:
        wait_ready(kubectl, name)
        for node in nodes:
            labels = kube.get("v1", "Node", node)["metadata"]["labels"]
            assert (labels[LABEL_POOL], labels[LABEL_JURISDICTION], labels["hw"]) == ("dgx", "DE", hw)
            taints = {t["key"] for t in kube.get("v1", "Node", node)["spec"]["taints"]}
            assert {"nvidia.com/gpu", "site.example/maintenance-window"} <= taints
        kube.apply(make_factory(name, pools=[]))

        def released() -> bool:
            found = [kube.get("v1", "Node", n) for n in nodes]
            return all(
                LABEL_POOL not in n["metadata"]["labels"] and LABEL_FACTORY not in n["metadata"]["labels"]
                for n in found
            )

        wait_for(released, "the nodes to be released")
        for node in nodes:
            after = kube.get("v1", "Node", node)
            assert after["metadata"]["labels"]["hw"] == hw
            keys = {t["key"] for t in after["spec"].get("taints") or []}
            assert "site.example/maintenance-window" in keys and "nvidia.com/gpu" not in keys
    finally:
        kube.delete(API_VERSION, "AIFactory", name)
        for node in nodes:
            kube.delete("v1", "Node", node)


def test_scaling_down_drains_a_busy_node_before_removing_it(kube, kubectl, operator, namespace):
    name = unique("aif")
    kube.apply(make_factory(name, h100_nodes=2, l40s_nodes=0))
    try:
        wait_ready(kubectl, name)
        busy = f"{name}-h100-1"
        kube.apply(make_restricted_pod("trainer", namespace, gpus=8, nodeName=busy))
        wait_for(
            lambda: (
                (kube.get("v1", "Pod", "trainer", namespace) or {}).get("status", {}).get("phase")
                == "Running"
            ),
            "the pod to run",
        )
        kube.apply(make_factory(name, h100_nodes=1, l40s_nodes=0))

        def draining() -> dict | None:
            factory = get_factory(kube, name)
            pool = next(p for p in factory.get("status", {}).get("pools", []) if p["name"] == "h100")
            return factory if pool.get("draining") == [busy] else None

        factory = wait_for(draining, "the pool to report the drain")
        assert condition(factory, "Reconciling")["reason"] == "Draining"
        assert kube.get("v1", "Node", busy)["spec"]["unschedulable"] is True
        kube.delete("v1", "Pod", "trainer", namespace)
        wait_for(lambda: kube.get("v1", "Node", busy) is None, "the drained node to be removed")
        wait_ready(kubectl, name)
    finally:
        kube.delete(API_VERSION, "AIFactory", name)


def test_a_hundred_reconciles_of_an_unchanged_factory_write_nothing(kube, tenant_factory):
    from aifactory_operator.api.v1alpha1 import AIFactory
    from aifactory_operator.handlers.aifactory import reconcile_once
    from aifactory_operator.reconcile.parsing import parse_resource

    name, _ = tenant_factory
    factory = parse_resource(AIFactory, get_factory(kube, name))
    children = lambda: {  # noqa: E731
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for kind in (
            ("v1", "ResourceQuota"),
            ("v1", "LimitRange"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("v1", "Namespace"),
        )
        for o in kube.list(*kind, label_selector=f"{LABEL_FACTORY}={name}")
    }
    before, factory_version = children(), get_factory(kube, name)["metadata"]["resourceVersion"]
    writes_before = sum(s.value for m in WRITES.collect() for s in m.samples if s.name.endswith("_total"))
    for _ in range(100):
        nodes = kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={name}")
        plan = reconcile_once(kube, factory, nodes, [])
        assert plan.writes == 0, [o["metadata"]["name"] for o in plan.apply]
    writes_after = sum(s.value for m in WRITES.collect() for s in m.samples if s.name.endswith("_total"))
    assert writes_after == writes_before
    assert children() == before
    assert get_factory(kube, name)["metadata"]["resourceVersion"] == factory_version


def test_a_crash_mid_creation_ends_like_a_clean_run(kube, kubectl, operator):
    tenants = [make_tenant(f"t{i}", unique(f"crash{i}")) for i in range(3)]
    crashed, clean = unique("aif"), unique("aif")
    operator_was = operator
    kube.apply(make_factory(crashed, h100_nodes=120, l40s_nodes=40, tenants=tenants))
    wait_for(
        lambda: kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={crashed}"),
        "the first node",
        timeout=60,
    )
    operator_was.kill()
    partial = len(kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={crashed}"))
    operator_was.start()
    try:
        wait_ready(kubectl, crashed)
        kube.apply(
            make_factory(
                clean,
                h100_nodes=120,
                l40s_nodes=40,
                tenants=[{**t, "namespaces": [f"{n}-c" for n in t["namespaces"]]} for t in tenants],
            )
        )
        wait_ready(kubectl, clean)

        def shape(factory: str) -> list[tuple[str, str]]:
            objects = [
                (kind, o["metadata"]["name"].replace(factory, "F").removesuffix("-c"))
                for api, kind in (
                    ("v1", "Node"),
                    ("v1", "Namespace"),
                    ("v1", "ResourceQuota"),
                    ("v1", "LimitRange"),
                    ("networking.k8s.io/v1", "NetworkPolicy"),
                    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                )
                for o in kube.list(api, kind, label_selector=f"{LABEL_FACTORY}={factory}")
            ]
            return sorted(objects)

        assert partial < 160, "the crash came after creation finished; nothing was interrupted"
        assert shape(crashed) == shape(clean)
        assert len([k for k, _ in shape(crashed) if k == "Node"]) == 160
    finally:
        for name in (crashed, clean):
            kube.delete(API_VERSION, "AIFactory", name)


def test_deleting_a_factory_keeps_namespaces_with_data_and_removes_the_rest(kube, kubectl, operator):
    name, with_data, empty = unique("aif"), unique("keep"), unique("drop")
    tenants = [make_tenant("data", with_data), make_tenant("nodata", empty)]
    kube.apply(make_factory(name, tenants=tenants, storage=STATIC_STORAGE))
    wait_ready(kubectl, name)
    kube.apply(make_dataset(with_data, "weights", purpose="model", path="/w"))
    kubectl("wait", "--for=condition=Ready", "dataset/weights", "-n", with_data, "--timeout=60s")
    kube.delete(API_VERSION, "AIFactory", name)
    try:
        wait_for(lambda: not get_factory(kube, name), "the factory to be deleted")
        wait_for(
            lambda: kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={name}") == [], "its nodes to go"
        )
        assert kube.list("storage.k8s.io/v1", "StorageClass", label_selector=f"{LABEL_FACTORY}={name}") == []
        wait_for(
            lambda: (
                (kube.get("v1", "Namespace", empty) or {"status": {"phase": "Terminating"}})["status"].get(
                    "phase"
                )
                == "Terminating"
            ),
            "the empty namespace to go",
        )
        kept = kube.get("v1", "Namespace", with_data)
        assert kept["status"]["phase"] == "Active"
        assert (
            kept["metadata"]["annotations"]["aifactory.dev/retained"] == f"holds Dataset {with_data}/weights"
        )
        assert kube.get("v1", "PersistentVolumeClaim", "dataset-weights", with_data) is not None
        wait_for(
            lambda: any(
                e["reason"] == "Retained" and f"Kept Namespace {with_data}" in e["message"]
                for e in kube.list("v1", "Event", namespace="default")
            ),
            "the Retained event",
        )
    finally:
        kube.delete(API_VERSION, "Dataset", "weights", with_data)
        kube.delete("v1", "Namespace", with_data)
        for volume in kube.list("v1", "PersistentVolume", label_selector=f"{LABEL_FACTORY}={name}"):
            kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def test_removing_a_tenant_that_holds_data_keeps_its_namespace_and_says_so(kube, kubectl, operator):
    name, namespace = unique("aif"), unique("keep")
    kube.apply(make_factory(name, tenants=[make_tenant("data", namespace)], storage=STATIC_STORAGE))
    wait_ready(kubectl, name)
    kube.apply(make_dataset(namespace, "weights", purpose="model", path="/w"))
    kubectl("wait", "--for=condition=Ready", "dataset/weights", "-n", namespace, "--timeout=60s")
    try:
        kube.apply(make_factory(name, tenants=[], storage=STATIC_STORAGE))
        kubectl("wait", "--for=condition=DataRetained", f"aifactory/{name}", "--timeout=60s")
        factory = get_factory(kube, name)
        assert factory["status"]["retained"] == [
            {"kind": "Namespace", "name": namespace, "reason": f"holds Dataset {namespace}/weights"}
        ]
        assert condition(factory, "Ready")["status"] == "True"
        assert kube.get("v1", "Namespace", namespace)["status"]["phase"] == "Active"
        assert (
            kube.get("networking.k8s.io/v1", "NetworkPolicy", "aifactory-default-deny", namespace) is not None
        )
    finally:
        kube.delete(API_VERSION, "AIFactory", name)
        wait_for(lambda: not get_factory(kube, name), "the factory to go")
        kube.delete(API_VERSION, "Dataset", "weights", namespace)
        kube.delete("v1", "Namespace", namespace)
        for volume in kube.list("v1", "PersistentVolume", label_selector=f"{LABEL_FACTORY}={name}"):
            kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])
