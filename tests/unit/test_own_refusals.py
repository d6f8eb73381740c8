"""The audit tap skips the operator's own children, so a policy's refusal of one is recorded by the
operator from the API server's answer: with the rules the object breaks, as the tap would have."""

import pytest
from kubernetes.client.exceptions import ApiException

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.handlers import training, webhook
from builders import make_factory_body

DENIED = (
    "jobs.batch \"t-0\" is forbidden: ValidatingAdmissionPolicy 'aifactory-pod-templates' with binding"
    " 'aifactory-pod-templates' denied request: images come from the factory's registries"
)


class Recorder:
    def __init__(self) -> None:
        self.refusals: list = []

    def record(self, refusal) -> None:
        self.refusals.append(refusal)


class RefusingKube:
    def __init__(self, status: int, body: str) -> None:
        self.error = ApiException(status=status, reason="Forbidden")
        self.error.body = body

    def apply(self, obj) -> None:
        raise self.error


def job(image: str) -> dict:
    pod = {"containers": [{"name": "trainer", "image": image}]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "t-0", "namespace": "research"},
        "spec": {"template": {"spec": pod}},
    }


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(webhook, "recorder", recorder)
    monkeypatch.setattr(
        webhook,
        "operator_user",
        "system:serviceaccount:aifactory-system:aifactory-operator",
    )
    return recorder


def apply(kube: RefusingKube, obj: dict) -> ApiException:
    body = make_factory_body()
    body["spec"]["sovereignty"]["allowedRegistries"] = ["registry.factory.internal"]
    factory = AIFactory.model_validate(body)
    with pytest.raises(ApiException) as raised:
        training.apply_child(kube, obj, lambda o, e: webhook.record_own_refusal(o, e, factory))  # type: ignore[arg-type]
    return raised.value


def test_a_policy_refusal_of_our_child_is_recorded_with_the_rules_it_breaks_and_still_fails(
    recorder,
):
    error = apply(RefusingKube(422, DENIED), job("docker.io/evil/miner:1"))
    assert error.status == 422
    [refusal] = recorder.refusals
    assert (refusal.layer, refusal.kind, refusal.namespace, refusal.name) == (
        "admission-policy",
        "Job",
        "research",
        "t-0",
    )
    assert refusal.user == "system:serviceaccount:aifactory-system:aifactory-operator"
    assert "air-gap/image-registry" in {v.rule for v in refusal.violations}


def test_a_refusal_for_a_rule_we_do_not_model_keeps_the_api_servers_words(recorder):
    apply(RefusingKube(403, DENIED), job("registry.factory.internal/trainer:1"))
    [refusal] = recorder.refusals
    assert [v.rule for v in refusal.violations] == ["admission-policy"]
    assert "ValidatingAdmissionPolicy 'aifactory-pod-templates'" in refusal.violations[0].message


def test_other_failures_are_not_refusals(recorder):
    apply(
        RefusingKube(500, "etcdserver: request timed out"),
        job("docker.io/evil/miner:1"),
    )
    assert recorder.refusals == []
