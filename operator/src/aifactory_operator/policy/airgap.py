"""Air-gap: images only from approved registries (pinned when required), nothing exposed outside."""

import re
from typing import Any

from ..api.v1alpha1.aifactory import Sovereignty
from .podspec import find_pod_spec, list_containers
from .violations import Violation

Obj = dict[str, Any]
REGISTRY = "air-gap/image-registry"
DIGEST = "air-gap/image-digest"
SERVICE_TYPE = "air-gap/service-type"
INGRESS = "air-gap/ingress"
SERVICE_EXTERNAL_IPS = "air-gap/service-external-ips"
DEFAULT_REGISTRY = "docker.io"
EXPOSING_SERVICE_TYPES = ("LoadBalancer", "NodePort", "ExternalName")
DIGEST_PATTERN = re.compile(r"@sha256:[a-f0-9]{64}$")


def registry_host(image: str) -> str:
    """The registry an image reference names, by the rule container runtimes use: the first path
    component is a host only when it has a dot or a port or is localhost; otherwise Docker Hub."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DEFAULT_REGISTRY


def is_registry_rule_on(sovereignty: Sovereignty) -> bool:
    """An air-gapped factory admits only its listed registries (none listed: none admitted); a
    connected one restricts registries only when it lists some."""
    return sovereignty.air_gapped or bool(sovereignty.allowed_registries)


def check_image(image: str, path: str, sovereignty: Sovereignty) -> list[Violation]:
    """The registry and digest rules for one image reference."""
    found = []
    host = registry_host(image)
    if is_registry_rule_on(sovereignty) and host not in sovereignty.allowed_registries:
        allowed = ", ".join(sovereignty.allowed_registries) or "none"
        found.append(
            Violation(
                REGISTRY,
                path,
                f"image '{image}' comes from registry '{host}', which is not in the factory's"
                f" allowedRegistries ({allowed}); mirror it into an allowed registry",
            )
        )
    if sovereignty.require_image_digests and not DIGEST_PATTERN.search(image):
        found.append(
            Violation(
                DIGEST,
                path,
                f"image '{image}' is not pinned by digest; refer to it as <name>@sha256:<digest>",
            )
        )
    return found


def check_pod_images(obj: Obj, sovereignty: Sovereignty) -> list[Violation]:
    """Every container image of a pod or pod template: regular, init and ephemeral."""
    located = find_pod_spec(obj)
    if located is None:
        return []
    pod_spec, prefix = located
    found = []
    for container, path in list_containers(pod_spec, prefix):
        found += check_image(str(container.get("image", "")), f"{path}.image", sovereignty)
    return found


def check_workload_image(obj: Obj, sovereignty: Sovereignty) -> list[Violation]:
    """The image of our own kinds: a TrainingJob's spec.image, a ModelEndpoint's spec.runtime.image."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "TrainingJob":
        return check_image(str(spec.get("image", "")), "spec.image", sovereignty)
    if obj.get("kind") == "ModelEndpoint":
        image = str((spec.get("runtime") or {}).get("image", ""))
        return check_image(image, "spec.runtime.image", sovereignty)
    return []


def check_exposure(obj: Obj, sovereignty: Sovereignty) -> list[Violation]:
    """A Service is reached only from inside the cluster: never through externalIPs (which let
    a tenant capture any address's traffic, CVE-2020-8554), and in an air-gapped factory only as
    ClusterIP; an air-gapped factory admits no Ingress."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    found = []
    if kind == "Service" and spec.get("externalIPs"):
        found.append(
            Violation(
                SERVICE_EXTERNAL_IPS,
                "spec.externalIPs",
                "externalIPs capture traffic meant for other addresses; remove them and reach the"
                " Service through its ClusterIP",
            )
        )
    if not sovereignty.air_gapped:
        return found
    if kind == "Ingress":
        found.append(
            Violation(
                INGRESS,
                "kind",
                "an air-gapped factory admits no Ingress; reach the service from inside the factory"
                " through its ClusterIP Service",
            )
        )
    service_type = spec.get("type", "ClusterIP")
    if kind == "Service" and service_type != "ClusterIP":
        found.append(
            Violation(
                SERVICE_TYPE,
                "spec.type",
                f"type {service_type} publishes or leaves the air-gapped factory; use ClusterIP",
            )
        )
    return found
