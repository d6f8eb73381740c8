"""The Helm chart on the real control plane: install, install again, upgrade to high availability,
uninstall. KWOK runs the operator's pods (the image is not pulled here); everything else is real.

The session's operator runs outside the cluster and applies the same shared objects as the chart
(admission policies, webhook configurations, tenant-admin role); it is stopped and those objects
removed first, as on a cluster the operator never ran on, and both come back afterwards."""

import time

import pytest
from charttools import CHART, render
from charttools import helm as run_helm
from factories import make_existing_node

from aifactory_operator.kube.client import Kube
from aifactory_operator.reconcile.admission_policies import construct_factory_policies
from aifactory_operator.reconcile.guard_policies import construct_guard_rails
from aifactory_operator.reconcile.placement_mutation import construct_placement_mutation
from aifactory_operator.reconcile.tenant_guards import construct_tenant_guards
from aifactory_operator.reconcile.webhook_objects import AUDIT_TAP_NAME, PLACEMENT_NAME, VALIDATING_NAME
from conftest import unique, wait_for

# In the compatibility suite that make compat runs on the oldest supported minor.
pytestmark = pytest.mark.compat

API = "admissionregistration.k8s.io/v1"
CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ClusterKopfPeering",
}
# Everything the out-of-cluster operator applies that the chart also renders, from the code that
# renders both, so a new policy cannot be forgotten here.
SHARED = [
    *(
        (o["apiVersion"], o["kind"], o["metadata"]["name"])
        for o in [
            *construct_factory_policies(),
            *construct_guard_rails([]),
            *construct_tenant_guards([]),
            *construct_placement_mutation(),
        ]
    ),
    (API, "ValidatingWebhookConfiguration", VALIDATING_NAME),
    (API, "MutatingWebhookConfiguration", AUDIT_TAP_NAME),
    (API, "MutatingWebhookConfiguration", PLACEMENT_NAME),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "aifactory-tenant-admin"),
]


def remove_shared(kube: Kube) -> None:
    """Deletes the shared objects; MutatingAdmissionPolicy only where the API server serves it."""
    served = kube.served_resources(API)
    for api_version, kind, name in SHARED:
        if kind.startswith("MutatingAdmissionPolicy") and "mutatingadmissionpolicies" not in served:
            continue
        kube.delete(api_version, kind, name)


@pytest.fixture
def clean_cluster(kube: Kube, operator):
    """No operator running and none of its shared objects; both restored afterwards."""
    operator.stop()
    remove_shared(kube)
    node = unique("system")
    kube.apply(
        make_existing_node(node, {"kubernetes.io/hostname": node, "node-role.example/system": "true"}, gpus=0)
    )
    yield node
    kube.delete("v1", "Node", node)
    # A failed test leaves the release's webhook configuration behind; merged with ours it is
    # invalid (a service and a URL), and the restarted operator could not start its admission.
    remove_shared(kube)
    operator.start()
    wait_for(
        lambda: kube.get(API, "ValidatingWebhookConfiguration", "aifactory-sovereignty"), "the operator back"
    )


def cluster_objects(release_objects: list[dict]) -> list[tuple[str, str, str]]:
    return [
        (o["apiVersion"], o["kind"], o["metadata"]["name"])
        for o in release_objects
        if o["kind"] in CLUSTER_SCOPED
    ]


def test_the_chart_installs_upgrades_and_uninstalls_cleanly(kube, kubectl, kubeconfig, clean_cluster):
    namespace, release = unique("aif-helm"), "aifactory"

    started = time.monotonic()
    run_helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        "--wait",
        "--timeout=180s",
        kubeconfig=kubeconfig,
    )
    install_seconds = time.monotonic() - started
    kubectl(
        "-n", namespace, "wait", "--for=condition=Available", "deployment/aifactory-operator", "--timeout=60s"
    )
    for crd in ("aifactories", "datasets", "trainingjobs", "modelendpoints"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}.aifactory.dev", "--timeout=30s")
    installed = render(namespace=namespace)
    for api_version, kind, name in cluster_objects(installed):
        assert kube.get(api_version, kind, name) is not None, (kind, name)
    webhook = kube.get(API, "ValidatingWebhookConfiguration", "aifactory-sovereignty")
    assert webhook["webhooks"][0]["clientConfig"]["service"]["namespace"] == namespace

    # Installing again changes nothing; upgrading to three replicas adds peering and a budget.
    run_helm(
        "upgrade",
        "--install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--wait",
        "--timeout=180s",
        kubeconfig=kubeconfig,
    )
    run_helm(
        "upgrade",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set=replicas=3",
        "--wait",
        "--timeout=180s",
        kubeconfig=kubeconfig,
    )
    # --wait returns once three new pods are ready; the old one may still be on its way out.
    wait_for(
        lambda: (
            (kube.get("apps/v1", "Deployment", "aifactory-operator", namespace) or {})
            .get("status", {})
            .get("availableReplicas")
            == 3
        ),
        "three available replicas after the rollout",
    )
    assert kube.get("kopf.dev/v1", "ClusterKopfPeering", "aifactory-operator") is not None
    assert kube.get("policy/v1", "PodDisruptionBudget", "aifactory-operator", namespace) is not None
    history = run_helm("history", release, "-n", namespace, kubeconfig=kubeconfig).stdout
    assert history.count("\n") >= 4  # header and three revisions

    run_helm("uninstall", release, "-n", namespace, "--wait", "--timeout=120s", kubeconfig=kubeconfig)
    upgraded = render("replicas=3", namespace=namespace)
    left = [o for o in cluster_objects(upgraded) if kube.get(*o) is not None]
    assert left == []
    for crd in ("aifactories", "datasets", "trainingjobs", "modelendpoints"):
        assert (
            kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"{crd}.aifactory.dev")
            is not None
        )
    assert kube.get("apps/v1", "Deployment", "aifactory-operator", namespace) is None
    kube.delete("v1", "Namespace", namespace)
    print(f"helm install --wait took {install_seconds:.1f}s")
