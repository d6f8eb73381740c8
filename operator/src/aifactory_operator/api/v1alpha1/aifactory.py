"""AIFactory: one sovereign GPU cluster as one cluster-scoped object."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .common import (
    ApiModel,
    Jurisdiction,
    KindInfo,
    LabelKey,
    LabelValue,
    Name,
    Quantity,
    Resource,
    ResourceStatus,
    ShortText,
    Taint,
    ready_columns,
)

Level = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
Hostname = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$",
    ),
]
Cidr = Annotated[
    str,
    Field(
        max_length=43,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "isCIDR(self)", "message": "must be a CIDR such as 10.20.0.0/16"}
            ]
        },
    ),
]


def _list_map(key: str, max_items: int) -> dict[str, object]:
    """A list whose items are unique by `key`, merged per item by server-side apply."""
    return {
        "max_length": max_items,
        "json_schema_extra": {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]},
    }


class Sovereignty(ApiModel):
    """The sovereignty profile: where data may live and what may cross the factory's boundary."""

    jurisdiction: Jurisdiction
    """ISO 3166-1 alpha-2 code of the legal jurisdiction the factory serves, e.g. DE. Immutable."""
    regions: Annotated[list[LabelValue], Field(min_length=1, max_length=32)]
    """Values of topology.kubernetes.io/region that lie inside the jurisdiction."""
    air_gapped: bool = True
    """When true, tenant namespaces reach nothing outside the factory but allowedEgress."""
    allowed_registries: Annotated[list[Hostname], Field(max_length=32)] = []
    """Registry hosts (with optional port) images may come from, matched by host, not prefix."""
    require_image_digests: bool = False
    """When true, every image must be pinned by sha256 digest."""
    allowed_egress: Annotated[list[Cidr], Field(max_length=64)] = []
    """CIDRs tenant pods may reach in an air-gapped factory, e.g. the in-factory object store."""
    classification_levels: Annotated[list[Level], Field(min_length=1, max_length=16)] = [
        "public",
        "internal",
        "confidential",
        "secret",
    ]
    """Classification levels, lowest first; clearances and data classifications name one of them."""


class PoolTopology(ApiModel):
    """How a pool's nodes group into NVLink domains and racks, for topology-aware placement."""

    nodes_per_nvlink_domain: Annotated[int, Field(ge=1, le=72)] = 1
    """Nodes that share one NVLink domain (e.g. 18 for a GB200 NVL72 rack); 1 means none shared."""
    nvlink_domains_per_rack: Annotated[int, Field(ge=1, le=64)] = 1
    """NVLink domains in one rack."""


class NodePool(ApiModel):
    """A group of identical GPU nodes, provisioned or adopted by the operator."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.provisioner != 'static' || has(self.nodeSelector)",
                    "message": "a static pool needs nodeSelector to choose the nodes it adopts",
                    "fieldPath": ".nodeSelector",
                }
            ]
        }
    }

    name: Name
    """Pool name, unique in the factory; becomes the aifactory.dev/pool node label."""
    provisioner: Literal["kwok", "static"] = "kwok"
    """kwok: simulated nodes the operator creates (development, tests, capacity planning).
    static: existing nodes matching nodeSelector are adopted and labelled."""
    gpu_product: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")]
    """GPU model as reported in the nvidia.com/gpu.product label, e.g. NVIDIA-H100-80GB-HBM3."""
    gpus_per_node: Annotated[int, Field(ge=1, le=16)] = 8
    """GPUs in each node (nvidia.com/gpu capacity)."""
    nodes: Annotated[int, Field(ge=0, le=10000)] = 0
    """Desired number of nodes; for static pools, the number expected to match nodeSelector."""
    node_selector: Annotated[dict[LabelKey, LabelValue], Field(max_length=16)] | None = None
    """Static pools: labels that select the existing nodes to adopt. Required for static."""
    region: LabelValue
    """topology.kubernetes.io/region of the pool's nodes; must be one of sovereignty.regions."""
    zone: LabelValue | None = None
    """topology.kubernetes.io/zone of the pool's nodes."""
    topology: PoolTopology = PoolTopology()
    """NVLink domain and rack grouping of the pool's nodes."""
    taints: Annotated[list[Taint], Field(max_length=16)] = []
    """Taints put on the pool's nodes; workloads placed here get matching tolerations."""
    classification: Level | None = None
    """Highest classification the pool may run; one of sovereignty.classificationLevels.
    Unset means the highest level."""
    cpus_per_node: Annotated[int, Field(ge=1, le=1024)] = 64
    """CPU cores a simulated (kwok) node reports."""
    memory_per_node: Quantity = "512Gi"
    """Memory a simulated (kwok) node reports, as a Kubernetes quantity."""


class StaticSource(ApiModel):
    """An existing volume inside the factory, exposed as statically provisioned PersistentVolumes."""

    nfs_server: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """NFS server host inside the factory."""
    path: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")]
    """Exported path (NFS) or node-local directory (local volume)."""


class Storage(ApiModel):
    """A volume inside the factory for datasets, checkpoints or models."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.storageClassProvisioner) != has(self.static)",
                    "message": "set exactly one of storageClassProvisioner and static",
                }
            ]
        }
    }

    name: Name
    """Storage name, unique in the factory; Datasets name it in spec.storage.name."""
    storage_class_provisioner: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """CSI driver that provisions volumes dynamically (a StorageClass is created for it)."""
    static: StaticSource | None = None
    """An existing volume exposed as PersistentVolumes; set this or storageClassProvisioner."""
    region: LabelValue
    """Region the storage lives in; must be one of sovereignty.regions."""
    zone: LabelValue | None = None
    """Zone the storage lives in, if it is zonal."""
    capacity: Quantity
    """Capacity, e.g. 100Ti."""
    purpose: Literal["datasets", "checkpoints", "models", "general"] = "general"
    """What the volume is for; informs defaults such as access mode and reclaim policy."""


class GpuQuota(ApiModel):
    """A tenant's share of one GPU product, and how it borrows and lends within the factory."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.lendingLimit) || self.lendingLimit <= self.gpus",
                    "message": "lendingLimit cannot exceed gpus: a tenant lends only from its own share",
                    "fieldPath": ".lendingLimit",
                }
            ]
        }
    }

    product: Annotated[str, Field(min_length=1, max_length=63)]
    """GPU product, as in nodePools[].gpuProduct."""
    gpus: Annotated[int, Field(ge=0, le=1000000)]
    """The tenant's nominal share: GPUs of this product it may always hold at once (training and
    serving together)."""
    borrowing_limit: Annotated[int, Field(ge=0, le=1000000)] = 0
    """How many GPUs above its share the tenant's training jobs may hold, borrowed from quota other
    tenants leave idle (and lend). 0: no borrowing."""
    lending_limit: Annotated[int | None, Field(ge=0, le=1000000)] = None
    """How many of its idle GPUs other tenants may borrow; at most gpus. Unset: all of them."""


class Tenant(ApiModel):
    """A team that gets namespaces, a GPU quota and a clearance."""

    name: Name
    """Tenant name, unique in the factory."""
    namespaces: Annotated[list[Name], Field(min_length=1, max_length=32)]
    """Namespaces the operator creates and governs for this tenant."""
    gpu_quota: Annotated[list[GpuQuota], Field(**_list_map("product", 16))] = []
    """GPUs per product the tenant may use; a product not listed gets none."""
    clearance: Level
    """Highest classification the tenant may process; one of sovereignty.classificationLevels."""
    admin_groups: Annotated[list[ShortText], Field(max_length=16)] = []
    """Identity-provider groups bound to the tenant-admin role in the tenant's namespaces."""
    priority_classes: Annotated[list[Name], Field(max_length=16)] = []
    """PriorityClasses the tenant's pods may name in spec.priorityClassName. None by default, so
    no tenant can preempt another's pods with a system class. If the cluster has a globalDefault
    PriorityClass, list it here: the API server fills it into pods that name none."""


class FairSharing(ApiModel):
    """How tenants of equal priority share free capacity (docs/sharing.md)."""

    weights: Annotated[dict[str, Annotated[int, Field(ge=1, le=1000)]], Field(max_length=100)] = {}
    """Weight per tenant name (1 when not listed): a tenant with twice the weight gets its jobs
    admitted until it holds twice the share of GPUs before another tenant's turn."""


class Preemption(ApiModel):
    """Which running gangs a queued job may stop to start (docs/sharing.md#preemption)."""

    within_tenant: Literal["Never", "LowerPriority"] = "Never"
    """LowerPriority: a job that does not fit may stop its own tenant's gangs of lower priority."""
    reclaim: Literal["Never", "LowerPriority", "Any"] = "Never"
    """A job that fits its tenant's nominal quota may stop other tenants' gangs that run on
    borrowed quota, never taking a tenant below its own share. Any: whatever their priority (as
    Kueue's reclaimWithinCohort); LowerPriority: only gangs of lower priority."""


class Scheduling(ApiModel):
    """How the factory's tenants share its GPUs beyond their quotas."""

    fair_sharing: FairSharing | None = None
    """Set: among jobs of equal priority, the tenant with the lowest weighted dominant share goes
    first (its GPUs in use per product over the product's total quota, divided by its weight).
    Unset: oldest job first, whatever its tenant."""
    preemption: Preemption = Preemption()
    """Whom a queued job may preempt; nobody by default."""
    min_runtime_seconds: Annotated[int, Field(ge=0, le=604800)] = 0
    """A gang whose current attempt was admitted less than this long ago is never preempted."""
    grace_period_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    """Time a training worker has after SIGTERM (preemption, suspension) to write a checkpoint
    before it is killed: the pods' terminationGracePeriodSeconds. Its GPUs stay reserved until the
    pods are gone."""


class AIFactorySpec(ApiModel):
    """The desired sovereign GPU cluster."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.nodePools)"
                    " || self.nodePools.all(p, p.region in self.sovereignty.regions)",
                    "message": "every nodePools[].region must be one of sovereignty.regions",
                    "fieldPath": ".nodePools",
                },
                {
                    "rule": "!has(self.storage) || self.storage.all(s, s.region in self.sovereignty.regions)",
                    "message": "every storage[].region must be one of sovereignty.regions",
                    "fieldPath": ".storage",
                },
                {
                    "rule": "!has(self.nodePools) || self.nodePools.all(p, !has(p.classification)"
                    " || p.classification in self.sovereignty.classificationLevels)",
                    "message": "every nodePools[].classification must be one of"
                    " sovereignty.classificationLevels",
                    "fieldPath": ".nodePools",
                },
                {
                    "rule": "!has(self.tenants)"
                    " || self.tenants.all(t, t.clearance in self.sovereignty.classificationLevels)",
                    "message": "every tenants[].clearance must be one of sovereignty.classificationLevels",
                    "fieldPath": ".tenants",
                },
                {
                    "rule": "!has(self.scheduling) || !has(self.scheduling.fairSharing)"
                    " || !has(self.scheduling.fairSharing.weights)"
                    " || self.scheduling.fairSharing.weights.all(name,"
                    " has(self.tenants) && self.tenants.exists(t, t.name == name))",
                    "message": "every key of scheduling.fairSharing.weights must name a tenant",
                    "fieldPath": ".scheduling.fairSharing.weights",
                },
            ]
        }
    }

    sovereignty: Sovereignty
    """Jurisdiction, regions, air-gap and the other sovereignty rules the factory enforces."""
    node_pools: Annotated[list[NodePool], Field(**_list_map("name", 64))] = []
    """GPU node pools."""
    storage: Annotated[list[Storage], Field(**_list_map("name", 32))] = []
    """Volumes for datasets, checkpoints and models."""
    tenants: Annotated[list[Tenant], Field(**_list_map("name", 100))] = []
    """Teams that use the factory."""
    scheduling: Scheduling | None = None
    """How tenants share the factory's GPUs: fair sharing (borrowing is per quota, gpuQuota[])."""


class DomainStatus(ApiModel):
    """What one rack of a pool holds now."""

    name: Annotated[str, Field(max_length=128)]
    """The rack, as in the aifactory.dev/rack node label."""
    nodes_ready: Annotated[int, Field(ge=0)] = 0
    """Ready, schedulable nodes in the rack."""
    gpus_allocatable: Annotated[int, Field(ge=0)] = 0
    """nvidia.com/gpu allocatable on those nodes."""
    gpus_in_use: Annotated[int, Field(ge=0)] = 0
    """nvidia.com/gpu requested by running or pending pods bound to the rack's nodes."""


class PoolStatus(ApiModel):
    """What one node pool holds now."""

    name: Name
    """The pool's name."""
    nodes_desired: Annotated[int, Field(ge=0)] = 0
    """Nodes the pool should have."""
    nodes_ready: Annotated[int, Field(ge=0)] = 0
    """Ready, schedulable nodes."""
    gpus_allocatable: Annotated[int, Field(ge=0)] = 0
    """nvidia.com/gpu allocatable on the pool's ready nodes."""
    gpus_in_use: Annotated[int, Field(ge=0)] = 0
    """nvidia.com/gpu requested by pods bound to the pool's nodes."""
    draining: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=10000)] = Field(
        default_factory=list
    )
    """Nodes cordoned for removal that still run tenant pods; they are removed once empty."""
    racks: Annotated[list[DomainStatus], Field(max_length=2000)] = Field(default_factory=list)
    """Per-rack counts, for placement decisions and capacity planning."""


class RetainedObject(ApiModel):
    """An object the operator would have removed but kept because it holds data."""

    kind: Annotated[str, Field(max_length=64)]
    """Kind of the kept object, e.g. Namespace or PersistentVolume."""
    name: Annotated[str, Field(max_length=253)]
    """Its name."""
    reason: Annotated[str, Field(max_length=1024)]
    """Why it was kept, e.g. holds Dataset research/corpus-de."""


class AIFactoryStatus(ResourceStatus):
    """Observed state of the factory."""

    pools: Annotated[list[PoolStatus], Field(**_list_map("name", 64))] = Field(default_factory=list)
    """Per-pool node and GPU counts."""
    pool_count: Annotated[int, Field(ge=0)] = 0
    """Number of node pools."""
    tenant_count: Annotated[int, Field(ge=0)] = 0
    """Number of tenants."""
    gpus: Annotated[str, Field(max_length=32)] = "0/0"
    """GPUs ready / GPUs desired, for kubectl get."""
    gpus_ready: Annotated[int, Field(ge=0)] = 0
    """GPUs allocatable on ready nodes across all pools."""
    gpus_desired: Annotated[int, Field(ge=0)] = 0
    """GPUs the pools would have with every node ready."""
    gpus_in_use: Annotated[int, Field(ge=0)] = 0
    """GPUs requested by pods bound to the factory's nodes."""
    retained: Annotated[list[RetainedObject], Field(max_length=1000)] = Field(default_factory=list)
    """Objects no longer in the spec that were kept because they hold data."""


class AIFactory(Resource):
    """A sovereign AI factory: GPU node pools, storage and tenants inside one jurisdiction."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="AIFactory",
        plural="aifactories",
        short_names=["aif"],
        scope="Cluster",
        printer_columns=[
            {"name": "Jurisdiction", "type": "string", "jsonPath": ".spec.sovereignty.jurisdiction"},
            {"name": "Air-gapped", "type": "boolean", "jsonPath": ".spec.sovereignty.airGapped"},
            {"name": "Pools", "type": "integer", "jsonPath": ".status.poolCount"},
            {"name": "GPUs", "type": "string", "jsonPath": ".status.gpus"},
            {"name": "Tenants", "type": "integer", "jsonPath": ".status.tenantCount"},
            *ready_columns(),
        ],
    )
    spec: AIFactorySpec
    """The desired factory."""
    status: AIFactoryStatus | None = None
    """Observed state, written by the operator."""
