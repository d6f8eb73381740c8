"""kopf calls the TrainingJob/ModelEndpoint check only for objects no factory loop has reported
on: the loop's own status writes come back as watch events, and each would otherwise cost a
thread hop, a spec validation and a log line."""

import kopf

from aifactory_operator.handlers.trainingjob import is_unreported


def body(generation: int, status: dict | None = None) -> kopf.Body:
    raw = {"metadata": {"name": "j", "namespace": "research", "generation": generation}}
    if status is not None:
        raw["status"] = status
    return kopf.Body(raw)


def condition(reason: str) -> dict:
    return {"type": "Ready", "status": "False", "reason": reason}


def test_a_new_object_is_checked():
    assert is_unreported(body(1), type="ADDED")


def test_an_object_the_loop_reported_on_is_not_checked_again():
    reported = body(1, {"observedGeneration": 1, "conditions": [condition("Queued")]})
    assert not is_unreported(reported, type="MODIFIED")


def test_a_changed_spec_the_loop_has_not_seen_yet_is_checked():
    assert is_unreported(body(2, {"observedGeneration": 1, "conditions": []}), type="MODIFIED")


def test_our_own_not_a_tenant_verdict_is_looked_at_again():
    stalled = body(1, {"observedGeneration": 1, "conditions": [condition("NotATenantNamespace")]})
    assert is_unreported(stalled, type="MODIFIED")


def test_a_deletion_is_not_checked():
    assert not is_unreported(body(1), type="DELETED")
