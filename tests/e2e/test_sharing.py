"""Sharing a factory (docs/sharing.md) on the real control plane: a tenant borrows the idle quota
another lends, up to the lender's lendingLimit and no further; the lender's own jobs then wait for
capacity, not for quota; borrowed GPUs show in the operator's metrics."""

import pytest
import yaml
from factories import make_factory, make_tenant
from test_metrics import scrape, value
from test_training import POOL, STORAGE, delete_all, make_training, training, wait_phase

from aifactory_operator.constants import API_VERSION
from conftest import REPO, create_refusal, unique, wait_for

H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def shared_factory(kube, kubectl, operator):
    """4 H100 nodes of 8 GPUs; research: 16 GPUs, may borrow 16; citizen: 16 GPUs, lends 8."""
    name, research, citizen = unique("shared"), unique("sr"), unique("sc")
    tenants = [
        make_tenant("research", research, gpuQuota=[{"product": H100, "gpus": 16, "borrowingLimit": 16}]),
        make_tenant("citizen", citizen, gpuQuota=[{"product": H100, "gpus": 16, "lendingLimit": 8}]),
    ]
    kube.apply(make_factory(name, pools=[POOL], tenants=tenants, storage=STORAGE))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=90s")
    yield name, research, citizen
    for ns in (research, citizen):
        delete_all(kube, ns)
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    for ns in (research, citizen):
        kube.delete("v1", "Namespace", ns)
    for volume in kube.list("v1", "PersistentVolume", label_selector=f"aifactory.dev/factory={name}"):
        kube.delete("v1", "PersistentVolume", volume["metadata"]["name"])


def borrowed(factory: str, tenant: str) -> float:
    samples = scrape()
    return (
        value(samples, "aifactory_tenant_gpus_borrowed", factory=factory, tenant=tenant, product=H100) or 0.0
    )


def test_a_tenant_borrows_idle_quota_up_to_the_lenders_limit_and_the_lender_waits_for_capacity(
    kube, shared_factory
):
    factory, research, citizen = shared_factory
    for i in range(4):
        kube.apply(make_training(f"r{i}", research, nodes=1, duration="40s"))
    try:
        for i in range(3):
            wait_phase(kube, research, f"r{i}", "Running")
        # 16 of its own share and 8 borrowed: citizen lends at most 8 of its idle 16.
        wait_for(lambda: borrowed(factory, "research") == 8, "8 borrowed GPUs in the metrics", 30)
        fourth = wait_for(
            lambda: (s := training(kube, research, "r3").get("status", {})).get("reason") and s,
            "r3's reason",
            30,
        )
        assert fourth["phase"] == "Queued"
        assert fourth["reason"] == (
            f"waiting for quota: tenant 'research' has 0 {H100} GPUs left, may borrow 0 more from other"
            " tenants' idle quota, and the job needs 8"
        )
        # The lender's share is its own: its job passes quota and takes the last free node.
        kube.apply(make_training("c0", citizen, nodes=1, duration="2s"))
        wait_phase(kube, citizen, "c0", "Running")
        # A second one finds quota (8 of its 16 left) but no capacity: it says so, not "quota".
        kube.apply(make_training("c1", citizen, nodes=1, duration="2s"))
        waiting = wait_for(
            lambda: (s := training(kube, citizen, "c1").get("status", {})).get("reason") and s,
            "c1's reason",
            30,
        )
        assert waiting["phase"] == "Queued", waiting
        assert waiting["reason"] == (
            f"waiting for 8 {H100} GPUs (1 x 8); 0 nodes of pool 'h100' have 8 GPUs free"
        ), waiting["reason"]
    finally:
        delete_all(kube, research)
        delete_all(kube, citizen)
    wait_for(lambda: borrowed(factory, "research") == 0, "no borrowed GPUs once the jobs are gone", 30)


def test_a_job_beyond_share_and_borrowing_limit_is_refused_with_the_numbers(kube, shared_factory):
    _, research, _ = shared_factory
    kube.apply(make_training("too-big", research, nodes=5, duration="2s"))
    try:
        status = wait_for(
            lambda: (
                (s := training(kube, research, "too-big").get("status", {})).get("phase") == "Refused" and s
            ),
            "too-big refused",
            30,
        )
        assert "may hold 32 (its share 16 and borrowing limit 16)" in str(status), status
    finally:
        delete_all(kube, research)


def test_a_lending_limit_above_the_share_is_refused_by_the_api_server(kube):
    tenant = make_tenant("t", unique("lend"), gpuQuota=[{"product": H100, "gpus": 8, "lendingLimit": 9}])
    refusal = create_refusal(kube, make_factory(unique("lend"), pools=[POOL], tenants=[tenant]), 422)
    assert "lendingLimit cannot exceed gpus" in refusal, refusal


def test_the_worked_example_is_accepted_and_weights_must_name_tenants(kube):
    example = yaml.safe_load((REPO / "examples" / "06-sharing.yaml").read_text())
    assert kube.dry_run_refusal(example) is None
    example["spec"]["scheduling"]["fairSharing"]["weights"]["nobody"] = 3
    refusal = kube.dry_run_refusal(example)
    assert refusal and "every key of scheduling.fairSharing.weights must name a tenant" in refusal, refusal
