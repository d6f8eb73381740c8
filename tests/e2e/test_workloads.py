"""Dataset, TrainingJob and ModelEndpoint get a status in the standard shape."""

import pytest

from aifactory_operator.constants import API_VERSION
from conftest import condition, wait_for

OBJECTS = {
    "Dataset": {
        "purpose": "model",
        "storage": {"name": "models"},
        "jurisdiction": "DE",
        "classification": "internal",
    },
    "TrainingJob": {"image": "registry.factory.internal/t:1", "pool": "h100"},
    "ModelEndpoint": {"model": "m", "pool": "l40s", "runtime": {"image": "registry.factory.internal/v:1"}},
}


@pytest.mark.parametrize("kind", OBJECTS)
def test_status_reports_observed_generation_and_conditions(kube, operator, namespace, kind):
    body = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": "x", "namespace": namespace},
        "spec": OBJECTS[kind],
    }
    kube.apply(body)
    stored = wait_for(
        lambda: (
            (o := kube.get(API_VERSION, kind, "x", namespace))
            and o.get("status", {}).get("observedGeneration")
            and o
        ),
        f"{kind} status",
    )
    assert stored["status"]["observedGeneration"] == stored["metadata"]["generation"]
    ready = condition(stored, "Ready")
    assert ready is not None and ready["status"] in ("True", "False")
    assert ready["observedGeneration"] == stored["metadata"]["generation"]
