"""Thousands of generated pods: the pure rules refuse every one that breaks a rule (no false
allow) and only those (no false denial), judged against a hand-written oracle."""

from hypothesis import given, settings
from policy_fixtures import PROFILES
from policy_properties import generated_pods

from aifactory_operator.api.v1alpha1.aifactory import Sovereignty
from aifactory_operator.policy.object_rules import check_object

DEFAULT = Sovereignty.model_validate(PROFILES["default"])


@settings(max_examples=3000, deadline=None)
@given(case=generated_pods())
def test_generated_pods_are_refused_exactly_for_the_rules_they_break(case):
    pod, broken = case
    assert {v.rule for v in check_object(pod, DEFAULT)} == broken
