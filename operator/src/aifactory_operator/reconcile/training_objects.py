"""The objects an admitted TrainingJob becomes: an indexed batch Job, and a headless Service when
there is more than one worker to find (a single worker rendezvouses with itself on loopback)."""

from typing import Any

from ..api.v1alpha1.aifactory import NodePool
from ..api.v1alpha1.trainingjob import TrainingJob
from ..constants import (
    CHECKPOINT_MOUNT,
    GPU_RESOURCE,
    LABEL_ATTEMPT,
    LABEL_TRAININGJOB,
    RENDEZVOUS_PORT,
    SIMULATION_PREFIX,
)
from .ownership import construct_owner_reference, managed_labels
from .pod_placement import construct_node_selector
from .podsecurity import (
    SCRATCH,
    SCRATCH_MOUNT,
    node_share,
    restricted_container_security,
    restricted_pod_security,
)

Obj = dict[str, Any]
# Pods on a node that stops answering are evicted after this long (the default is 300 s), so a
# lost node turns into a gang restart quickly.
UNREACHABLE_TOLERATION_SECONDS = 30


def job_name(job: TrainingJob, attempt: int) -> str:
    return f"{job.name}-{attempt}"


def needs_service(job: TrainingJob) -> bool:
    """Only a gang of several workers needs DNS names to find worker 0."""
    return job.spec.nodes > 1


def construct_service(job: TrainingJob) -> Obj:
    """Headless Service giving each worker a stable DNS name; worker 0 is the rendezvous master."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": job.name,
            "namespace": job.namespace,
            "labels": managed_labels(**{LABEL_TRAININGJOB: job.name}),
            "ownerReferences": [construct_owner_reference(job)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": {LABEL_TRAININGJOB: job.name},
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT, "protocol": "TCP"}],
        },
    }


def construct_job(
    job: TrainingJob,
    pool: NodePool,
    factory_name: str,
    nodes: list[str],
    attempt: int,
    jurisdiction: str = "",
    grace_seconds: int = 30,
) -> Obj:
    """An indexed Job, one pod per reserved node, that fails whole on the first worker failure so
    that the gang restarts together; the failure policy tells disruptions from application errors.
    Its workers get `grace_seconds` after SIGTERM (preemption, suspension) to write a checkpoint."""
    name = job_name(job, attempt)
    labels = {LABEL_TRAININGJOB: job.name, LABEL_ATTEMPT: str(attempt)}
    annotations = {
        k: v for k, v in (job.metadata.get("annotations") or {}).items() if k.startswith(SIMULATION_PREFIX)
    }
    annotations[LABEL_ATTEMPT] = str(attempt)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": job.namespace,
            "labels": managed_labels(**labels),
            "ownerReferences": [construct_owner_reference(job)],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": job.spec.nodes,
            "parallelism": job.spec.nodes,
            "backoffLimit": 0,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                    {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [0]}},
                ]
            },
            "template": {
                "metadata": {"labels": managed_labels(**labels), "annotations": annotations},
                "spec": {
                    **construct_pod_spec(job, pool, factory_name, nodes, attempt, name, jurisdiction),
                    "terminationGracePeriodSeconds": grace_seconds,
                },
            },
        },
    }


def construct_pod_spec(
    job: TrainingJob,
    pool: NodePool,
    factory_name: str,
    nodes: list[str],
    attempt: int,
    name: str,
    jurisdiction: str = "",
) -> Obj:
    mounts, volumes = _volumes(job)
    return {
        "restartPolicy": "Never",
        **({"subdomain": job.name} if needs_service(job) else {}),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "nodeSelector": construct_node_selector(factory_name, pool, jurisdiction),
        "affinity": construct_gang_affinity(job.name, nodes, attempt),
        "tolerations": construct_tolerations(pool),
        "containers": [
            {
                "name": "trainer",
                "image": job.spec.image,
                **({"command": job.spec.command} if job.spec.command else {}),
                **({"args": job.spec.args} if job.spec.args else {}),
                "env": construct_env(job, attempt, name),
                "ports": [{"name": "rendezvous", "containerPort": RENDEZVOUS_PORT, "protocol": "TCP"}],
                "resources": node_share(pool, job.spec.gpus_per_node, GPU_RESOURCE),
                "securityContext": restricted_container_security(),
                "volumeMounts": [*mounts, SCRATCH_MOUNT],
            }
        ],
        "volumes": [*volumes, SCRATCH],
    }


def construct_gang_affinity(job_name: str, nodes: list[str], attempt: int) -> Obj:
    """Pins the attempt's workers to the nodes its admission decided (the Job's record of them) and
    spreads them one per node, so the per-node reservation made at admission holds exactly."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                # Terms are ORed; a node-name field selector takes one value per term.
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                    for node in sorted(nodes)
                ]
            }
        },
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchLabels": {LABEL_TRAININGJOB: job_name, LABEL_ATTEMPT: str(attempt)}
                    },
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        },
    }


def construct_tolerations(pool: NodePool) -> list[Obj]:
    """The pool's taints, and a bounded wait on a node that stops answering before the pod is evicted."""
    return [
        *({"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in pool.taints),
        *(
            {
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": UNREACHABLE_TOLERATION_SECONDS,
            }
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
        ),
    ]


def construct_env(job: TrainingJob, attempt: int, name: str) -> list[Obj]:
    """torchrun's rendezvous: master = worker 0 through the headless Service (itself, on loopback,
    when alone); rank = completion index."""
    spec = job.spec
    master = f"{name}-0.{job.name}.{job.namespace}.svc" if needs_service(job) else "127.0.0.1"
    env: list[Obj] = [
        {"name": "MASTER_ADDR", "value": master},
        {"name": "MASTER_PORT", "value": str(RENDEZVOUS_PORT)},
        {"name": "NNODES", "value": str(spec.nodes)},
        {"name": "NPROC_PER_NODE", "value": str(spec.gpus_per_node)},
        {"name": "WORLD_SIZE", "value": str(spec.nodes * spec.gpus_per_node)},
        {
            "name": "NODE_RANK",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        },
        {"name": "TRAINING_ATTEMPT", "value": str(attempt)},
    ]
    if spec.checkpoint:
        directory = CHECKPOINT_MOUNT + (spec.checkpoint.path or "")
        env.append({"name": "CHECKPOINT_DIR", "value": directory})
        if attempt > 0:
            env.append({"name": "RESUME_FROM", "value": f"{directory}/latest"})
    return env


def _volumes(job: TrainingJob) -> tuple[list[Obj], list[Obj]]:
    mounts: list[Obj] = []
    volumes: list[Obj] = []
    for mount in job.spec.datasets:
        volume = f"data-{mount.name}"
        mounts.append({"name": volume, "mountPath": mount.mount_path, "readOnly": True})
        volumes.append(
            {
                "name": volume,
                "persistentVolumeClaim": {"claimName": f"dataset-{mount.name}", "readOnly": True},
            }
        )
    if job.spec.checkpoint:
        mounts.append({"name": "checkpoint", "mountPath": CHECKPOINT_MOUNT})
        volumes.append(
            {
                "name": "checkpoint",
                "persistentVolumeClaim": {"claimName": f"dataset-{job.spec.checkpoint.dataset}"},
            }
        )
    return mounts, volumes
