"""Dataset: training data, model weights or checkpoints that live inside the factory."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .common import (
    ApiModel,
    Digest,
    Jurisdiction,
    KindInfo,
    Name,
    Quantity,
    Resource,
    ResourceStatus,
    ready_columns,
)

# A canonical dataset path: empty, or '/segment' parts whose segments start with a letter or digit
# (so '.' and '..' cannot be one) and hold only letters, digits, '.', '_' and '-' (so no '/', '\\',
# '%' or control character hides inside one). The operator's policy/dataset_paths.py checks the
# same expression; it is declared here, once, because the API layer imports nothing above it.
CANONICAL_PATH = r"^(/[A-Za-z0-9][A-Za-z0-9._-]*)*$"
CANONICAL_PATH_MAX_LENGTH = 1024
CANONICAL_PATH_MESSAGE = (
    "must be empty or one or more '/segment' parts, each segment a letter or digit followed by"
    " letters, digits, '.', '_' or '-' (no '.' or '..' segment, no '//', no trailing '/', no '\\',"
    " '%' or control characters); write it as e.g. /corpora/de-2026 [dataset/canonical-path]"
)
DatasetPath = Annotated[
    str,
    Field(
        max_length=CANONICAL_PATH_MAX_LENGTH,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self.matches('{CANONICAL_PATH}')", "message": CANONICAL_PATH_MESSAGE}
            ]
        },
    ),
]


class DatasetStorage(ApiModel):
    """Where in the factory's storage the data lives."""

    name: Name
    """Name of an entry in the AIFactory's spec.storage."""
    path: DatasetPath = ""
    """Sub-path inside the tenant's own subtree of that storage, e.g. /corpora/de-2026; empty means
    the subtree's root. On static storage the volume points at <export>/<tenant>/<path>, so no path
    reaches another tenant's data. Empty or '/segment' parts of letters, digits, '.', '_' and '-'."""
    size: Quantity = "1Ti"
    """Capacity the dataset's PersistentVolumeClaim requests."""


class DatasetSpec(ApiModel):
    """The data, where it lives and the rules that travel with it."""

    purpose: Literal["training-data", "model", "checkpoint"]
    """What the data is: training data, model weights served by ModelEndpoints, or checkpoints."""
    storage: DatasetStorage
    """The factory storage that holds the data."""
    jurisdiction: Jurisdiction
    """ISO 3166-1 alpha-2 code of the jurisdiction the data must stay in. Immutable."""
    classification: Annotated[str, Field(min_length=1, max_length=63)]
    """Classification level of the data; one of the factory's sovereignty.classificationLevels."""
    digest: Digest | None = None
    """sha256 digest of the content, recorded in training residency records and serving status."""


class DatasetStatus(ResourceStatus):
    """Observed state of the dataset."""

    claim_name: Annotated[str, Field(max_length=253)] | None = None
    """PersistentVolumeClaim in the dataset's namespace that holds the data."""
    volume_name: Annotated[str, Field(max_length=253)] | None = None
    """PersistentVolume the claim is bound to."""
    storage_class: Annotated[str, Field(max_length=253)] | None = None
    """StorageClass of the claim, pinned to the jurisdiction's regions."""
    phase: Literal["Pending", "Bound", "Refused"] | None = None
    """Pending until the claim is bound; Refused when a sovereignty rule forbids the dataset."""


class Dataset(Resource):
    """Data or model weights inside the factory, with the jurisdiction and classification that bind them."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="Dataset",
        plural="datasets",
        # Not "ds", which is DaemonSet's: kubectl warned on every use and picked one of the two.
        short_names=["dset"],
        scope="Namespaced",
        printer_columns=[
            {"name": "Purpose", "type": "string", "jsonPath": ".spec.purpose"},
            {"name": "Jurisdiction", "type": "string", "jsonPath": ".spec.jurisdiction"},
            {"name": "Classification", "type": "string", "jsonPath": ".spec.classification"},
            {"name": "Claim", "type": "string", "jsonPath": ".status.claimName"},
            *ready_columns(),
        ],
    )
    spec: DatasetSpec
    """The desired dataset."""
    status: DatasetStatus | None = None
    """Observed state, written by the operator."""
