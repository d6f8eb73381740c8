"""Chaos: the operator is down while people keep working. Specs change, children are deleted, a
factory and a job are deleted, and new jobs are refused (the webhook fails closed); when it is back,
level-based reconciliation must reach exactly the state a running operator would have kept, and
finalizers must release what was deleted."""

import pytest
from chaos_figures import record
from factories import make_factory, make_tenant
from kubernetes.client.exceptions import ApiException
from test_chaos_recovery import is_ready, unexpected_errors
from test_training import make_training

from aifactory_operator.constants import API_VERSION, LABEL_FACTORY
from aifactory_operator.kube.client import Kube
from conftest import unique, wait_for

pytestmark = pytest.mark.chaos
GUARDED = [
    ("v1", "ResourceQuota", "aifactory-gpu"),
    ("v1", "LimitRange", "aifactory-defaults"),
    ("networking.k8s.io/v1", "NetworkPolicy", "aifactory-default-deny"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "aifactory-tenant-admin"),
]


def phase(kube: Kube, name: str, namespace: str) -> str:
    return ((kube.get(API_VERSION, "TrainingJob", name, namespace) or {}).get("status") or {}).get(
        "phase", ""
    )


def _created(kube: Kube, body: dict) -> bool:
    try:
        kube.apply(body)
    except ApiException:
        return False
    return True


def factory_nodes(kube: Kube, name: str) -> list[str]:
    return sorted(
        n["metadata"]["name"]
        for n in kube.list("v1", "Node", label_selector=f"{LABEL_FACTORY}={name}")
        if not n["metadata"].get("deletionTimestamp")
    )


def test_what_changed_while_the_operator_was_down_is_reconciled_when_it_returns(kube, layout, operator):
    kept, doomed = unique("kept"), unique("doomed")
    first_ns, second_ns = f"{kept}-a", f"{kept}-b"
    kube.apply(make_factory(kept, h100_nodes=1, l40s_nodes=0, tenants=[make_tenant("a", first_ns)]))
    kube.apply(make_factory(doomed, h100_nodes=1, l40s_nodes=1))
    wait_for(lambda: is_ready(kube, kept) and is_ready(kube, doomed), "both factories Ready")
    kube.apply(make_training("before", first_ns, nodes=1, duration="600s"))
    wait_for(lambda: phase(kube, "before", first_ns) == "Running", "the first job Running")
    log = layout.logs / "operator-e2e.log"
    offset = len(log.read_text(errors="replace"))

    operator.kill()
    try:
        grown = make_factory(
            kept,
            h100_nodes=2,
            l40s_nodes=0,
            tenants=[make_tenant("a", first_ns), make_tenant("b", second_ns)],
        )
        kube.apply(grown)
        for api_version, kind, name in GUARDED:
            kube.delete(api_version, kind, name, first_ns)
        kube.delete("v1", "Node", factory_nodes(kube, kept)[0])
        kube.delete(API_VERSION, "AIFactory", doomed)
        kube.delete(API_VERSION, "TrainingJob", "before", first_ns)
        # The webhook fails closed: new work waits for the operator instead of slipping past it.
        with pytest.raises(ApiException, match="failed calling webhook"):
            kube.apply(make_training("during", first_ns, nodes=1, duration="600s"))
        held = kube.get(API_VERSION, "AIFactory", doomed)
        assert held is not None and held["metadata"].get("deletionTimestamp"), "the finalizer holds it"
    finally:
        operator.start()

    wait_for(lambda: kube.get(API_VERSION, "AIFactory", doomed) is None, "the finalizer released", 120)
    wait_for(lambda: factory_nodes(kube, doomed) == [], "the deleted factory's nodes gone", 120)
    wait_for(lambda: len(factory_nodes(kube, kept)) == 2, "the kept factory grown to two nodes", 120)
    for api_version, kind, name in GUARDED:
        for ns in (first_ns, second_ns):
            wait_for(
                lambda a=api_version, k=kind, n=name, ns=ns: kube.get(a, k, n, ns), f"{kind} {name} in {ns}"
            )
    wait_for(
        lambda: _created(kube, make_training("during", first_ns, nodes=1, duration="600s")),
        "the webhook back",
        120,
    )
    wait_for(lambda: phase(kube, "during", first_ns) == "Running", "a new job Running", 120)
    wait_for(
        lambda: (
            not kube.list(
                "batch/v1", "Job", namespace=first_ns, label_selector="aifactory.dev/trainingjob=before"
            )
        ),
        "the deleted job's attempts gone",
    )
    wait_for(lambda: is_ready(kube, kept), "the kept factory Ready")
    assert [len(factory_nodes(kube, kept))] == [2]
    assert unexpected_errors(log, offset) == []
    record(
        "operator_down",
        changes_while_down=4 + len(GUARDED),
        reconciled_after_restart=4 + len(GUARDED),
        finalizers_released=1,
        unexpected_log_errors=0,
    )
    kube.delete(API_VERSION, "AIFactory", kept)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", kept) is None, "the kept factory deleted")
