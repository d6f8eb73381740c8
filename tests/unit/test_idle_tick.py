"""A factory with no TrainingJobs or ModelEndpoints does not copy its nodes and pods into every
training tick: nothing in the plan would read them, and a 10,000-node factory is built while its
loop ticks every second."""

import asyncio
import inspect
from datetime import UTC, datetime

import kopf

from aifactory_operator.handlers import indexes
from aifactory_operator.handlers.training import observe_tick
from aifactory_operator.reconcile.nodepools import PodOnNode
from aifactory_operator.reconcile.training import TrainingConfig, plan_training
from builders import make_factory, make_node, make_pool, make_tenant

H100 = "NVIDIA-H100-80GB-HBM3"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def factory():
    tenant = make_tenant("research", gpuQuota=[{"product": H100, "gpus": 32}])
    return make_factory(pools=[make_pool(nodes=4)], tenants=[tenant])


def indexes_holding(jobs: list[dict], endpoints: list[dict]) -> dict[str, dict]:
    """Plain mappings stand in for kopf's indexes: observe_tick only lists and gets them."""
    nodes = {f"de-1-h100-{i}": [make_node(f"de-1-h100-{i}")] for i in range(4)}
    return {
        "trainingjobs_by_namespace": {"research": jobs} if jobs else {},
        "modelendpoints_by_namespace": {"research": endpoints} if endpoints else {},
        "datasets_by_namespace": {},
        "batch_jobs_by_trainingjob": {},
        "nodes_by_name": nodes,
        "pods_by_node": {"de-1-h100-0": [PodOnNode("research", "p", "de-1-h100-0", gpus=8)]},
        "deployments_by_endpoint": {},
    }


def job_body(name: str) -> dict:
    return {
        "metadata": {"name": name, "namespace": "research", "uid": name, "resourceVersion": "1"},
        "spec": {"image": "registry/t:1", "pool": "h100", "nodes": 1, "gpusPerNode": 8},
    }


def test_an_idle_factory_tick_copies_no_nodes_or_pods():
    observed = observe_tick(factory(), **indexes_holding([], []))
    assert (observed.nodes, observed.pods) == ([], [])


def test_a_factory_with_a_job_sees_every_node_and_pod():
    observed = observe_tick(factory(), **indexes_holding([job_body("llm")], []))
    assert len(observed.nodes) == 4
    assert len(observed.pods) == 1


def test_without_jobs_or_endpoints_the_plan_does_not_depend_on_nodes_or_pods():
    nodes = [make_node(f"de-1-h100-{i}") for i in range(4)]
    pods = [PodOnNode("research", "p", "de-1-h100-0", gpus=8)]
    with_nodes = plan_training(factory(), [], {}, nodes, pods, {}, now=NOW, config=TrainingConfig())
    without = plan_training(factory(), [], {}, [], [], {}, now=NOW, config=TrainingConfig())
    assert with_nodes == without


def test_every_index_function_runs_on_the_event_loop_not_the_thread_pool():
    registry = kopf.get_default_registry()
    ours = [h.fn for h in registry._indexing.get_all_handlers() if h.fn.__module__ == indexes.__name__]
    assert len(ours) == 11
    assert all(inspect.iscoroutinefunction(fn) for fn in ours)
    node = asyncio.run(indexes.nodes_by_name(name="n", body=kopf.Body(make_node("n"))))
    assert node["n"]["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
