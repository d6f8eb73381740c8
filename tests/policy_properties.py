"""Generated pods for a tenant namespace of the "default" profile, each with the rules it breaks as
an oracle that does not call the rule functions: labelled images and placement written out by hand."""

from typing import Any

from hypothesis import strategies as st
from policy_fixtures import JURISDICTION_LABEL, REGION_LABEL, make_container, make_pod_spec

APPROVED = [
    "registry.factory.internal/app:1",
    "registry.factory.internal/team/model@sha256:" + "cd" * 32,
    "Registry.Factory.Internal/upper:2",
]
FOREIGN = [
    "nginx",
    "nginx:1.27",
    "library/nginx",
    "docker.io/library/nginx:1",
    "ghcr.io/someone/tool:3",
    "registry.factory.internal.evil.io/app:1",
    "evil.io/registry.factory.internal/app",
    "registry.factory.internal:5000/app",
    "registry-factory-internal/app",
    "localhost/app",
    "registry.factory.internalx/app",
    "xregistry.factory.internal/app",
]
INSIDE = {REGION_LABEL: ["de-fra", "de-ber"], JURISDICTION_LABEL: ["DE"]}
OUTSIDE = {REGION_LABEL: ["fr-par", "us-east-1"], JURISDICTION_LABEL: ["FR", "US"]}
Case = tuple[dict[str, Any], set[str]]
# Valid sources of each kind (the API server validates a volume before our policies see it).
ALLOWED_VOLUMES = {
    "configMap": {"name": "settings"},
    "secret": {"secretName": "token"},
    "emptyDir": {},
    "projected": {"sources": []},
    "downwardAPI": {"items": []},
}
OTHER_VOLUMES = {
    "csi": {"driver": "evil.example.com"},
    "nfs": {"server": "10.0.0.1", "path": "/"},
    "iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.2001-04.com.example:disk", "lun": 0},
}


@st.composite
def containers(draw: st.DrawFn, prefix: str, count: tuple[int, int]) -> tuple[list[dict[str, Any]], set[str]]:
    made, broken = [], set()
    for i in range(draw(st.integers(*count))):
        foreign = draw(st.booleans())
        image = draw(st.sampled_from(FOREIGN if foreign else APPROVED))
        fields: dict[str, Any] = {}
        if draw(st.booleans()):
            host_port = draw(st.sampled_from([0, 0, 80, 8080]))
            fields["ports"] = [{"containerPort": 8080, **({"hostPort": host_port} if host_port else {})}]
            broken |= {"host-escape/host-port"} if host_port else set()
        container = make_container(f"{prefix}{i}", image, **fields)
        if draw(st.integers(0, 9)) == 0:
            container["securityContext"] = {**container["securityContext"], "privileged": True}
            broken.add("host-escape/privileged")
        broken |= {"air-gap/image-registry"} if foreign else set()
        made.append(container)
    return made, broken


@st.composite
def node_expression(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A required node-affinity expression, and whether it reaches outside the jurisdiction."""
    key = draw(st.sampled_from([REGION_LABEL, JURISDICTION_LABEL, "aifactory.dev/pool"]))
    operator = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    if key == "aifactory.dev/pool":
        values, outside = ["h100"], False
    else:
        inside = draw(st.lists(st.sampled_from(INSIDE[key]), min_size=1, max_size=2))
        foreign = draw(st.lists(st.sampled_from(OUTSIDE[key]), max_size=1))
        values = inside + foreign
        outside = (operator == "In" and bool(foreign)) or operator == "DoesNotExist"
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        expression["values"] = values
    return expression, outside


@st.composite
def generated_pods(draw: st.DrawFn) -> Case:
    """A restricted pod with random images, host settings and placement; the rules it breaks."""
    spec = make_pod_spec()
    spec["containers"], broken = draw(containers("c", (1, 3)))
    init, init_broken = draw(containers("i", (0, 2)))
    broken |= init_broken
    if init:
        spec["initContainers"] = init
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if draw(st.integers(0, 11)) == 0:
            spec[field] = True
            broken.add("host-escape/host-namespace")
    if draw(st.integers(0, 9)) == 0:
        spec["volumes"] = [{"name": "host", "hostPath": {"path": "/var"}}]
        broken |= {"host-escape/host-path", "allow-list/volume-type"}
    source = draw(st.sampled_from([*ALLOWED_VOLUMES, *OTHER_VOLUMES]))
    body = {**ALLOWED_VOLUMES, **OTHER_VOLUMES}[source]
    spec["volumes"] = [*spec.get("volumes", []), {"name": "data", source: body}]
    broken |= {"allow-list/volume-type"} if source in OTHER_VOLUMES else set()
    if draw(st.integers(0, 11)) == 0:
        spec["nodeName"] = "some-node"
        broken.add("data-locality/node-name")
    if draw(st.booleans()):
        key = draw(st.sampled_from([REGION_LABEL, JURISDICTION_LABEL]))
        outside = draw(st.booleans())
        spec["nodeSelector"] = {key: draw(st.sampled_from((OUTSIDE if outside else INSIDE)[key]))}
        broken |= {"data-locality/node-affinity"} if outside else set()
    if draw(st.booleans()):
        expressions = draw(st.lists(node_expression(), min_size=1, max_size=3))
        terms = [{"matchExpressions": [e for e, _ in expressions]}]
        spec["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
        }
        broken |= {"data-locality/node-affinity"} if any(o for _, o in expressions) else set()
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "generated"}, "spec": spec}, broken
