"""Chaos: the API server throttles (429 with Retry-After) and reports conflicts (409) on a third
of the operator's writes, through a proxy in front of the real kube-apiserver. The factory must
still converge to exactly its children, and every throttled write must wait as long as it was told."""

from pathlib import Path

import pytest
from chaos_figures import record
from factories import make_factory, make_tenant
from fault_proxy import RETRY_AFTER_SECONDS, FaultPlan, FaultProxy, retry_gaps
from test_chaos_operator_down import GUARDED, factory_nodes
from test_chaos_recovery import is_ready, unexpected_errors

from aifactory_operator.constants import API_VERSION
from aifactory_operator.launcher import OperatorProcess
from conftest import unique, wait_for

pytestmark = pytest.mark.chaos


def proxy_kubeconfig(path: Path, server: str, token: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: proxy\n"
        f"clusters: [{{name: proxy, cluster: {{server: '{server}'}}}}]\n"
        f"users: [{{name: admin, user: {{token: '{token}'}}}}]\n"
        "contexts: [{name: proxy, context: {cluster: proxy, user: admin}}]\n"
    )
    return path


def test_throttled_and_conflicting_writes_are_retried_until_the_factory_converges(
    kube, layout, operator, tmp_path
):
    plan = FaultPlan(agent="aifactory-operator")
    proxy = FaultProxy(layout.apiserver_url, layout.pki / "ca.crt", plan)
    proxy.start()
    token = (layout.pki / "admin.token").read_text().strip()
    config = proxy_kubeconfig(tmp_path / "kubeconfig", proxy.url, token)
    faulty = OperatorProcess(config, layout.logs / "operator-faults.log")
    offset = len(faulty.log_path.read_text(errors="replace")) if faulty.log_path.exists() else 0
    operator.stop()
    faulty.start()
    name = unique("faults")
    namespaces = [f"{name}-a", f"{name}-b"]
    try:
        tenants = [make_tenant(n[-1], n) for n in namespaces]
        kube.apply(make_factory(name, h100_nodes=3, l40s_nodes=1, tenants=tenants))
        wait_for(lambda: is_ready(kube, name), "the factory Ready despite the faults", timeout=180)
        assert len(factory_nodes(kube, name)) == 4
        for namespace in namespaces:
            for api_version, kind, child in GUARDED:
                assert kube.get(api_version, kind, child, namespace) is not None, (kind, child, namespace)
        injected = [s.fault for s in plan.seen if s.fault]
        assert sorted(set(injected)) == [409, 429], injected
        gaps = retry_gaps(plan.seen, 429)
        early = {target: gap for target, gap in gaps.items() if gap < RETRY_AFTER_SECONDS * 0.95}
        assert gaps and early == {}, early
        kube.delete(API_VERSION, "AIFactory", name)
        wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory deleted", 120)
        wait_for(lambda: factory_nodes(kube, name) == [], "its nodes gone")
        assert unexpected_errors(faulty.log_path, offset) == []
        record(
            "throttling_and_conflicts",
            writes_answered_429=injected.count(429),
            writes_answered_409=injected.count(409),
            retry_after_seconds=RETRY_AFTER_SECONDS,
            shortest_retry_after_429_seconds=round(min(gaps.values()), 2),
            retries_sooner_than_retry_after=len(early),
            unexpected_log_errors=0,
        )
    finally:
        faulty.stop()
        proxy.stop()
        operator.start()
