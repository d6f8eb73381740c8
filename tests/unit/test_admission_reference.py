"""The indexed admission (free-GPU buckets, per-domain rankings, memoised unplaceable shapes) decides
exactly as a plain scan of every node for every job would: same grants, same reasons, same queue
positions."""

from collections import Counter, defaultdict

from hypothesis import given, settings
from test_admission import NOW, jobs_strategy, nodes_strategy, quota_strategy

from aifactory_operator.reconcile.admission import (
    Decision,
    Grant,
    NodeSlot,
    Request,
    admit,
    queue_order,
)


def scan_fitting(request: Request, nodes: list[NodeSlot], free: dict[str, int]) -> list[NodeSlot]:
    fitting = [n for n in nodes if n.pool == request.pool and free[n.name] >= request.gpus_per_node]
    return sorted(fitting, key=lambda n: (free[n.name], n.name))


def scan_place(request: Request, nodes: list[NodeSlot], free: dict[str, int]) -> Grant | None:
    fitting, level = scan_fitting(request, nodes, free), request.topology_level
    if len(fitting) < request.nodes:
        return None
    groups: dict[str, list[NodeSlot]] = defaultdict(list)
    for node in fitting:
        groups[node.domains.get(level, node.name)].append(node)
    if request.topology_mode == "none":
        chosen = fitting[: request.nodes]
    elif whole := [ns for ns in groups.values() if len(ns) >= request.nodes]:
        key = lambda ns: (len(ns), sum(free[n.name] for n in ns), ns[0].domains.get(level, ""))  # noqa: E731
        chosen = min(whole, key=key)[: request.nodes]
    elif request.topology_mode == "required":
        return None
    elif within := scan_within_one_above(request, fitting, free):
        chosen = within
    else:
        chosen = spread(list(groups.values()), level, request.nodes)
    chosen = chosen[: request.nodes]
    return Grant([n.name for n in chosen], sorted({n.domains.get(level, n.name) for n in chosen}))


def spread(groups: list[list[NodeSlot]], level: str, nodes: int) -> list[NodeSlot]:
    chosen: list[NodeSlot] = []
    for ns in sorted(groups, key=lambda ns: (-len(ns), ns[0].domains.get(level, ""))):
        chosen.extend(ns[: nodes - len(chosen)])
    return chosen


def scan_within_one_above(request: Request, fitting: list[NodeSlot], free: dict[str, int]) -> list[NodeSlot]:
    """A preferred NVLink-domain gang in no single NVLink domain: the tightest rack that holds it."""
    if request.topology_level != "nvlinkDomain":
        return []
    racks: dict[str, list[NodeSlot]] = defaultdict(list)
    for node in fitting:
        racks[node.domains.get("rack", node.name)].append(node)
    holding = [ns for ns in racks.values() if len(ns) >= request.nodes]
    if not holding:
        return []
    key = lambda ns: (len(ns), sum(free[n.name] for n in ns), ns[0].domains.get("rack", ""))  # noqa: E731
    inner: dict[str, list[NodeSlot]] = defaultdict(list)
    for node in min(holding, key=key):
        inner[node.domains.get("nvlinkDomain", node.name)].append(node)
    return spread(list(inner.values()), "nvlinkDomain", request.nodes)


def scan_explain(request: Request, nodes: list[NodeSlot], free: dict[str, int]) -> str:
    fitting, level = scan_fitting(request, nodes, free), request.topology_level
    shape = f"{request.gpus} {request.product} GPUs ({request.nodes} x {request.gpus_per_node})"
    if request.topology_mode == "required":
        largest = max(Counter(n.domains.get(level, n.name) for n in fitting).values(), default=0)
        word = {"nvlinkDomain": "NVLink domain", "rack": "rack"}.get(level, level)
        return f"waiting for {shape} in one {word}; largest free block has {largest * request.gpus_per_node}"
    return f"waiting for {shape}; {len(fitting)} nodes of pool '{request.pool}' have {request.gpus_per_node} GPUs free"


def scan_admit(requests: list[Request], nodes: list[NodeSlot], quota_left: dict) -> Decision:
    """Admission as first written: every job scans every node, also to word why it waits."""
    free, quota, decision = {n.name: n.free for n in nodes}, dict(quota_left), Decision()
    blocked: dict[str, str] = {}
    for request in queue_order(requests):
        left = quota.get((request.tenant, request.product), 0)
        if request.pool in blocked:
            decision.waiting[request.key] = "behind"
        elif left < request.gpus:
            decision.waiting[request.key] = "quota"
        elif grant := scan_place(request, nodes, free):
            for name in grant.nodes:
                free[name] -= request.gpus_per_node
            quota[(request.tenant, request.product)] -= request.gpus
            decision.admitted[request.key] = grant
            continue
        else:
            decision.waiting[request.key] = scan_explain(request, nodes, free)
            if request.waiting_since and (NOW - request.waiting_since).total_seconds() >= 300:
                blocked[request.pool] = request.key
        decision.positions[request.key] = len(decision.positions) + 1
    return decision


def kind_of(reason: str) -> str:
    if reason.startswith("waiting behind"):
        return "behind"
    if reason.startswith("waiting for quota"):
        return "quota"
    return reason


@settings(max_examples=400, deadline=None)
@given(jobs_strategy, nodes_strategy, quota_strategy)
def test_indexed_admission_decides_as_a_plain_scan(jobs, nodes, quota):
    fast = admit(jobs, nodes, quota, now=NOW, starvation_seconds=300)
    slow = scan_admit(jobs, nodes, quota)
    assert fast.admitted == slow.admitted
    assert fast.positions == slow.positions
    assert {k: kind_of(v) for k, v in fast.waiting.items()} == slow.waiting


def test_a_shape_that_waits_again_after_an_admission_is_explained_afresh():
    nodes = [NodeSlot("n0", "p", 8), NodeSlot("n1", "p", 8)]
    big = {"tenant": "a", "pool": "p", "product": "H100", "nodes": 3, "gpus_per_node": 8}
    jobs = [
        Request("a", created="1", **big),
        Request("b", created="2", **{**big, "nodes": 1}),
        Request("c", created="3", **big),
    ]
    decision = admit(jobs, nodes, {("a", "H100"): 100}, now=NOW, starvation_seconds=300)
    assert list(decision.admitted) == ["b"]
    assert "2 nodes of pool 'p' have 8 GPUs free" in decision.waiting["a"]
    assert "1 nodes of pool 'p' have 8 GPUs free" in decision.waiting["c"]
