"""Node pools: simulated nodes, drain before removal, static adoption and release, pool status."""

from aifactory_operator.reconcile.aifactory import FactoryObservation, judge_pools, plan_factory
from aifactory_operator.reconcile.nodepools import (
    PodOnNode,
    adoption_patch,
    construct_kwok_node,
    desired_kwok_nodes,
    plan_nodes,
    release_patch,
    summarize_pools,
)
from builders import make_factory, make_node, make_pool


def test_a_kwok_node_carries_gpus_pool_jurisdiction_and_owner():
    factory = make_factory(pools=[make_pool(zone="de-fra-1")])
    node = construct_kwok_node(factory, factory.spec.node_pools[0], 1)
    labels = node["metadata"]["labels"]
    assert node["metadata"]["name"] == "de-1-h100-1"
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
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
    labels = [n["metadata"]["labels"] for n in desired_kwok_nodes(make_factory(pools=[pool]))]
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


def test_scaling_down_cordons_surplus_nodes_first():
    factory = make_factory(pools=[make_pool(nodes=1)])
    changes = plan_nodes(factory, [make_node("de-1-h100-0"), make_node("de-1-h100-1")], [])
    cordon = [n for n in changes.apply if n["metadata"]["name"] == "de-1-h100-1"]
    assert cordon[0]["spec"]["unschedulable"] is True
    assert changes.delete == []
    assert changes.draining == {"h100": ["de-1-h100-1"]}


def test_a_cordoned_node_with_running_pods_is_not_removed():
    factory = make_factory(pools=[make_pool(nodes=0)])
    pods = [PodOnNode("research", "trainer-0", "de-1-h100-0", gpus=8)]
    changes = plan_nodes(factory, [make_node("de-1-h100-0", cordoned=True)], pods)
    assert changes.delete == []
    assert changes.draining == {"h100": ["de-1-h100-0"]}


def test_a_cordoned_empty_node_is_removed_and_daemon_pods_do_not_hold_it():
    factory = make_factory(pools=[make_pool(nodes=0)])
    pods = [PodOnNode("kube-system", "agent", "de-1-h100-0", gpus=0, daemon=True)]
    changes = plan_nodes(factory, [make_node("de-1-h100-0", cordoned=True)], pods)
    assert changes.delete == ["de-1-h100-0"]


def test_nodes_the_factory_did_not_create_are_never_removed():
    factory = make_factory(pools=[make_pool(nodes=0)])
    changes = plan_nodes(factory, [make_node("real-gpu-node", ours=False)], [])
    assert changes.delete == [] and changes.apply == [] and changes.patch == {}


def test_a_static_pool_adopts_matching_nodes_with_labels_and_taints():
    pool = make_pool(
        "dgx", provisioner="static", nodeSelector={"hw": "dgx"}, taints=[{"key": "gpu", "value": "yes"}]
    )
    factory = make_factory(pools=[pool])
    node = make_node("dgx-1", ours=False, labels={"hw": "dgx", "topology.kubernetes.io/region": "de-fra"})
    body = plan_nodes(factory, [node], []).patch["dgx-1"]
    assert body["metadata"]["labels"]["aifactory.dev/pool"] == "dgx"
    assert body["spec"]["taints"] == [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]
    owned = body["metadata"]["annotations"]["aifactory.dev/owned-labels"].split(",")
    assert "topology.kubernetes.io/region" not in owned, "a label the node had before is not ours to remove"
    assert "aifactory.dev/pool" in owned


def test_an_adopted_node_that_has_everything_needs_no_patch():
    pool = make_pool("dgx", provisioner="static", nodeSelector={"hw": "dgx"})
    factory = make_factory(pools=[pool])
    node = make_node("dgx-1", ours=False, labels={"hw": "dgx"})
    body = adoption_patch(factory, factory.spec.node_pools[0], node)
    node["metadata"]["labels"].update(body["metadata"]["labels"])
    node["metadata"]["annotations"].update(body["metadata"]["annotations"])
    assert adoption_patch(factory, factory.spec.node_pools[0], node) is None


def test_release_removes_only_what_was_added():
    node = make_node("dgx-1", ours=False, labels={"hw": "dgx", "aifactory.dev/factory": "de-1"})
    node["metadata"]["annotations"].update(
        {
            "aifactory.dev/owned-labels": "aifactory.dev/pool,nvidia.com/gpu.product",
            "aifactory.dev/owned-taints": "gpu:NoSchedule",
        }
    )
    node["spec"]["taints"] = [
        {"key": "gpu", "effect": "NoSchedule"},
        {"key": "admin", "effect": "NoSchedule"},
    ]
    body = release_patch(node)
    assert body["metadata"]["labels"] == {
        "aifactory.dev/factory": None,
        "aifactory.dev/pool": None,
        "nvidia.com/gpu.product": None,
    }
    assert body["spec"]["taints"] == [{"key": "admin", "effect": "NoSchedule"}]


def test_a_node_no_static_pool_selects_any_more_is_released():
    factory = make_factory(pools=[])
    node = make_node("dgx-1", ours=False, labels={"aifactory.dev/factory": "de-1"})
    assert "dgx-1" in plan_nodes(factory, [node], []).patch


def test_only_ready_schedulable_nodes_count_and_pods_count_as_in_use():
    factory = make_factory(pools=[make_pool(nodes=3)])
    observed = [make_node("a"), make_node("b"), make_node("c", ready=False)]
    pods = [PodOnNode("t", "p", "a", gpus=4), PodOnNode("t", "q", "elsewhere", gpus=8)]
    [pool] = summarize_pools(factory, observed, pods)
    assert (pool.nodes_desired, pool.nodes_ready, pool.gpus_allocatable, pool.gpus_in_use) == (3, 2, 16, 4)


def test_factory_waits_and_names_the_pool_that_is_short():
    factory = make_factory(pools=[make_pool(nodes=2), make_pool("l40s", nodes=1)])
    outcome = judge_pools(summarize_pools(factory, [make_node("x"), make_node("y", pool="l40s")], []))
    assert outcome.state == "progressing"
    assert outcome.message == "pool 'h100': 1 of 2 nodes ready"


def test_factory_is_ready_when_every_pool_is_full():
    factory = make_factory(pools=[make_pool(nodes=2)])
    plan = plan_factory(
        factory, FactoryObservation(nodes=[make_node("de-1-h100-0"), make_node("de-1-h100-1")])
    )
    assert plan.outcome.state == "ready"
    assert (plan.status["gpusReady"], plan.status["gpusDesired"], plan.status["gpus"]) == (16, 16, "16/16")
    assert plan.status["observedGeneration"] == 3
    assert plan.delete == []
