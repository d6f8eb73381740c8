"""Generated pods against the live API server: random nodeSelectors, required node-affinity terms
and tolerations, each judged by the independent oracle (tests/placement_oracle.py). Every pod the
oracle says can reach a node outside the jurisdiction, or a pool the tenant may not use, must be
refused by a server-side dry-run create; an admitted pod is judged as stored (after any mutation)."""

import json
import logging

import pytest
from attack_range import factory_body, unique
from catalogue_objects import HOST_KEY, J_KEY, POOL_KEY, REGION_KEY, pod, pod_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as with_seed
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException
from placement_oracle import escapes, make_universe

from aifactory_operator.constants import API_VERSION
from conftest import wait_for

pytestmark = pytest.mark.compat
LOG = logging.getLogger("attacks")
UNIVERSE = make_universe()
EXAMPLES = 40
SEEDS = (19, 1919, 20260)
ALLOWED = {"citizen": {"l40s"}, "research": {"h100", "l40s"}}
VALUES = {
    J_KEY: ["DE", "FR", "AT"],
    POOL_KEY: ["h100", "l40s", "foreign"],
    REGION_KEY: ["de-fra", "de-ber", "fr-par"],
    HOST_KEY: ["de-l40s-de-ber-0", "fr-l40s-fr-par-0", "nj-np-nr-1"],
    "disk": ["ssd", "hdd"],
}


def expression(key: str) -> st.SearchStrategy[dict]:
    values = st.lists(st.sampled_from(VALUES[key]), min_size=1, max_size=2, unique=True)
    return st.one_of(
        st.builds(
            lambda v, o: {"key": key, "operator": o, "values": v}, values, st.sampled_from(["In", "NotIn"])
        ),
        st.builds(lambda o: {"key": key, "operator": o}, st.sampled_from(["Exists", "DoesNotExist"])),
        st.builds(
            lambda n, o: {"key": key, "operator": o, "values": [str(n)]},
            st.integers(0, 5),
            st.sampled_from(["Gt", "Lt"]),
        ),
    )


def term() -> st.SearchStrategy[dict]:
    expressions = st.lists(st.sampled_from(sorted(VALUES)).flatmap(expression), min_size=0, max_size=3)
    names = st.sampled_from(VALUES[HOST_KEY]).map(
        lambda n: [{"key": "metadata.name", "operator": "In", "values": [n]}]
    )
    fields = st.one_of(st.just([]), names)
    return st.builds(
        lambda e, f: {k: v for k, v in (("matchExpressions", e), ("matchFields", f)) if v},
        expressions,
        fields,
    ).filter(bool)


def placement() -> st.SearchStrategy[dict]:
    selector = st.dictionaries(st.sampled_from(sorted(VALUES)), st.just(None), max_size=3).flatmap(
        lambda keys: st.fixed_dictionaries({k: st.sampled_from(VALUES[k]) for k in keys})
    )
    affinity = st.one_of(st.none(), st.lists(term(), min_size=1, max_size=3))
    tolerations = st.sampled_from(
        [
            [],
            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            [{"operator": "Exists"}],
        ]
    )

    def build(nodes: dict, terms: list | None, tolerate: list) -> dict:
        spec: dict = {"tolerations": tolerate} if tolerate else {}
        if nodes:
            spec["nodeSelector"] = nodes
        if terms:
            spec["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
                }
            }
        return spec

    return st.builds(build, selector, affinity, tolerations)


@pytest.fixture(scope="module")
def tenants(kube, kubectl, operator):
    name = unique("gen")
    namespaces = {"citizen": unique("citizen"), "research": unique("research")}
    groups = {t: unique(f"{t}-admins") for t in namespaces}
    kube.apply(factory_body(name, namespaces["citizen"], namespaces["research"], groups))
    kubectl("wait", "--for=condition=Ready", f"aifactory/{name}", "--timeout=120s")
    yield namespaces
    kube.delete(API_VERSION, "AIFactory", name)
    wait_for(lambda: kube.get(API_VERSION, "AIFactory", name) is None, "the factory to go")
    for namespace in namespaces.values():
        kube.delete("v1", "Namespace", namespace)


def judge(kube, namespace: str, tenant: str, spec: dict) -> tuple[str, set[str]]:
    """('refused' | 'admitted' | 'invalid', what the admitted pod as stored can still reach)."""
    body = pod(unique("gen"), pod_spec(None, **spec))
    body["metadata"]["namespace"] = namespace
    try:
        stored = kube.resource("v1", "Pod").create(body=body, namespace=namespace, dry_run="All").to_dict()
    except ApiException as error:
        message = str(json.loads(error.body).get("message", ""))
        ours = "ValidatingAdmissionPolicy" in message or "admission webhook" in message or "[" in message
        return ("refused" if ours else "invalid:" + message[:200]), set()
    return "admitted", escapes(stored["spec"], "DE", ALLOWED[tenant], UNIVERSE)


@pytest.mark.parametrize("tenant", ["citizen", "research"])
@pytest.mark.parametrize("seed", SEEDS)
def test_every_generated_pod_that_can_escape_is_refused(kube, tenants, tenant, seed):
    results: list[tuple[dict, str, set[str], set[str]]] = []

    @with_seed(seed)
    @settings(max_examples=EXAMPLES, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(placement())
    def run(spec: dict) -> None:
        before = escapes(spec, "DE", ALLOWED[tenant], UNIVERSE)
        verdict, after = judge(kube, tenants[tenant], tenant, spec)
        results.append((spec, verdict, before, after))

    run()
    refused = [r for r in results if r[1] == "refused"]
    admitted = [r for r in results if r[1] == "admitted"]
    invalid = [r for r in results if r[1].startswith("invalid")]
    escaping = [r for r in admitted if r[3]]
    LOG.warning(
        "generated pods tenant=%s seed=%d: %d refused, %d admitted (%d could escape as generated, %d as stored), %d invalid",
        tenant,
        seed,
        len(refused),
        len(admitted),
        sum(1 for r in admitted if r[2]),
        len(escaping),
        len(invalid),
    )
    assert invalid == [], invalid[:3]
    assert escaping == [], [(r[0], sorted(r[3])) for r in escaping[:5]]
