"""Which of the operator's protections the API server can run, from what it serves (pure).

Supported minors differ in what they serve: MutatingAdmissionPolicy is admissionregistration.k8s.io/v1
from 1.36 only. The operator reads discovery once at start, says in one log line what runs where, and
refuses to start where a protection it cannot do without is missing (fail closed, never silently less).
"""

from dataclasses import dataclass

ADMISSION_V1 = "admissionregistration.k8s.io/v1"


@dataclass(frozen=True)
class Capability:
    """An API the operator's protections use, and what depends on it."""

    name: str
    group_version: str
    resource: str
    serves: str
    """What runs on it, in words for the log."""
    since: str
    """The first Kubernetes minor that serves it at this version."""
    required: bool


CAPABILITIES = (
    Capability(
        "ValidatingAdmissionPolicy",
        ADMISSION_V1,
        "validatingadmissionpolicies",
        "object rules and guard rails inside kube-apiserver, also while the operator is down",
        "1.30",
        required=True,
    ),
    Capability(
        "ValidatingWebhook",
        ADMISSION_V1,
        "validatingwebhookconfigurations",
        "rules that need other objects (datasets, clearance), fail closed",
        "1.16",
        required=True,
    ),
    Capability(
        "MutatingAdmissionPolicy",
        ADMISSION_V1,
        "mutatingadmissionpolicies",
        "places pods while the operator is down (the operator's webhook places them otherwise)",
        "1.36",
        required=False,
    ),
)


def describe_capabilities(version: str, served: dict[str, set[str]]) -> str:
    """One log line: the API server's version and, per capability, whether it runs there."""
    parts = []
    for capability in CAPABILITIES:
        if is_served(capability, served):
            parts.append(f"{capability.name}=served ({capability.serves})")
        else:
            parts.append(f"{capability.name}=absent (served from {capability.since}; {capability.serves})")
    return f"Detected Kubernetes {version}: " + "; ".join(parts)


def missing_requirements(version: str, served: dict[str, set[str]]) -> str | None:
    """Why the operator cannot protect a factory on this API server, or None when it can."""
    missing = [c for c in CAPABILITIES if c.required and not is_served(c, served)]
    if not missing:
        return None
    names = ", ".join(f"{c.name} ({c.group_version}, from Kubernetes {c.since})" for c in missing)
    return f"Kubernetes {version} does not serve {names}; the supported versions are 1.35-1.37"


def is_served(capability: Capability, served: dict[str, set[str]]) -> bool:
    return capability.resource in served.get(capability.group_version, set())
