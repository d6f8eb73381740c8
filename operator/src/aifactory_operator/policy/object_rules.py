"""Every rule that needs only the object under review: what the ValidatingAdmissionPolicies
enforce inside the API server, evaluated here for the webhook's audit tap and for the tests."""

from typing import Any

from ..api.v1alpha1.aifactory import Sovereignty
from .airgap import check_exposure, check_pod_images, check_workload_image
from .host_escape import check_host_escape
from .locality import check_node_targeting
from .violations import Violation

Obj = dict[str, Any]


def check_object(obj: Obj, sovereignty: Sovereignty, *, operation: str = "CREATE") -> list[Violation]:
    """All object-only violations of `obj` in a tenant namespace of a factory with `sovereignty`."""
    return [
        *check_pod_images(obj, sovereignty),
        *check_host_escape(obj),
        *check_node_targeting(obj, sovereignty, operation=operation),
        *check_workload_image(obj, sovereignty),
        *check_exposure(obj, sovereignty),
    ]
