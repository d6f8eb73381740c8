"""Kueue's equivalent of an AIFactory (bench/kueue_config.py): the peer is given the factory's own
rules, read from the same spec, and its flavors select exactly the nodes our pools make."""

import sys
from pathlib import Path

import yaml

from aifactory_operator.api.v1alpha1 import AIFactory, TrainingJob
from aifactory_operator.reconcile.nodepools import construct_kwok_node
from aifactory_operator.reconcile.training_objects import construct_job

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from kueue_config import (
    PREFERRED,
    QUEUE_LABEL,
    REQUIRED,
    kueue_job,
    kueue_objects,
)

REPO = Path(__file__).resolve().parents[2]


def sharing_example() -> AIFactory:
    body = next(
        d
        for d in yaml.safe_load_all((REPO / "examples/06-sharing.yaml").read_text())
        if d["kind"] == "AIFactory"
    )
    body["metadata"]["uid"] = "factory-uid"  # as the API server would give it
    return AIFactory.model_validate(body)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def test_each_flavor_selects_exactly_its_pools_nodes_on_a_topology_of_their_labels():
    factory = sharing_example()
    objects = kueue_objects(factory)
    [topology] = by_kind(objects, "Topology")
    levels = [level["nodeLabel"] for level in topology["spec"]["levels"]]
    for pool in factory.spec.node_pools:
        [flavor] = [
            f for f in by_kind(objects, "ResourceFlavor") if f["metadata"]["name"].endswith(pool.name)
        ]
        node = construct_kwok_node(factory, pool, 0)
        labels = node["metadata"]["labels"]
        assert flavor["spec"]["nodeLabels"].items() <= labels.items()
        assert all(level in labels for level in levels), "every topology level is a label the node carries"
        assert flavor["spec"]["topologyName"] == topology["metadata"]["name"]


def test_every_tenant_gets_its_quota_limits_and_preemption_in_one_cohort():
    factory = sharing_example()
    queues = {q["metadata"]["name"]: q["spec"] for q in by_kind(kueue_objects(factory), "ClusterQueue")}
    research, citizen = queues["shared-de-research"], queues["shared-de-citizen-services"]
    assert research["cohortName"] == citizen["cohortName"] == "shared-de"
    gpu = {r["name"]: r for r in research["resourceGroups"][0]["flavors"][0]["resources"]}["nvidia.com/gpu"]
    assert (gpu["nominalQuota"], gpu["borrowingLimit"]) == ("16", "16") and "lendingLimit" not in gpu
    gpu = {r["name"]: r for r in citizen["resourceGroups"][0]["flavors"][0]["resources"]}["nvidia.com/gpu"]
    assert (gpu["nominalQuota"], gpu["borrowingLimit"], gpu["lendingLimit"]) == ("16", "0", "8")
    assert research["preemption"] == {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Any"}
    assert research["fairSharing"] == {"weight": "2"} and citizen["fairSharing"] == {"weight": "1"}
    namespaces = research["namespaceSelector"]["matchExpressions"][0]["values"]
    assert namespaces == ["shared-research"]


def test_a_local_queue_in_every_tenant_namespace_and_a_class_per_priority():
    objects = kueue_objects(sharing_example(), priorities=[10, 1000, 10])
    assert sorted(q["metadata"]["namespace"] for q in by_kind(objects, "LocalQueue")) == [
        "shared-citizen",
        "shared-research",
    ]
    assert [c["value"] for c in by_kind(objects, "WorkloadPriorityClass")] == [10, 1000]


def test_the_gang_job_is_ours_with_the_nodes_left_to_kueue():
    factory = sharing_example()
    pool = factory.spec.node_pools[0]
    job = TrainingJob.model_validate(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "llm", "namespace": "shared-research", "uid": "u"},
            "spec": {"image": "registry.factory.internal/t:1", "pool": "h100", "nodes": 2},
        }
    )
    ours = construct_job(job, pool, factory.name, ["n0", "n1"], 0, "DE")
    theirs = kueue_job(ours, 10, "required", "rack")
    assert theirs["spec"]["suspend"] is True and theirs["metadata"]["labels"][QUEUE_LABEL] == "aifactory"
    pod = theirs["spec"]["template"]["spec"]
    assert "affinity" not in pod, "the nodes are Kueue's to choose, by its topology-aware placement"
    assert pod["nodeSelector"] == ours["spec"]["template"]["spec"]["nodeSelector"], "the same pool"
    assert pod["containers"] == ours["spec"]["template"]["spec"]["containers"], "the same requests"
    assert theirs["spec"]["template"]["metadata"]["annotations"][REQUIRED] == "aifactory.dev/rack"
    preferred = kueue_job(ours, 10, "preferred", "nvlinkDomain")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert preferred[PREFERRED] == "aifactory.dev/nvlink-domain" and REQUIRED not in preferred
    assert "nodeAffinity" in ours["spec"]["template"]["spec"]["affinity"], "our Job is left as it was"
