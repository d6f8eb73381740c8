"""Factory storage: StorageClasses pinned to the jurisdiction, and per-dataset volumes and claims."""

from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, StaticSource, Storage, Tenant
from ..api.v1alpha1.dataset import Dataset
from ..constants import (
    ANNOTATION_DIGEST,
    LABEL_CLASSIFICATION,
    LABEL_DATA_JURISDICTION,
    LABEL_DATASET,
    LABEL_DATASET_NAMESPACE,
    LABEL_DIGEST_PREFIX,
    LABEL_FACTORY,
    LABEL_JURISDICTION,
    LABEL_REGION,
    LABEL_STORAGE,
)
from .ownership import construct_owner_reference, managed_labels

Obj = dict[str, Any]
NO_PROVISIONER = "kubernetes.io/no-provisioner"


def storage_class_name(factory: AIFactory, storage: Storage) -> str:
    return f"{factory.name}-{storage.name}"


def jurisdiction_terms(factory: AIFactory, storage: Storage) -> list[Obj]:
    """Node selector terms for the nodes inside the jurisdiction and in the storage's region."""
    return [
        {
            "matchExpressions": [
                {
                    "key": LABEL_JURISDICTION,
                    "operator": "In",
                    "values": [factory.spec.sovereignty.jurisdiction],
                },
                {"key": LABEL_REGION, "operator": "In", "values": [storage.region]},
            ]
        }
    ]


def construct_storage_class(factory: AIFactory, storage: Storage) -> Obj:
    """A class whose volumes are bound only where the first consumer runs, inside the jurisdiction;
    Retain, because deleting a claim must never delete sovereign data."""
    provisioner = storage.storage_class_provisioner or NO_PROVISIONER
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": storage_class_name(factory, storage),
            "labels": managed_labels(**{LABEL_FACTORY: factory.name, LABEL_STORAGE: storage.name}),
            "ownerReferences": [construct_owner_reference(factory)],
        },
        "provisioner": provisioner,
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowedTopologies": [
            {
                "matchLabelExpressions": [
                    {"key": e["key"], "values": e["values"]}
                    for e in jurisdiction_terms(factory, storage)[0]["matchExpressions"]
                ]
            }
        ],
    }


def claim_name(dataset: Dataset) -> str:
    return dataset_claim(dataset.name)


def dataset_claim(name: str) -> str:
    """The PersistentVolumeClaim of the Dataset called `name`, in the Dataset's namespace."""
    return f"dataset-{name}"


def volume_name(factory: AIFactory, dataset: Dataset) -> str:
    return f"{factory.name}-{dataset.namespace}-{dataset.name}"


def dataset_labels(factory: AIFactory, dataset: Dataset) -> dict[str, str]:
    labels = managed_labels(
        **{
            LABEL_FACTORY: factory.name,
            LABEL_DATASET: dataset.name,
            LABEL_DATASET_NAMESPACE: dataset.namespace or "",
            LABEL_DATA_JURISDICTION: dataset.spec.jurisdiction,
            LABEL_CLASSIFICATION: dataset.spec.classification,
            LABEL_STORAGE: dataset.spec.storage.name,
        }
    )
    if dataset.spec.digest:
        labels[LABEL_DIGEST_PREFIX] = dataset.spec.digest.removeprefix("sha256:")[:32]
    return labels


def access_modes(dataset: Dataset) -> list[str]:
    """Checkpoints are written by every worker; data and models are only read."""
    return ["ReadWriteMany"] if dataset.spec.purpose == "checkpoint" else ["ReadOnlyMany"]


def construct_claim(factory: AIFactory, storage: Storage, dataset: Dataset) -> Obj:
    """The dataset's PersistentVolumeClaim; pre-bound to its static volume when there is one."""
    spec: Obj = {
        "accessModes": access_modes(dataset),
        "storageClassName": storage_class_name(factory, storage),
        "resources": {"requests": {"storage": dataset.spec.storage.size}},
    }
    if storage.static:
        spec["volumeName"] = volume_name(factory, dataset)
    metadata: Obj = {
        "name": claim_name(dataset),
        "namespace": dataset.namespace,
        "labels": dataset_labels(factory, dataset),
        "ownerReferences": [construct_owner_reference(dataset)],
    }
    if dataset.spec.digest:
        metadata["annotations"] = {ANNOTATION_DIGEST: dataset.spec.digest}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def tenant_volume_path(static: StaticSource, tenant: Tenant, path: str) -> str:
    """<export>/<tenant>/<path>: each tenant's datasets live in a subtree named after the tenant, so
    no path any tenant declares reaches another tenant's files. `path` must be canonical
    (policy/dataset_paths.py): no '..' or '.' segment can climb out of the subtree, and a tenant
    name is a DNS label, never '.' or '..' itself."""
    return f"{static.path.rstrip('/')}/{tenant.name}{path}"


def construct_static_volume(factory: AIFactory, storage: Storage, dataset: Dataset, tenant: Tenant) -> Obj:
    """A PersistentVolume for one dataset on static storage, confined to the tenant's subtree, with
    node affinity to the jurisdiction so that the scheduler itself keeps pods that mount it inside
    the jurisdiction."""
    assert storage.static is not None
    path = tenant_volume_path(storage.static, tenant, dataset.spec.storage.path)
    source: Obj = (
        {"nfs": {"server": storage.static.nfs_server, "path": path}}
        if storage.static.nfs_server
        else {"local": {"path": path}}
    )
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name(factory, dataset), "labels": dataset_labels(factory, dataset)},
        "spec": {
            "capacity": {"storage": dataset.spec.storage.size},
            "accessModes": access_modes(dataset),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": storage_class_name(factory, storage),
            "claimRef": {"namespace": dataset.namespace, "name": claim_name(dataset)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": jurisdiction_terms(factory, storage)}},
            **source,
        },
    }
