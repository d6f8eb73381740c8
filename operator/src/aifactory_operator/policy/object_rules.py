"""Every rule that needs only the object under review (and the tenant it belongs to): what the
ValidatingAdmissionPolicies enforce inside the API server, evaluated here for the webhook's audit
tap and for the tests."""

from typing import Any

from ..api.v1alpha1.aifactory import Sovereignty
from .airgap import check_exposure, check_pod_images, check_workload_image
from .allow_lists import check_extended_resources, check_priority_class, check_volume_sources
from .host_escape import check_host_escape
from .locality import check_node_targeting
from .placement import TenantScope, check_placement
from .violations import Violation

Obj = dict[str, Any]


def check_object(
    obj: Obj,
    sovereignty: Sovereignty,
    *,
    operation: str = "CREATE",
    scope: TenantScope | None = None,
    by_operator: bool = False,
) -> list[Violation]:
    """All object-only violations of `obj` in a tenant namespace of a factory with `sovereignty`;
    with the tenant's `scope`, placement and PriorityClass too. `by_operator`: written by the
    operator or by a controller copying one of the templates it admitted."""
    found = [
        *check_pod_images(obj, sovereignty),
        *check_host_escape(obj),
        *check_node_targeting(obj, sovereignty, operation=operation),
        *check_workload_image(obj, sovereignty),
        *check_exposure(obj, sovereignty),
        *check_volume_sources(obj),
        *check_extended_resources(obj, by_operator=by_operator),
    ]
    if scope is not None:
        found += [*check_placement(obj, scope), *check_priority_class(obj, scope)]
    return found
