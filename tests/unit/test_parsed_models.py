"""The training loop validates each job body once per resourceVersion and forgets deleted ones."""

from aifactory_operator.api.v1alpha1 import TrainingJob
from aifactory_operator.handlers.training import ParsedModels


def body(version: str, gpus: int = 8, **spec) -> dict:
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "llm", "namespace": "research", "uid": "u1", "resourceVersion": version},
        "spec": {"image": "registry/t:1", "pool": "h100", "nodes": 1, "gpusPerNode": gpus, **spec},
    }


def test_the_same_version_is_validated_once():
    parsed = ParsedModels()
    first = parsed.parse(TrainingJob, body("1"))
    assert parsed.parse(TrainingJob, body("1")) is first
    assert first.spec.gpus_per_node == 8


def test_a_new_version_is_validated_again():
    parsed = ParsedModels()
    parsed.parse(TrainingJob, body("1"))
    assert parsed.parse(TrainingJob, body("2", gpus=4)).spec.gpus_per_node == 4


def test_an_invalid_body_parses_to_none_and_stays_none():
    parsed = ParsedModels()
    assert parsed.parse(TrainingJob, body("1", gpus=-3)) is None
    assert parsed.parse(TrainingJob, body("1", gpus=-3)) is None


def test_versions_no_tick_asked_for_are_forgotten():
    parsed = ParsedModels()
    parsed.parse(TrainingJob, body("1"))
    parsed.forget_unasked()
    parsed.parse(TrainingJob, body("2"))
    parsed.forget_unasked()
    assert list(parsed.models) == [("u1", "2")]
    parsed.forget_unasked()
    assert parsed.models == {}
