"""The sovereignty rules as pure functions, judged on the shared fixtures and on edge cases."""

import pytest
from policy_fixtures import FIXTURES, PROFILES, make_container, make_pod

from aifactory_operator.api.v1alpha1.aifactory import Sovereignty
from aifactory_operator.policy.airgap import registry_host
from aifactory_operator.policy.data_use import DataUse, check_mounted_data
from aifactory_operator.policy.object_rules import check_object
from builders import make_factory, make_pool, make_tenant


def profile(name: str) -> Sovereignty:
    return Sovereignty.model_validate(PROFILES[name])


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.id for f in FIXTURES])
def test_each_fixture_breaks_exactly_the_rules_it_names(fixture):
    found = check_object(fixture.obj, profile(fixture.profile))
    assert {v.rule for v in found} == fixture.rules


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("nginx", "docker.io"),
        ("library/nginx:1", "docker.io"),
        ("registry.factory.internal/app:1", "registry.factory.internal"),
        ("registry.factory.internal:5000/app", "registry.factory.internal:5000"),
        ("localhost/app", "localhost"),
        ("Registry.Factory.Internal/app", "registry.factory.internal"),
        ("registry.factory.internal.evil.io/app", "registry.factory.internal.evil.io"),
        ("evil/registry.factory.internal/app", "docker.io"),
        ("registry.factory.internal@sha256:" + "0" * 64, "docker.io"),
    ],
)
def test_the_registry_is_the_first_component_only_when_it_looks_like_a_host(image, host):
    assert registry_host(image) == host


def test_an_air_gapped_factory_without_registries_admits_no_image():
    sovereignty = Sovereignty.model_validate({"jurisdiction": "DE", "regions": ["de-fra"]})
    [violation] = check_object(make_pod(), sovereignty)
    assert violation.rule == "air-gap/image-registry"
    assert "allowedRegistries (none)" in violation.message


def test_every_refusal_names_the_field_and_the_fix():
    pod = make_pod(containers=[make_container(image="nginx", ports=[{"containerPort": 1, "hostPort": 1}])])
    found = check_object(pod, profile("default"))
    assert [str(v) for v in found] == [
        "spec.containers[name=main].image: image 'nginx' comes from registry 'docker.io', which is not in"
        " the factory's allowedRegistries (registry.factory.internal); mirror it into an allowed registry"
        " [air-gap/image-registry]",
        "spec.containers[name=main].ports: hostPort opens a port on the node; remove it and expose the pod"
        " through a Service [host-escape/host-port]",
    ]


def test_an_annotation_does_not_opt_a_pod_out():
    pod = make_pod(hostNetwork=True)
    pod["metadata"]["annotations"] = {
        "aifactory.dev/policy": "disabled",
        "policy.aifactory.dev/exempt": "true",
    }
    assert [v.rule for v in check_object(pod, profile("default"))] == ["host-escape/host-namespace"]


def factory_with_levels():
    pools = [make_pool("h100", classification="confidential"), make_pool("l40s", classification="internal")]
    return make_factory(pools=pools, tenants=[make_tenant(clearance="confidential")])


def mounting(claim: str, **spec) -> dict:
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return make_pod(volumes=volumes, **spec)


def test_a_pod_mounting_data_of_another_jurisdiction_is_refused():
    factory = factory_with_levels()
    uses = {"dataset-census": DataUse("", "FR", "internal")}
    [violation] = check_mounted_data(mounting("dataset-census"), factory, factory.spec.tenants[0], uses)
    assert violation.rule == "data-locality/dataset-jurisdiction"
    assert violation.path == "spec.volumes[name=data].persistentVolumeClaim"


def test_a_pod_mounting_data_above_the_tenants_clearance_is_refused():
    factory = factory_with_levels()
    uses = {"dataset-census": DataUse("", "DE", "secret")}
    found = check_mounted_data(mounting("dataset-census"), factory, factory.spec.tenants[0], uses)
    assert [v.rule for v in found] == ["clearance/dataset"]


def test_a_pod_in_a_pool_classified_below_the_data_is_refused():
    factory = factory_with_levels()
    uses = {"dataset-census": DataUse("", "DE", "confidential")}
    pod = mounting("dataset-census", nodeSelector={"aifactory.dev/pool": "l40s"})
    found = check_mounted_data(pod, factory, factory.spec.tenants[0], uses)
    assert [v.rule for v in found] == ["clearance/pool"]
    assert "the classification of pool 'l40s'" in found[0].message


def test_claims_that_belong_to_no_dataset_are_not_judged():
    factory = factory_with_levels()
    uses = {"dataset-census": DataUse("", "FR", "secret")}
    assert check_mounted_data(mounting("scratch"), factory, factory.spec.tenants[0], uses) == []
