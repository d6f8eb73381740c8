"""Lifecycle doors on the real control plane: a namespace outliving its factory is locked (with the
operator running or stopped) until a factory of that name adopts it again; a namespace labelled for
a factory but not yet proved enforced refuses tenant writes; and what the operator renders for a
ModelEndpoint or a TrainingJob changes only through the operator."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from factories import make_factory, make_restricted_pod, make_tenant
from identities import impersonating, user_with_cluster_role
from kubernetes.client.exceptions import ApiException
from test_serving import STORAGE, make_endpoint, model_dataset
from test_training import make_training

from aifactory_operator.constants import API_VERSION, LABEL_ENFORCED, LABEL_FACTORY, LABEL_TRAININGJOB
from aifactory_operator.kube.client import Kube
from aifactory_operator.reconcile.admission_policies import FACTORY_POLICY_NAMES
from conftest import unique, wait_for

VAPB = ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding")
ADMINS = "doors-admins"
QUOTA = [{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 8}, {"product": "NVIDIA-L40S", "gpus": 4}]
DIGEST = "sha256:" + "c" * 64


def refusal(call: Callable[[], Any]) -> tuple[int, str]:
    """The API server's status and message for a call it must refuse."""
    with pytest.raises(ApiException) as refused:
        call()
    body = refused.value.body
    try:
        return refused.value.status, str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return refused.value.status, str(body)


def dry_run_refusal(client: Kube, obj: dict) -> str | None:
    """The API server's refusal of a server-side dry-run create, None if it would admit it."""
    try:
        client.resource(obj["apiVersion"], obj["kind"]).create(
            body=obj, namespace=obj["metadata"]["namespace"], dry_run="All"
        )
    except ApiException as error:
        return str(error.body)
    return None


def creating(client: Kube, obj: dict) -> Callable[[], Any]:
    meta = obj["metadata"]
    return lambda: client.resource(obj["apiVersion"], obj["kind"]).create(
        body=obj, namespace=meta["namespace"]
    )


def make_service(name: str, namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def is_ready(kube: Kube, name: str) -> bool:
    conditions = ((kube.get(API_VERSION, "AIFactory", name) or {}).get("status") or {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def labels_of(kube: Kube, namespace: str) -> dict[str, str]:
    return dict(((kube.get("v1", "Namespace", namespace) or {}).get("metadata") or {}).get("labels") or {})


def doors_factory(name: str, namespace: str) -> dict:
    tenant = make_tenant("doors", namespace, gpuQuota=QUOTA, adminGroups=[ADMINS])
    return make_factory(name, h100_nodes=1, l40s_nodes=1, tenants=[tenant], storage=STORAGE)


def admitted_eventually(client: Kube, obj: dict) -> bool:
    """Created (policy informers may lag a moment behind an unlock) and then removed again."""
    try:
        creating(client, obj)()
    except ApiException:
        return False
    return True


@pytest.fixture
def tenant(kubeconfig) -> Kube:
    """A tenant admin of the factory's tenant (the RoleBinding the operator applies grants it)."""
    return impersonating(kubeconfig, "tina", ADMINS)


@pytest.fixture
def relabeller(kube, kubeconfig) -> Iterator[Kube]:
    """A user allowed (by mistake) to patch namespaces: RBAC alone would let them unlock one."""
    role = unique("relabel")
    rules = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch"]}]
    with user_with_cluster_role(kube, kubeconfig, role, "rex", rules) as client:
        yield client


@pytest.fixture
def doors(kube, operator) -> Iterator[dict[str, str]]:
    """A Ready factory with one tenant namespace holding a model Dataset; torn down afterwards."""
    name, namespace = unique("doors"), unique("doors-ns")
    kube.apply(doors_factory(name, namespace))
    wait_for(lambda: is_ready(kube, name), f"AIFactory {name} Ready")
    kube.apply(model_dataset(namespace, DIGEST, "weights"))
    yield {"factory": name, "namespace": namespace}
    for kind in ("ModelEndpoint", "TrainingJob", "Dataset"):
        for obj in kube.list(API_VERSION, kind, namespace=namespace):
            kube.delete(API_VERSION, kind, obj["metadata"]["name"], namespace)
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    kube.delete("v1", "Namespace", namespace)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"{LABEL_FACTORY}={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def test_a_ready_factory_has_unlocked_its_namespace_and_its_bindings_have_no_owner(kube, doors, tenant):
    assert labels_of(kube, doors["namespace"]).get(LABEL_ENFORCED) == "true"
    for policy in FACTORY_POLICY_NAMES:
        binding = kube.get(*VAPB, f"{policy}.{doors['factory']}")
        assert binding is not None and not binding["metadata"].get("ownerReferences")
    pod = make_restricted_pod(unique("ok"), doors["namespace"])
    wait_for(lambda: admitted_eventually(tenant, pod), "the tenant's pod admitted")


def test_a_namespace_outliving_its_factory_is_locked_until_a_factory_of_that_name_adopts_it(
    kube, kubectl, operator, doors, tenant
):
    name, namespace = doors["factory"], doors["namespace"]
    kubectl("wait", "--for=condition=Ready", "dataset/weights", "-n", namespace, "--timeout=60s")
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    assert labels_of(kube, namespace).get(LABEL_ENFORCED) == "false", "locked before the finalizer went"
    assert all(kube.get(*VAPB, f"{policy}.{name}") for policy in FACTORY_POLICY_NAMES), "bindings kept"

    def assert_locked() -> None:
        probe = make_restricted_pod(unique("probe"), namespace)
        wait_for(lambda: "orphaned" in (dry_run_refusal(tenant, probe) or ""), "the lock in force")
        for obj in (
            make_restricted_pod(unique("pod"), namespace),
            make_service(unique("svc"), namespace),
            model_dataset(namespace, DIGEST, unique("data")),
        ):
            status, message = refusal(creating(tenant, obj))
            assert status in (403, 422), message
            assert "[lifecycle/orphaned-namespace]" in message and f"AIFactory '{name}'" in message, message

    assert_locked()
    # A cluster admin passes the guard policies; the webhook, which judges Datasets, still refuses.
    _, message = refusal(creating(kube, model_dataset(namespace, DIGEST, unique("admin"))))
    assert "[lifecycle/orphaned-namespace]" in message and f"AIFactory '{name}'" in message, message
    operator.stop()
    try:
        assert_locked()
        refusal(creating(kube, model_dataset(namespace, DIGEST, unique("admin"))))  # fails closed
    finally:
        operator.start()

    kube.apply(doors_factory(name, namespace))
    wait_for(lambda: is_ready(kube, name), f"AIFactory {name} Ready again")
    assert labels_of(kube, namespace).get(LABEL_ENFORCED) == "true"
    pod = make_restricted_pod(unique("back"), namespace)
    wait_for(lambda: admitted_eventually(tenant, pod), "the tenant's pod admitted after adoption")


def test_a_namespace_labelled_for_a_factory_but_not_enforced_refuses_tenant_writes(
    kube, operator, tenant, relabeller
):
    """The window between a namespace's first write and the proof that its policies are in force,
    held open: the namespace names a factory that does not exist (yet), so nobody unlocks it."""
    namespace, factory = unique("unproved"), unique("not-yet")
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {LABEL_FACTORY: factory}},
        }
    )
    try:
        rules = [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["create"]}]
        role = {"name": "writer", "namespace": namespace}
        kube.apply(
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": role, "rules": rules}
        )
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "doors-admins", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": ADMINS}],
            }
        )
        # RBAC and the guard (just applied if the operator just started) take a moment to be in force.
        probe = make_restricted_pod("probe", namespace)
        wait_for(lambda: "lifecycle" in (dry_run_refusal(tenant, probe) or ""), "the lifecycle guard")
        for obj in (make_restricted_pod("early", namespace), make_service("early", namespace)):
            _, message = refusal(creating(tenant, obj))
            assert "[lifecycle/not-yet-enforced]" in message, message
            assert f"AIFactory '{factory}'" in message and namespace in message, message
        # Nor can someone granted namespace edits by mistake unlock it: the label is the operator's.
        _, message = refusal(
            lambda: relabeller.patch(
                "v1", "Namespace", namespace, {"metadata": {"labels": {LABEL_ENFORCED: "true"}}}
            )
        )
        assert "[guard-rail/namespace-labels]" in message, message
    finally:
        kube.delete("v1", "Namespace", namespace)


def rendered(kube: Kube, api_version: str, kind: str, namespace: str, selector: str) -> dict | None:
    found = kube.list(api_version, kind, namespace=namespace, label_selector=selector)
    return found[0] if found else None


def test_a_tenant_admin_cannot_change_what_the_operator_renders_while_the_operator_still_can(
    kube, kubectl, doors, tenant
):
    namespace = doors["namespace"]
    kubectl("wait", "--for=condition=Ready", "dataset/weights", "-n", namespace, "--timeout=60s")
    kube.apply(make_endpoint("chat", namespace, model="weights", minimum=1, maximum=2))
    kube.apply(make_training("train", namespace, nodes=1, duration="600s"))
    deployment = wait_for(lambda: kube.get("apps/v1", "Deployment", "chat", namespace), "the Deployment")
    job = wait_for(
        lambda: rendered(kube, "batch/v1", "Job", namespace, f"{LABEL_TRAININGJOB}=train"), "the Job"
    )
    deployments = tenant.resource("apps/v1", "Deployment")
    escape = {"spec": {"template": {"spec": {"tolerations": [{"operator": "Exists"}]}}}}
    for call in (
        lambda: deployments.patch(body=escape, name="chat", namespace=namespace),
        lambda: deployments.patch(
            body={"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}},
            name="chat",
            namespace=namespace,
        ),
        lambda: deployments.delete(name="chat", namespace=namespace),
    ):
        status, message = refusal(call)
        if "[allow-list/extended-resources]" in message:
            # The template edit also breaks the GPU rule (only the operator writes GPU templates);
            # the API server reports whichever policy it evaluated first.
            continue
        assert "[guard-rail/operator-objects]" in message, message
        assert "ModelEndpoint 'chat'" in message and "change that ModelEndpoint" in message, message
    # The tenant-admin role grants no scale subresource, and a Scale carries no labels to select on.
    status, message = refusal(
        lambda: deployments.subresources["scale"].patch(
            body={"spec": {"replicas": 5}}, name="chat", namespace=namespace
        )
    )
    assert status == 403, message
    job_name = job["metadata"]["name"]
    status, message = refusal(
        lambda: tenant.resource("batch/v1", "Job").patch(
            body={"metadata": {"annotations": {"x": "y"}}}, name=job_name, namespace=namespace
        )
    )
    assert "[guard-rail/operator-objects]" in message and "TrainingJob 'train'" in message, message
    spoof = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "spoof",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "aifactory-operator"},
        },
    }
    _, message = refusal(creating(tenant, spoof))
    assert "[guard-rail/operator-objects]" in message and "only the operator creates" in message, message
    assert (
        kube.get("apps/v1", "Deployment", "chat", namespace)["spec"]["template"]
        == deployment["spec"]["template"]
    )

    # The operator still reconciles its own objects: a new maximum reaches the HPA it renders.
    kube.resource(API_VERSION, "ModelEndpoint").patch(
        body={"spec": {"replicas": {"min": 1, "max": 3}}},
        name="chat",
        namespace=namespace,
        content_type="application/merge-patch+json",
    )
    wait_for(
        lambda: (
            (kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "chat", namespace) or {})
            .get("spec", {})
            .get("maxReplicas")
            == 3
        ),
        "the operator to update its HPA",
    )


def test_bindings_an_earlier_version_gave_an_owner_lose_it_at_the_next_reconcile(kube, doors):
    """Earlier versions set an ownerReference to the factory (so deleting it garbage-collected the
    bindings); server-side apply with our field manager removes what we no longer send."""
    name = doors["factory"]
    factory = kube.get(API_VERSION, "AIFactory", name)
    owner = {
        "apiVersion": API_VERSION,
        "kind": "AIFactory",
        "name": name,
        "uid": factory["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    old = kube.get(*VAPB, f"aifactory-pods.{name}")
    kube.apply(
        {
            "apiVersion": VAPB[0],
            "kind": VAPB[1],
            "metadata": {
                "name": old["metadata"]["name"],
                "labels": old["metadata"]["labels"],
                "ownerReferences": [owner],
            },
            "spec": old["spec"],
        }
    )
    assert kube.get(*VAPB, f"aifactory-pods.{name}")["metadata"]["ownerReferences"][0]["uid"] == owner["uid"]
    wait_for(
        lambda: not kube.get(*VAPB, f"aifactory-pods.{name}")["metadata"].get("ownerReferences"),
        "the operator's next reconcile to drop the owner reference",
    )
