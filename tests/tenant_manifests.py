"""Every manifest the operator renders for a tenant, built by the operator's own pure functions from
the examples (the sample factory, its Datasets, a TrainingJob and a ModelEndpoint), with images
pinned by digest as an air-gapped factory requires. The chart checks run checkov on them."""

from pathlib import Path
from typing import Any

import yaml

from aifactory_operator.api.v1alpha1 import AIFactory, Dataset, ModelEndpoint, TrainingJob
from aifactory_operator.reconcile.aifactory import FactoryObservation, plan_factory
from aifactory_operator.reconcile.serving_objects import (
    construct_autoscaler,
    construct_client_policy,
    construct_deployment,
    construct_disruption_budget,
    construct_service,
)
from aifactory_operator.reconcile.storage import construct_claim, construct_static_volume
from aifactory_operator.reconcile.training_objects import construct_job
from aifactory_operator.reconcile.training_objects import construct_service as construct_training_service

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DIGEST = "@sha256:" + "0123456789abcdef" * 4


def load(name: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    for doc in docs:
        doc["metadata"].setdefault("uid", f"uid-{doc['metadata']['name']}")
        doc["metadata"].setdefault("generation", 1)
    return docs


def pinned(image: str) -> str:
    return image.split(":")[0] + DIGEST


def render_tenant_manifests() -> list[dict[str, Any]]:
    [factory_body] = load("01-aifactory.yaml")
    factory = AIFactory.model_validate(factory_body)
    objects = list(plan_factory(factory, FactoryObservation()).apply)
    datasets = {d["metadata"]["name"]: Dataset.model_validate(d) for d in load("03-dataset.yaml")}
    for dataset in datasets.values():
        storage = next(s for s in factory.spec.storage if s.name == dataset.spec.storage.name)
        tenant = next(t for t in factory.spec.tenants if dataset.namespace in t.namespaces)
        objects += [
            construct_claim(factory, storage, dataset),
            construct_static_volume(factory, storage, dataset, tenant),
        ]
    [training_body] = load("04-trainingjob.yaml")
    training_body["spec"]["image"] = pinned(training_body["spec"]["image"])
    training = TrainingJob.model_validate(training_body)
    h100 = next(p for p in factory.spec.node_pools if p.name == training.spec.pool)
    nodes = [f"{factory.name}-{h100.name}-{i}" for i in range(training.spec.nodes)]
    objects += [
        construct_job(training, h100, factory.name, nodes, 1, factory.spec.sovereignty.jurisdiction),
        construct_training_service(training),
    ]
    [endpoint_body] = load("05-modelendpoint.yaml")
    endpoint_body["spec"]["runtime"]["image"] = pinned(endpoint_body["spec"]["runtime"]["image"])
    endpoint = ModelEndpoint.model_validate(endpoint_body)
    l40s = next(p for p in factory.spec.node_pools if p.name == endpoint.spec.pool)
    model = datasets[endpoint.spec.model]
    objects += [
        construct_deployment(
            endpoint, l40s, factory.name, model, 2, True, factory.spec.sovereignty.jurisdiction
        ),
        construct_service(endpoint),
        construct_autoscaler(endpoint, 3),
        construct_client_policy(endpoint),
    ]
    budget = construct_disruption_budget(endpoint)
    return objects + ([budget] if budget else [])


def write_tenant_manifests(folder: Path) -> Path:
    path = folder / "tenant-manifests.yaml"
    path.write_text(yaml.safe_dump_all(render_tenant_manifests(), sort_keys=False))
    return path
