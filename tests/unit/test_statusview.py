"""`aifactory status` tables, built from hand-made objects as the API server returns them."""

from datetime import UTC, datetime

from aifactory_operator.statusview import (
    format_age,
    format_endpoints,
    format_factories,
    format_pools,
    format_queue,
    format_status,
    format_table,
    format_tenants,
    format_topology,
)
from builders import make_node, make_pool, make_tenant

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
H100 = "NVIDIA-H100-80GB-HBM3"
L40S = "NVIDIA-L40S"


def make_factory_object(name="de-1", *, ready=True, pools=None, tenants=None, status_pools=None):
    pools = pools if pools is not None else [make_pool("h100", nodes=2), make_pool("l40s", gpuProduct=L40S)]
    reported = status_pools if status_pools is not None else []
    return {
        "metadata": {"name": name},
        "spec": {"nodePools": pools, "tenants": tenants or []},
        "status": {
            "gpusReady": sum(p["gpusAllocatable"] for p in reported),
            "gpusDesired": sum(p["nodes"] * p["gpusPerNode"] for p in pools),
            "gpusInUse": sum(p.get("gpusInUse", 0) for p in reported),
            "pools": reported,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "FactoryReady"}
                if ready
                else {"type": "Ready", "status": "False", "reason": "NodesNotReady"}
            ],
        },
    }


def make_job(name, namespace="research", *, phase="Queued", position=None, nodes=2, placed=False, **spec):
    status = {"phase": phase}
    if position is not None:
        status["queuePosition"] = position
    if placed:
        status["placement"] = {"pool": "h100", "nodes": [f"n{i}" for i in range(nodes)]}
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-01-01T11:55:00Z"},
        "spec": {"pool": "h100", "nodes": nodes, "gpusPerNode": 8, **spec},
        "status": status,
    }


def make_endpoint(name, namespace="research", *, ready=1, desired=2, reserved=8, serving=True):
    condition = (
        {"type": "Ready", "status": "True", "reason": "Serving"}
        if serving
        else {"type": "Stalled", "status": "True", "reason": "InsufficientCapacity"}
    )
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"pool": "h100", "model": "llama"},
        "status": {
            "readyReplicas": ready,
            "desiredReplicas": desired,
            "reservedGpus": reserved,
            "url": f"http://{name}.{namespace}.svc:8000",
            "conditions": [condition],
        },
    }


def make_pod(name, node, gpus, *, phase="Running"):
    resources = {"requests": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "metadata": {"name": name, "namespace": "research"},
        "spec": {"nodeName": node, "containers": [{"name": "main", "resources": resources}]},
        "status": {"phase": phase},
    }


def rows(table):
    return [line.split() for line in table.splitlines()[1:]]


def test_a_table_pads_every_column_to_its_widest_cell():
    table = format_table(["NAME", "GPUS"], [["a-long-name", 8], ["b", None]])
    assert table.splitlines() == ["NAME         GPUS", "a-long-name  8", "b            -"]


def test_an_empty_table_says_none():
    assert format_table(["NAME"], []) == "(none)"


def test_factories_show_readiness_gpus_pools_and_tenants():
    reported = [{"name": "h100", "nodesReady": 2, "gpusAllocatable": 16, "gpusInUse": 8}]
    factory = make_factory_object(status_pools=reported, tenants=[make_tenant("research")])
    waiting = make_factory_object("fr-1", ready=False)
    assert rows(format_factories([factory, waiting])) == [
        ["de-1", "True", "16/32", "8", "2", "1"],
        ["fr-1", "False", "(NodesNotReady)", "0/32", "0", "2", "0"],
    ]


def test_pools_show_status_numbers_against_the_spec():
    reported = [{"name": "h100", "nodesReady": 1, "gpusAllocatable": 8, "gpusInUse": 8}]
    table = format_pools([make_factory_object(status_pools=reported)])
    assert rows(table) == [
        ["de-1", "h100", H100, "1/2", "8", "8"],
        ["de-1", "l40s", L40S, "0/2", "0", "0"],
    ]


def test_gpus_in_use_are_grouped_by_rack_and_nvlink_domain():
    topology = {"aifactory.dev/rack": "rack-0", "aifactory.dev/nvlink-domain": "nvl-0"}
    other = {"aifactory.dev/rack": "rack-1", "aifactory.dev/nvlink-domain": "nvl-1"}
    nodes = [
        make_node("n0", labels=topology),
        make_node("n1", labels=topology),
        make_node("n2", labels=other, ready=False),
        make_node("foreign", ours=False),
    ]
    pods = [make_pod("w0", "n0", 8), make_pod("w1", "n1", 4), make_pod("done", "n1", 4, phase="Succeeded")]
    assert rows(format_topology(nodes, pods)) == [
        ["de-1", "h100", "rack-0", "nvl-0", "2/2", "16", "12"],
        ["de-1", "h100", "rack-1", "nvl-1", "0/1", "0", "0"],
    ]


def test_tenants_show_quota_per_product_and_what_placed_work_holds():
    tenant = make_tenant("research", gpuQuota=[{"product": H100, "gpus": 32}, {"product": L40S, "gpus": 8}])
    factory = make_factory_object(tenants=[tenant])
    jobs = [
        make_job("running", phase="Running", placed=True),
        make_job("waiting", position=1),
        make_job("done", phase="Succeeded", placed=True),
    ]
    endpoints = [make_endpoint("chat", reserved=8)]
    assert rows(format_tenants([factory], jobs, endpoints)) == [
        ["de-1", "research", "research", H100, "32", "24"],
        ["de-1", "research", "research", L40S, "8", "0"],
    ]


def test_the_queue_lists_waiting_jobs_in_order_then_the_admitted_and_leaves_out_the_finished():
    jobs = [
        make_job("second", position=2, priority=5),
        make_job("running", phase="Running", placed=True, nodes=4),
        make_job("first", position=1),
        make_job("done", phase="Succeeded"),
    ]
    assert rows(format_queue(jobs, NOW)) == [
        ["research/first", "Queued", "1", "16", "0", "5m"],
        ["research/second", "Queued", "2", "16", "5", "5m"],
        ["research/running", "Running", "-", "32", "0", "5m"],
    ]


def test_endpoints_show_replicas_url_and_what_their_conditions_say():
    table = format_endpoints([make_endpoint("chat"), make_endpoint("code", ready=0, serving=False)])
    assert rows(table) == [
        ["research/chat", "1/2", "http://chat.research.svc:8000", "Serving"],
        ["research/code", "0/2", "http://code.research.svc:8000", "Stalled:", "InsufficientCapacity"],
    ]


def test_ages_read_like_kubectl():
    assert [
        format_age(stamp, NOW)
        for stamp in ("2026-01-01T11:59:15Z", "2026-01-01T11:58:00Z", "2026-01-01T09:00:00Z", None)
    ] == ["45s", "2m", "3h", "-"]
    assert format_age("2025-12-25T12:00:00Z", NOW) == "7d"


def test_the_whole_status_has_every_section_even_when_the_cluster_is_empty():
    text = format_status([], [], [], [], [], now=NOW)
    titles = [line for line in text.splitlines() if line and line != "(none)"]
    assert titles == [
        "Factories",
        "Pools",
        "GPUs by topology domain",
        "Tenants",
        "Training queue",
        "Model endpoints",
    ]
