"""TrainingJob: distributed GPU training, admitted all-or-nothing within tenant quota."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .common import (
    ApiModel,
    DateTime,
    Image,
    KindInfo,
    Name,
    Resource,
    ResourceStatus,
    ready_columns,
)

Arg = Annotated[str, Field(max_length=4096)]
MountPath = Annotated[str, Field(min_length=2, max_length=1024, pattern=r"^/[^:]*$")]


class DatasetMount(ApiModel):
    """A Dataset mounted read-only into every worker."""

    name: Name
    """Name of a Dataset in the job's namespace."""
    mount_path: MountPath
    """Absolute path inside the container."""


class Checkpoint(ApiModel):
    """Where the job writes checkpoints and resumes from after a restart."""

    dataset: Name
    """Name of a Dataset of purpose checkpoint in the job's namespace; mounted read-write."""
    path: Annotated[str, Field(max_length=1024, pattern=r"^(/.*)?$")] = ""
    """Sub-path inside the dataset; exported to workers as CHECKPOINT_DIR."""


class TopologyRequest(ApiModel):
    """How compactly the job's nodes must be placed."""

    mode: Literal["required", "preferred", "none"] = "preferred"
    """required: all nodes in one domain; preferred: as few domains as possible; none: anywhere."""
    level: Literal["nvlinkDomain", "rack"] = "rack"
    """The domain the mode refers to."""


class TrainingJobSpec(ApiModel):
    """The desired training run."""

    image: Image
    """Container image of the trainer, from one of the factory's allowedRegistries."""
    command: Annotated[list[Arg], Field(max_length=64)] = []
    """Entrypoint; the image's own when empty."""
    args: Annotated[list[Arg], Field(max_length=256)] = []
    """Arguments to the entrypoint."""
    nodes: Annotated[int, Field(ge=1, le=4096)] = 1
    """Worker nodes; the job is admitted only when all of them fit at once."""
    gpus_per_node: Annotated[int, Field(ge=1, le=16)] = 8
    """GPUs each worker requests (nvidia.com/gpu); also torchrun's processes per node."""
    pool: Name
    """Name of the AIFactory node pool to run on."""
    datasets: Annotated[
        list[DatasetMount],
        Field(
            max_length=16,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = []
    """Datasets mounted read-only."""
    checkpoint: Checkpoint | None = None
    """Checkpoint storage; without it a restarted job starts from scratch."""
    priority: Annotated[int, Field(ge=0, le=1000000)] = 0
    """Higher priority jobs are admitted first (and may preempt, see the factory's
    scheduling.preemption). Ignored when priorityClassName is set."""
    priority_class_name: Name | None = None
    """A PriorityClass whose value is the job's priority, as Kueue's WorkloadPriorityClass: it
    orders admission and preemption only, the pods get no PriorityClass. It must be one of the
    tenant's priorityClasses; until it exists the job is Refused."""
    preemptible: bool = True
    """false: the job is never stopped for another; it then counts against nominal quota only
    (it never runs on borrowed quota)."""
    topology: TopologyRequest = TopologyRequest()
    """Placement compactness."""
    max_restarts: Annotated[int, Field(ge=0, le=100)] = 3
    """Gang restarts after application failures before the job is Failed."""
    suspend: bool = False
    """When true, the job releases its GPUs and keeps its place in history."""


NodeName = Annotated[str, Field(max_length=253)]


class Placement(ApiModel):
    """Where an admitted job runs: the nodes reserved for its workers."""

    pool: Name
    """The pool the nodes belong to."""
    nodes: Annotated[list[NodeName], Field(max_length=4096)] = []
    """One node per worker; the Job's pods may run only on these."""
    domains: Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=4096)] = []
    """Distinct topology domains (at the requested level) the nodes span."""


class ResidentNode(ApiModel):
    """A node the run used, with where it is."""

    name: NodeName
    """Node name."""
    region: Annotated[str, Field(max_length=63)] = ""
    """Its topology.kubernetes.io/region."""
    jurisdiction: Annotated[str, Field(max_length=63)] = ""
    """Its jurisdiction label (protected from the kubelet by NodeRestriction)."""


class ResidentDataset(ApiModel):
    """A dataset the run mounted, with the rules that bind it."""

    name: Name
    """Dataset name."""
    jurisdiction: Annotated[str, Field(max_length=2)] = ""
    """Its jurisdiction."""
    digest: Annotated[str, Field(max_length=71)] = ""
    """Its content digest, if declared."""


class Residency(ApiModel):
    """Where the run actually happened and which data it read: the record an auditor checks."""

    nodes: Annotated[list[ResidentNode], Field(max_length=4096)] = []
    """Nodes the workers ran on."""
    datasets: Annotated[list[ResidentDataset], Field(max_length=17)] = []
    """Datasets and checkpoint storage mounted."""


class TrainingJobStatus(ResourceStatus):
    """Observed state of the training run."""

    phase: Literal["Queued", "Admitted", "Running", "Succeeded", "Failed", "Suspended", "Refused"] | None = (
        None
    )
    """Where the job is in its life. Refused: a rule of the factory (pool, size, quota, data
    locality, clearance) forbids it; the Stalled condition names the field and the fix, and the job
    is queued again once the rule allows it."""
    queue_position: Annotated[int, Field(ge=0)] | None = None
    """1-based position among queued jobs of the factory while Queued."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why the job does not run yet, e.g. waiting for 16 H100 GPUs in one rack."""
    restarts: Annotated[int, Field(ge=0)] = 0
    """Gang restarts after application failures (bounded by maxRestarts)."""
    disruptions: Annotated[int, Field(ge=0)] = 0
    """Gang restarts after node loss or eviction (not counted against maxRestarts)."""
    preemptions: Annotated[int, Field(ge=0)] = 0
    """Times the job was stopped for a job of higher priority or to give back borrowed quota:
    re-queued to resume from its checkpoint, not counted against maxRestarts."""
    withdrawals: Annotated[int, Field(ge=0)] = 0
    """Admissions the operator took back because a check of its own bookkeeping failed (nodes
    over-committed, workers unschedulable past the grace period): re-queued, not counted against
    maxRestarts. See docs/gang-admission.md."""
    attempt: Annotated[int, Field(ge=0)] = 0
    """Current attempt; the Job is named <job>-<attempt>."""
    retry_after: DateTime | None = None
    """A restarting job is not readmitted before this time (backoff)."""
    placement: Placement | None = None
    """The reserved nodes while admitted or running."""
    residency: Residency | None = None
    """Where the run happened, kept after it ends."""
    admitted_time: DateTime | None = None
    """When the current attempt was admitted."""
    start_time: DateTime | None = None
    """When all workers of the first attempt were running."""
    completion_time: DateTime | None = None
    """When the job succeeded or failed."""


class TrainingJob(Resource):
    """A distributed GPU training run, admitted all-or-nothing and restarted from checkpoints."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="TrainingJob",
        plural="trainingjobs",
        short_names=["tj"],
        scope="Namespaced",
        printer_columns=[
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Pool", "type": "string", "jsonPath": ".spec.pool"},
            {"name": "Nodes", "type": "integer", "jsonPath": ".spec.nodes"},
            {"name": "GPUs/Node", "type": "integer", "jsonPath": ".spec.gpusPerNode"},
            {"name": "Queue", "type": "integer", "jsonPath": ".status.queuePosition"},
            {"name": "Waiting", "type": "string", "jsonPath": ".status.reason", "priority": 1},
            {"name": "Restarts", "type": "integer", "jsonPath": ".status.restarts"},
            *ready_columns(),
        ],
    )
    spec: TrainingJobSpec
    """The desired training run."""
    status: TrainingJobStatus | None = None
    """Observed state, written by the operator."""
