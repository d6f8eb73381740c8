"""Specs the operator cannot act on are Stalled with the field path and the fix."""

import pytest

from aifactory_operator.api.v1alpha1 import AIFactory
from aifactory_operator.reconcile.parsing import InvalidSpec, format_path, parse_resource
from aifactory_operator.reconcile.validation import find_factory_problems
from builders import make_factory, make_factory_body, make_pool, make_tenant


def test_paths_are_written_as_kubectl_shows_them():
    assert format_path(("spec", "nodePools", 1, "gpusPerNode")) == "spec.nodePools[1].gpusPerNode"


def test_a_wrong_field_is_reported_with_its_path():
    body = make_factory_body(pools=[make_pool(), make_pool("b", gpusPerNode=99)])
    with pytest.raises(InvalidSpec) as caught:
        parse_resource(AIFactory, body)
    assert caught.value.outcome.state == "stalled"
    assert "spec.nodePools[1].gpusPerNode" in caught.value.outcome.message


def test_a_namespace_shared_by_two_tenants_is_a_problem():
    factory = make_factory(tenants=[make_tenant("a", namespaces=["x"]), make_tenant("b", namespaces=["x"])])
    problems = find_factory_problems(factory)
    assert problems[0].startswith(
        "spec.tenants[0].namespaces[0]: namespace 'x' also belongs to another tenant"
    )


def test_quota_for_a_product_no_pool_offers_names_the_products_there_are():
    tenant = make_tenant(gpuQuota=[{"product": "NVIDIA-B200", "gpus": 8}])
    [problem] = find_factory_problems(make_factory(tenants=[tenant]))
    assert problem == (
        "spec.tenants[0].gpuQuota[0].product: no node pool offers 'NVIDIA-B200';"
        " use one of ['NVIDIA-H100-80GB-HBM3']"
    )


def test_a_sound_factory_has_no_problems():
    tenant = make_tenant(gpuQuota=[{"product": "NVIDIA-H100-80GB-HBM3", "gpus": 8}])
    assert find_factory_problems(make_factory(tenants=[tenant])) == []
