"""What runs where: the operator's one start-up line per API server, and where it refuses to start."""

from aifactory_operator.reconcile.capabilities import (
    ADMISSION_V1,
    describe_capabilities,
    missing_requirements,
)

ON_1_35 = {
    ADMISSION_V1: {
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    }
}
ON_1_37 = {
    ADMISSION_V1: ON_1_35[ADMISSION_V1] | {"mutatingadmissionpolicies", "mutatingadmissionpolicybindings"}
}


def test_on_1_37_every_capability_is_served():
    line = describe_capabilities("v1.37.2", ON_1_37)
    assert line.startswith("Detected Kubernetes v1.37.2: ")
    assert "ValidatingAdmissionPolicy=served" in line and "MutatingAdmissionPolicy=served" in line
    assert "\n" not in line


def test_on_1_35_the_line_says_mutating_admission_policies_are_absent_and_from_when():
    line = describe_capabilities("v1.35.4", ON_1_35)
    assert "MutatingAdmissionPolicy=absent (served from 1.36" in line
    assert "ValidatingAdmissionPolicy=served" in line


def test_every_supported_minor_meets_the_requirements():
    assert missing_requirements("v1.35.4", ON_1_35) is None
    assert missing_requirements("v1.37.2", ON_1_37) is None


def test_an_api_server_without_validating_admission_policies_is_refused_by_name():
    served = {ADMISSION_V1: {"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}}
    problem = missing_requirements("v1.29.9", served)
    assert problem is not None
    assert "ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, from Kubernetes 1.30)" in problem
    assert "1.35-1.37" in problem


def test_an_api_server_that_serves_no_admission_v1_lacks_both_required_capabilities():
    problem = missing_requirements("v1.15.0", {})
    assert problem is not None and "ValidatingAdmissionPolicy" in problem and "ValidatingWebhook" in problem
