"""Types shared by every kind: bounded strings, conditions, taints, the base model."""

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Bounds on every string and list keep the CRD structural and give CEL rules a known cost.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
LabelValue = Annotated[str, Field(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
LabelKey = Annotated[str, Field(min_length=1, max_length=253)]
ShortText = Annotated[str, Field(max_length=256)]
LongText = Annotated[str, Field(max_length=32768)]
Jurisdiction = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}$",
        min_length=2,
        max_length=2,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "jurisdiction is immutable"}]
        },
    ),
]
Image = Annotated[str, Field(min_length=1, max_length=512)]
Digest = Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$", max_length=71)]
Quantity = Annotated[
    str,
    Field(
        max_length=32,
        pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$",
    ),
]
DateTime = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, attribute docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Condition(ApiModel):
    """A condition in the shape of metav1.Condition, read by kubectl wait, Argo CD, Flux and kstatus."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """The aspect this condition describes: Ready, Reconciling or Stalled."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: Annotated[str, Field(max_length=1024)] = ""
    """A CamelCase word that says why, for machines."""
    message: LongText = ""
    """A sentence that says why, for people; names the field and the fix when the spec is at fault."""
    last_transition_time: DateTime | None = None
    """When the status last changed (RFC 3339)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation this condition was computed from."""


class Taint(ApiModel):
    """A node taint; workloads placed on the pool get the matching toleration."""

    key: LabelKey
    """The taint key, e.g. nvidia.com/gpu."""
    value: LabelValue = ""
    """The taint value."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"
    """What the scheduler does with pods that do not tolerate the taint."""


class KindInfo(BaseModel):
    """How a root model becomes a CRD: names, scope and the columns kubectl get prints."""

    kind: str
    plural: str
    short_names: list[str]
    scope: Literal["Namespaced", "Cluster"]
    printer_columns: list[dict[str, Any]]


class Resource(ApiModel):
    """A custom resource as read from the API server: metadata as-is, spec and status typed."""

    info: ClassVar[KindInfo]
    api_version: Annotated[str, Field(max_length=64)] | None = None
    kind: Annotated[str, Field(max_length=64)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        namespace = self.metadata.get("namespace")
        return str(namespace) if namespace else None

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0))


def ready_columns() -> list[dict[str, Any]]:
    """The Ready and Age columns every kind ends with."""
    return [
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
            "priority": 1,
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


class ResourceStatus(ApiModel):
    """Status fields every kind reports."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the operator last acted on; equal to it when status is current."""
    conditions: Annotated[
        list[Condition],
        Field(
            max_length=16,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ] = Field(default_factory=list)
    """Ready, Reconciling and Stalled, in the standard Kubernetes shape."""
