"""ModelEndpoints in the shared accounting, as pure decisions."""

from datetime import UTC, datetime

from aifactory_operator.api.v1alpha1 import AIFactory, Dataset, ModelEndpoint, TrainingJob
from aifactory_operator.reconcile.nodepools import PodOnNode
from aifactory_operator.reconcile.serving import DeploymentView
from aifactory_operator.reconcile.training import TrainingConfig, plan_training
from builders import make_factory, make_factory_body, make_node, make_pool, make_tenant

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DIGEST = "sha256:" + "c" * 64
H100 = "NVIDIA-H100-80GB-HBM3"


def factory(quota: int = 16):
    tenant = make_tenant("research", gpuQuota=[{"product": "NVIDIA-H100-80GB-HBM3", "gpus": quota}])
    return make_factory(pools=[make_pool(nodes=2)], tenants=[tenant])


def model() -> dict[str, Dataset]:
    body = {
        "metadata": {"name": "weights", "namespace": "research", "uid": "m"},
        "spec": {
            "purpose": "model",
            "storage": {"name": "nfs"},
            "jurisdiction": "DE",
            "classification": "internal",
            "digest": DIGEST,
        },
    }
    return {"research/weights": Dataset.model_validate(body)}


def make_endpoint(status=None, **spec) -> ModelEndpoint:
    body = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "chat", "namespace": "research", "uid": "e", "generation": 1},
        "spec": {
            "model": "weights",
            "runtime": {"image": "r/v:1"},
            "gpusPerReplica": 4,
            "replicas": {"min": 2, "max": 4},
            "pool": "h100",
            **spec,
        },
        "status": status or {},
    }
    return ModelEndpoint.model_validate(body)


def plan(endpoints, jobs=(), deployments=None, quota=16, pods=()):
    nodes = [make_node(f"de-1-h100-{i}") for i in range(2)]
    return plan_training(
        factory(quota),
        list(jobs),
        {},
        nodes,
        list(pods),
        model(),
        now=NOW,
        config=TrainingConfig(),
        endpoints=endpoints,
        deployments=deployments or {},
    )


def test_an_endpoint_reserves_its_minimum_and_gets_its_children():
    result = plan([make_endpoint()])
    status, outcome = result.statuses["me:research/chat"]
    assert status["reservedGpus"] == 8
    assert sorted(o["kind"] for o in result.apply) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
    ]
    deployment = next(o for o in result.apply if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["metadata"]["annotations"]["aifactory.dev/model-digest"] == DIGEST
    assert outcome.state == "progressing"


def test_an_endpoint_whose_minimum_does_not_fit_now_is_reconciling_and_not_deployed():
    busy = [PodOnNode("other", "batch", "de-1-h100-0", 8)]
    result = plan([make_endpoint(replicas={"min": 2, "max": 2}, gpusPerReplica=8)], quota=64, pods=busy)
    _, outcome = result.statuses["me:research/chat"]
    # Waiting for GPUs is progress, not a spec that cannot be acted on: kstatus must not call it failed.
    assert outcome.state == "progressing" and outcome.reason == "InsufficientCapacity"
    assert outcome.message.startswith("cannot reserve replicas.min: ")
    assert result.apply == []


def test_an_endpoint_whose_minimum_exceeds_the_pool_is_refused():
    result = plan([make_endpoint(replicas={"min": 3, "max": 3}, gpusPerReplica=8)], quota=64)
    _, outcome = result.statuses["me:research/chat"]
    assert (outcome.state, outcome.reason) == ("stalled", "Refused")
    assert "spec.replicas.min: 3 replicas of 8 GPUs exceed the 2 that pool 'h100' holds" in outcome.message


def test_an_endpoint_whose_minimum_exceeds_the_quota_is_refused():
    result = plan([make_endpoint(replicas={"min": 2, "max": 2}, gpusPerReplica=8)], quota=8)
    _, outcome = result.statuses["me:research/chat"]
    assert (outcome.state, outcome.reason) == ("stalled", "Refused")
    assert (
        "the endpoint needs 16 NVIDIA-H100-80GB-HBM3 GPUs but tenant 'research' may hold 8" in outcome.message
    )


def test_serving_is_admitted_before_queued_training_and_training_waits():
    job = TrainingJob.model_validate(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {
                "name": "tune",
                "namespace": "research",
                "uid": "t",
                "creationTimestamp": "2025-01-01T00:00:00Z",
            },
            "spec": {"image": "r/t:1", "pool": "h100", "nodes": 2, "gpusPerNode": 8},
        }
    )
    result = plan([make_endpoint(replicas={"min": 1, "max": 1})], jobs=[job], quota=64)
    assert result.statuses["me:research/chat"][0]["reservedGpus"] == 4
    assert result.statuses["research/tune"][0]["phase"] == "Queued"


def test_the_autoscaler_ceiling_follows_free_capacity():
    admitted = {"reservedGpus": 8, "maxReplicasAllowed": 4}
    view = DeploymentView(
        replicas=2, ready=2, available=2, updated=2, generation=1, observed_generation=1, version=DIGEST
    )
    result = plan([make_endpoint(status=admitted)], deployments={"research/chat": view}, quota=64)
    status, outcome = result.statuses["me:research/chat"]
    assert status["maxReplicasAllowed"] == 4 and outcome.state == "ready"
    assert status["servedDigest"] == DIGEST and status.get("rollingOutDigest") is None


def test_scaling_beyond_quota_is_held_back_with_a_reason():
    admitted = {"reservedGpus": 8}
    view = DeploymentView(
        replicas=2, ready=2, available=2, updated=2, generation=1, observed_generation=1, version=DIGEST
    )
    status, _ = plan([make_endpoint(status=admitted)], deployments={"research/chat": view}, quota=8).statuses[
        "me:research/chat"
    ]
    assert status["maxReplicasAllowed"] == 2
    assert status["reason"] == "scaling held back at 2 of 4 replicas by free GPUs or quota"


def test_a_model_of_another_jurisdiction_is_refused():
    datasets = model()
    datasets["research/weights"].spec.jurisdiction = "FR"
    nodes = [make_node("de-1-h100-0")]
    result = plan_training(
        factory(), [], {}, nodes, [], datasets, now=NOW, config=TrainingConfig(), endpoints=[make_endpoint()]
    )
    _, outcome = result.statuses["me:research/chat"]
    assert outcome.state == "stalled" and "spec.model: the data belongs to jurisdiction FR" in outcome.message


def sharing_factory(reclaim: str):
    """research: 8 GPUs of its own, may borrow 8; citizen: 8, lends them."""
    body = make_factory_body(
        pools=[make_pool(nodes=2)],
        tenants=[
            make_tenant("research", gpuQuota=[{"product": H100, "gpus": 8, "borrowingLimit": 8}]),
            make_tenant("citizen", gpuQuota=[{"product": H100, "gpus": 8}]),
        ],
    )
    body["spec"]["scheduling"] = {"preemption": {"reclaim": reclaim}}
    return AIFactory.model_validate(body)


def sharing_plan(reclaim: str, replicas: int, jobs=(), minimum: int = 1):
    view = DeploymentView(
        replicas=replicas, ready=replicas, available=replicas, updated=replicas,
        generation=1, observed_generation=1, version=DIGEST,
    )  # fmt: skip
    endpoint = make_endpoint(status={"reservedGpus": 4 * replicas}, replicas={"min": minimum, "max": 4})
    pods = [
        PodOnNode("research", f"chat-{i}", f"de-1-h100-{i // 2}", 4, endpoint="research/chat")
        for i in range(replicas)
    ]
    return plan_training(
        sharing_factory(reclaim), list(jobs), {}, [make_node(f"de-1-h100-{i}") for i in range(2)], pods, model(),
        now=NOW, config=TrainingConfig(), endpoints=[endpoint], deployments={"research/chat": view},
    )  # fmt: skip


def test_an_endpoint_grows_on_borrowed_quota_only_where_the_factory_may_reclaim_it():
    assert sharing_plan("Any", 2).statuses["me:research/chat"][0]["maxReplicasAllowed"] == 4
    assert sharing_plan("Never", 2).statuses["me:research/chat"][0]["maxReplicasAllowed"] == 2


def test_a_lender_gets_its_share_back_from_endpoint_growth_first_never_below_min():
    citizen_job = TrainingJob.model_validate(
        {
            "metadata": {"name": "mine", "namespace": "citizen", "uid": "c", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"image": "r/t:1", "pool": "h100", "nodes": 1, "gpusPerNode": 8},
        }
    )  # fmt: skip
    result = sharing_plan("Any", 4, [citizen_job])  # 16 GPUs held: 8 of them citizen's
    status, _ = result.statuses["me:research/chat"]
    deployment = next(o for o in result.apply if o["kind"] == "Deployment")
    assert (status["maxReplicasAllowed"], deployment["spec"]["replicas"]) == (2, 2), "8 GPUs given back"
    assert result.preemptions == [], "no gang is stopped while endpoints give back"
    # However much is wanted, an endpoint keeps replicas.min (which must fit its tenant's share).
    result = sharing_plan("Any", 4, [citizen_job], minimum=2)
    assert next(o for o in result.apply if o["kind"] == "Deployment")["spec"]["replicas"] == 2
