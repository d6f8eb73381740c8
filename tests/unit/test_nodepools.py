"""Simulated GPU nodes for kwok pools, and the pool summary the factory reports."""

from aifactory_operator.reconcile.aifactory import judge_pools, plan_factory
from aifactory_operator.reconcile.nodepools import (
    construct_kwok_node,
    desired_kwok_nodes,
    summarize_pools,
    surplus_kwok_nodes,
)
from builders import make_factory, make_node, make_pool


def test_a_kwok_node_carries_gpus_pool_jurisdiction_and_owner():
    factory = make_factory(pools=[make_pool(zone="de-fra-1")])
    node = construct_kwok_node(factory, factory.spec.node_pools[0], 1)
    labels = node["metadata"]["labels"]
    assert node["metadata"]["name"] == "de-1-h100-1"
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "8"
    assert labels["aifactory.dev/pool"] == "h100"
    assert labels["node-restriction.kubernetes.io/aifactory.dev-jurisdiction"] == "DE"
    assert labels["topology.kubernetes.io/region"] == "de-fra"
    assert labels["topology.kubernetes.io/zone"] == "de-fra-1"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    owner = node["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "AIFactory",
        "de-1",
        "0000-uid",
        True,
    )


def test_nodes_fill_nvlink_domains_then_racks():
    pool = make_pool(nodes=8, topology={"nodesPerNvlinkDomain": 2, "nvlinkDomainsPerRack": 2})
    factory = make_factory(pools=[pool])
    labels = [n["metadata"]["labels"] for n in desired_kwok_nodes(factory)]
    assert [lab["aifactory.dev/nvlink-domain"] for lab in labels] == [
        "h100-nvl0", "h100-nvl0", "h100-nvl1", "h100-nvl1", "h100-nvl2", "h100-nvl2", "h100-nvl3", "h100-nvl3",
    ]  # fmt: skip
    assert [lab["aifactory.dev/rack"] for lab in labels] == ["h100-rack0"] * 4 + ["h100-rack1"] * 4


def test_pool_taints_are_put_on_its_nodes():
    factory = make_factory(pools=[make_pool(taints=[{"key": "nvidia.com/gpu", "value": "present"}])])
    node = desired_kwok_nodes(factory)[0]
    assert node["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_static_pools_get_no_simulated_nodes():
    factory = make_factory(pools=[make_pool(provisioner="static", nodeSelector={"rack": "a"})])
    assert desired_kwok_nodes(factory) == []


def test_scaling_down_marks_the_highest_indices_surplus():
    factory = make_factory(pools=[make_pool(nodes=1)])
    observed = [make_node("de-1-h100-0"), make_node("de-1-h100-1"), make_node("de-1-h100-2")]
    assert surplus_kwok_nodes(factory, observed) == ["de-1-h100-1", "de-1-h100-2"]


def test_nodes_we_did_not_simulate_are_never_surplus():
    factory = make_factory(pools=[make_pool(nodes=0)])
    assert surplus_kwok_nodes(factory, [make_node("real-gpu-node", kwok=False)]) == []


def test_a_removed_pool_leaves_all_its_nodes_surplus():
    factory = make_factory(pools=[])
    assert surplus_kwok_nodes(factory, [make_node("de-1-h100-0")]) == ["de-1-h100-0"]


def test_only_ready_nodes_count_towards_allocatable_gpus():
    factory = make_factory(pools=[make_pool(nodes=3)])
    observed = [make_node("a"), make_node("b"), make_node("c", ready=False)]
    [pool] = summarize_pools(factory, observed)
    assert (pool.nodes_desired, pool.nodes_ready, pool.gpus_allocatable) == (3, 2, 16)


def test_cordoned_nodes_are_not_ready_for_new_work():
    factory = make_factory(pools=[make_pool(nodes=1)])
    node = make_node("a")
    node["spec"]["unschedulable"] = True
    assert summarize_pools(factory, [node])[0].nodes_ready == 0


def test_factory_waits_and_names_the_pool_that_is_short():
    factory = make_factory(pools=[make_pool(nodes=2), make_pool("l40s", nodes=1)])
    outcome = judge_pools(summarize_pools(factory, [make_node("x"), make_node("y", pool="l40s")]))
    assert outcome.state == "progressing"
    assert outcome.message == "pool 'h100': 1 of 2 nodes ready"


def test_factory_is_ready_when_every_pool_is_full():
    factory = make_factory(pools=[make_pool(nodes=2)])
    plan = plan_factory(factory, [make_node("de-1-h100-0"), make_node("de-1-h100-1")])
    assert plan.outcome.state == "ready"
    assert plan.status["gpusReady"] == 16
    assert plan.status["gpusDesired"] == 16
    assert plan.status["observedGeneration"] == 3
    assert plan.delete_nodes == []
    assert [n["metadata"]["name"] for n in plan.apply] == ["de-1-h100-0", "de-1-h100-1"]


def test_planning_twice_gives_the_same_plan():
    factory = make_factory(pools=[make_pool(nodes=2)])
    observed = [make_node("de-1-h100-0")]
    assert plan_factory(factory, observed) == plan_factory(factory, observed)
