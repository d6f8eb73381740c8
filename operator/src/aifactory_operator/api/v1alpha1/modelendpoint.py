"""ModelEndpoint: in-factory model serving from a Dataset of purpose model."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .common import (
    ApiModel,
    Digest,
    Image,
    KindInfo,
    Name,
    Resource,
    ResourceStatus,
    ready_columns,
)


class Runtime(ApiModel):
    """The serving runtime container."""

    image: Image
    """Serving runtime image (e.g. a vLLM or Triton build in an allowed registry)."""
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=128)] = []
    """Arguments to the runtime; the model path is in MODEL_PATH."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    """Port the runtime serves HTTP on; also probed for readiness."""


class Replicas(ApiModel):
    """Replica bounds for the autoscaler."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "replicas.min must not exceed replicas.max"}
            ]
        }
    }

    min: Annotated[int, Field(ge=1, le=1000)] = 1
    """Replicas always kept; their GPUs are reserved in the tenant's quota."""
    max: Annotated[int, Field(ge=1, le=1000)] = 1
    """Upper bound for the autoscaler."""


class Autoscaling(ApiModel):
    """What the HorizontalPodAutoscaler scales on."""

    metric: Literal["cpu", "inflight-requests"] = "cpu"
    """cpu: average CPU utilisation; inflight-requests: a per-pod metric from the runtime."""
    target: Annotated[int, Field(ge=1, le=100000)] = 70
    """Target value: percent for cpu, requests per pod for inflight-requests."""


class ModelEndpointSpec(ApiModel):
    """The desired serving endpoint."""

    model: Name
    """Name of a Dataset of purpose model in the endpoint's namespace."""
    runtime: Runtime
    """The serving runtime."""
    gpus_per_replica: Annotated[int, Field(ge=0, le=16)] = 1
    """GPUs each replica requests."""
    replicas: Replicas = Replicas()
    """Replica bounds."""
    autoscaling: Autoscaling = Autoscaling()
    """Autoscaling target."""
    pool: Name
    """Name of the AIFactory node pool to serve from."""
    allowed_client_namespaces: Annotated[list[Name], Field(max_length=64)] = []
    """Namespaces besides the endpoint's own whose pods may call it."""


class ModelEndpointStatus(ResourceStatus):
    """Observed state of the endpoint."""

    ready_replicas: Annotated[int, Field(ge=0)] = 0
    """Replicas passing their readiness probe."""
    desired_replicas: Annotated[int, Field(ge=0)] = 0
    """Replicas the autoscaler currently wants."""
    url: Annotated[str, Field(max_length=512)] | None = None
    """In-cluster URL: http://<service>.<namespace>.svc:<port>."""
    served_digest: Digest | None = None
    """Digest of the model the ready replicas serve."""
    rolling_out_digest: Digest | None = None
    """Digest of the model being rolled out, while a rollout runs."""
    reserved_gpus: Annotated[int, Field(ge=0)] = 0
    """GPUs held in the factory's accounting: replicas.min (or more while scaled up) x gpusPerReplica."""
    max_replicas_allowed: Annotated[int, Field(ge=0)] = 0
    """Replicas the autoscaler may reach now, within free capacity and quota (<= replicas.max)."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why the endpoint waits, or why scaling is held back."""


class ModelEndpoint(Resource):
    """A model served inside the factory, autoscaled within the tenant's GPU quota."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="ModelEndpoint",
        plural="modelendpoints",
        short_names=["me"],
        scope="Namespaced",
        printer_columns=[
            {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
            {"name": "Pool", "type": "string", "jsonPath": ".spec.pool"},
            {"name": "Ready-Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
            {"name": "URL", "type": "string", "jsonPath": ".status.url", "priority": 1},
            *ready_columns(),
        ],
    )
    spec: ModelEndpointSpec
    """The desired endpoint."""
    status: ModelEndpointStatus | None = None
    """Observed state, written by the operator."""
