"""Kueue's equivalent of an AIFactory (issue 23), generated from the same spec the operator reads,
so the peer benchmark gives Kueue the rules our operator enforces, no more and no fewer (pure).

- a Topology with the levels our KWOK nodes carry: rack, NVLink domain, host;
- a ResourceFlavor per node pool: the pool's node labels (and taints), on that Topology;
- a ClusterQueue per tenant in one cohort (the factory): nominal GPU quota per flavor = the
  tenant's gpuQuota for the pool's product, with its borrowingLimit and lendingLimit; CPU and memory
  covered at the pool's whole size, since our operator bounds tenants by GPUs only; preemption as
  the factory's scheduling.preemption (withinClusterQueue <- withinTenant, reclaimWithinCohort <-
  reclaim), fair-sharing weights as ours;
- a LocalQueue in every tenant namespace, and a WorkloadPriorityClass per priority in use.

Gang Jobs are the indexed Jobs our TrainingJobs render, with the nodes Kueue must choose left open
(and no inter-pod anti-affinity, which Kueue's placement does not model; see kueue_job):
created suspended with the queue-name label (Kueue admits and unsuspends them), and the topology
requirement as Kueue's pod-template annotations.
"""

import copy
from collections.abc import Iterable
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.constants import LABEL_FACTORY, LABEL_NVLINK_DOMAIN, LABEL_POOL, LABEL_RACK

Obj = dict[str, Any]
API = "kueue.x-k8s.io/v1beta2"
GPU = "nvidia.com/gpu"
HOSTNAME = "kubernetes.io/hostname"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
REQUIRED = "kueue.x-k8s.io/podset-required-topology"
PREFERRED = "kueue.x-k8s.io/podset-preferred-topology"
LOCAL_QUEUE = "aifactory"
LEVEL_LABELS = {"rack": LABEL_RACK, "nvlinkDomain": LABEL_NVLINK_DOMAIN}


def with_namespaces(factory: AIFactory, rename: dict[str, str]) -> AIFactory:
    """The factory with its tenants' namespaces renamed (old -> new), dropping the ones not in
    `rename`: the same rules for the namespaces a runner of its own works in."""
    tenants = [
        t.model_copy(update={"namespaces": [rename[n] for n in t.namespaces if n in rename]})
        for t in factory.spec.tenants
    ]
    return factory.model_copy(update={"spec": factory.spec.model_copy(update={"tenants": tenants})})


def topology_name(factory: AIFactory) -> str:
    return f"{factory.name}-topology"


def queue_name(factory: AIFactory, tenant: str) -> str:
    return f"{factory.name}-{tenant}"


def flavor_name(factory: AIFactory, pool: str) -> str:
    return f"{factory.name}-{pool}"


def kueue_objects(factory: AIFactory, priorities: Iterable[int] = ()) -> list[Obj]:
    """Every Kueue object the factory's rules become, cluster-scoped first."""
    products = [p.gpu_product for p in factory.spec.node_pools]
    if len(products) != len(set(products)):
        raise ValueError("one pool per GPU product: a tenant's quota is per product, Kueue's per flavor")
    objects: list[Obj] = [
        {
            "apiVersion": API,
            "kind": "Topology",
            "metadata": {"name": topology_name(factory)},
            "spec": {
                "levels": [
                    {"nodeLabel": LABEL_RACK},
                    {"nodeLabel": LABEL_NVLINK_DOMAIN},
                    {"nodeLabel": HOSTNAME},
                ]
            },
        }
    ]
    for pool in factory.spec.node_pools:
        spec: Obj = {
            "nodeLabels": {LABEL_FACTORY: factory.name, LABEL_POOL: pool.name},
            "topologyName": topology_name(factory),
        }
        if pool.taints:
            spec["nodeTaints"] = [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints]
        objects.append(
            {
                "apiVersion": API,
                "kind": "ResourceFlavor",
                "metadata": {"name": flavor_name(factory, pool.name)},
                "spec": spec,
            }
        )
    objects += [cluster_queue(factory, tenant.name) for tenant in factory.spec.tenants]
    objects += [
        {
            "apiVersion": API,
            "kind": "WorkloadPriorityClass",
            "metadata": {"name": priority_class(value)},
            "value": value,
            "description": "a TrainingJob priority of the peer benchmark",
        }
        for value in sorted(set(priorities))
    ]
    objects += [
        {
            "apiVersion": API,
            "kind": "LocalQueue",
            "metadata": {"name": LOCAL_QUEUE, "namespace": namespace},
            "spec": {"clusterQueue": queue_name(factory, tenant.name)},
        }
        for tenant in factory.spec.tenants
        for namespace in tenant.namespaces
    ]
    return objects


def cluster_queue(factory: AIFactory, tenant_name: str) -> Obj:
    tenant = next(t for t in factory.spec.tenants if t.name == tenant_name)
    quotas = {q.product: q for q in tenant.gpu_quota}
    flavors = []
    for pool in factory.spec.node_pools:
        quota = quotas.get(pool.gpu_product)
        # Kueue: no borrowingLimit means unlimited, no lendingLimit lends all, as our default does.
        gpu: Obj = {
            "name": GPU,
            "nominalQuota": str(quota.gpus if quota else 0),
            "borrowingLimit": str(quota.borrowing_limit if quota else 0),
        }
        if quota and quota.lending_limit is not None:
            gpu["lendingLimit"] = str(quota.lending_limit)
        flavors.append(
            {
                "name": flavor_name(factory, pool.name),
                "resources": [
                    {
                        "name": "cpu",
                        "nominalQuota": str(pool.cpus_per_node * pool.nodes),
                        "borrowingLimit": "0",
                    },
                    {
                        "name": "memory",
                        "nominalQuota": str(int(parse_quantity(pool.memory_per_node)) * pool.nodes),
                        "borrowingLimit": "0",
                    },
                    gpu,
                ],
            }
        )
    scheduling = factory.spec.scheduling
    within = scheduling.preemption.within_tenant if scheduling else "Never"
    reclaim = scheduling.preemption.reclaim if scheduling else "Never"
    spec: Obj = {
        "cohortName": factory.name,
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(tenant.namespaces)}
            ]
        },
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [{"coveredResources": ["cpu", "memory", GPU], "flavors": flavors}],
        "preemption": {"withinClusterQueue": within, "reclaimWithinCohort": reclaim},
    }
    if scheduling and scheduling.fair_sharing and tenant.name in scheduling.fair_sharing.weights:
        spec["fairSharing"] = {"weight": str(scheduling.fair_sharing.weights[tenant.name])}
    return {
        "apiVersion": API,
        "kind": "ClusterQueue",
        "metadata": {"name": queue_name(factory, tenant.name)},
        "spec": spec,
    }


def priority_class(value: int) -> str:
    return f"aifactory-priority-{value}"


def kueue_job(job: Obj, priority: int, mode: str = "none", level: str = "rack") -> Obj:
    """The gang Job our operator would create, for Kueue to place: the same pods and requests, the
    nodes our admission would pin left open (Kueue's topology-aware scheduling chooses them),
    created suspended in the tenant's LocalQueue with its priority and topology requirement."""
    obj = copy.deepcopy(job)
    meta, spec = obj["metadata"], obj["spec"]
    meta.setdefault("labels", {}).update({QUEUE_LABEL: LOCAL_QUEUE, PRIORITY_LABEL: priority_class(priority)})
    spec["suspend"] = True
    template = spec["template"]
    # The nodes our admission decided are Kueue's to decide here. Our one-worker-per-node
    # anti-affinity goes too: Kueue's topology-aware placement does not model inter-pod
    # anti-affinity and packs a gang's pods by topology, so with it a gang of two 1-GPU workers
    # was placed on one node and its second pod stayed Pending (seen on the control plane).
    template["spec"].pop("affinity", None)
    if mode in ("required", "preferred"):
        annotation = REQUIRED if mode == "required" else PREFERRED
        template["metadata"].setdefault("annotations", {})[annotation] = LEVEL_LABELS[level]
    return obj
