"""The end-to-end benchmarks' workload (pure): a seeded mix of gang jobs, written once as
TrainingJobs for the operator and once as plain batch/v1 Jobs that kube-scheduler places alone."""

import random
from dataclasses import dataclass
from typing import Any

from aifactory_operator.api.v1alpha1 import TrainingJob
from aifactory_operator.api.v1alpha1.aifactory import NodePool
from aifactory_operator.constants import API_VERSION
from aifactory_operator.reconcile.training_objects import construct_job

IMAGE = "registry.factory.internal/trainer:1"
DURATION_ANNOTATION = "sim.aifactory.dev/duration"
# construct_job needs an owner uid; the plain Jobs drop the owner reference it makes from it.
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Gang:
    """One job: `nodes` workers of `gpus_per_node` GPUs that KWOK runs for `seconds`."""

    name: str
    nodes: int
    gpus_per_node: int
    seconds: int
    mode: str = "none"
    level: str = "rack"


def make_admission_mix(count: int, seed: int = 1) -> list[Gang]:
    """Mostly small jobs (1, 1, 2 or 4 nodes of 4 or 8 GPUs) that run 5 to 15 s, anywhere."""
    rng = random.Random(seed)
    return [
        Gang(f"job-{i}", rng.choice([1, 1, 2, 4]), rng.choice([4, 8]), rng.randint(5, 15))
        for i in range(count)
    ]


def make_topology_mix(
    count: int, seconds: int, *, domain_nodes: int, rack_nodes: int, seed: int = 2
) -> list[Gang]:
    """A third each of required, preferred and no topology, at NVLink-domain or rack level; a job
    never asks for more nodes than one domain of its level holds, so every job can run."""
    rng = random.Random(seed)
    gangs = []
    for i in range(count):
        mode = rng.choice(["required", "preferred", "none"])
        level = rng.choice(["nvlinkDomain", "rack"])
        limit = domain_nodes if level == "nvlinkDomain" else rack_nodes
        nodes = rng.choice([n for n in (1, 2, 2, 4, 4, 8) if n <= limit])
        gangs.append(Gang(f"job-{i}", nodes, rng.choice([4, 8, 8]), seconds, mode, level))
    return gangs


def construct_trainingjob(gang: Gang, namespace: str, pool: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": gang.name,
            "namespace": namespace,
            "annotations": {DURATION_ANNOTATION: f"{gang.seconds}s"},
        },
        "spec": {
            "image": IMAGE,
            "nodes": gang.nodes,
            "gpusPerNode": gang.gpus_per_node,
            "pool": pool,
            "topology": {"mode": gang.mode, "level": gang.level},
        },
    }


def construct_plain_job(gang: Gang, namespace: str, pool: NodePool, factory: str) -> dict[str, Any]:
    """The Job the operator would create for the gang (same pods, pool selector and tolerations)
    without an owner and without the node pinning admission adds, so kube-scheduler alone places it."""
    body = construct_trainingjob(gang, namespace, pool.name)
    body["metadata"]["uid"] = PLACEHOLDER_UID
    job = construct_job(TrainingJob.model_validate(body), pool, factory, [], 0)
    job["metadata"].pop("ownerReferences")
    job["spec"]["template"]["spec"]["affinity"].pop("nodeAffinity")
    return job
