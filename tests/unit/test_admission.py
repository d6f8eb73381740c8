"""Gang admission, over random pools, quotas and job mixes (hypothesis) and in named stories."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory_operator.reconcile.admission import NodeSlot, Request, admit, queue_order

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCT = "H100"


def make_nodes(pool: str, count: int, gpus: int = 8, per_rack: int = 4) -> list[NodeSlot]:
    return [
        NodeSlot(
            f"{pool}-{i}",
            pool,
            gpus,
            {"rack": f"{pool}-r{i // per_rack}", "nvlinkDomain": f"{pool}-n{i // 2}"},
        )
        for i in range(count)
    ]


def make_job(key: str, nodes: int = 1, gpus: int = 8, **fields) -> Request:
    defaults = {"tenant": "a", "pool": "p", "product": PRODUCT, "created": key, "waiting_since": NOW}
    return Request(key=key, nodes=nodes, gpus_per_node=gpus, **{**defaults, **fields})


QUOTA = {("a", PRODUCT): 10_000, ("b", PRODUCT): 10_000}

jobs_strategy = st.lists(
    st.builds(
        lambda i, n, g, prio, tenant, mode, level, age: make_job(
            f"j{i:03d}",
            n,
            g,
            priority=prio,
            tenant=tenant,
            topology_mode=mode,
            topology_level=level,
            waiting_since=NOW - timedelta(seconds=age),
        ),
        st.integers(0, 999),
        st.integers(1, 6),
        st.sampled_from([1, 2, 4, 8]),
        st.integers(0, 3),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["none", "preferred", "required"]),
        st.sampled_from(["rack", "nvlinkDomain"]),
        st.integers(0, 600),
    ),
    max_size=25,
    unique_by=lambda r: r.key,
)
nodes_strategy = st.builds(
    lambda count, frees: [
        NodeSlot(n.name, n.pool, frees[i % len(frees)], n.domains)
        for i, n in enumerate(make_nodes("p", count))
    ],
    st.integers(0, 16),
    st.lists(st.sampled_from([0, 2, 4, 8]), min_size=1, max_size=16),
)
quota_strategy = st.fixed_dictionaries(
    {("a", PRODUCT): st.integers(0, 64), ("b", PRODUCT): st.integers(0, 64)}
)


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, nodes_strategy, quota_strategy)
def test_never_overcommits_a_node_or_a_quota_and_never_places_partially(jobs, nodes, quota):
    decision = admit(jobs, nodes, quota, now=NOW, starvation_seconds=300)
    by_key = {j.key: j for j in jobs}
    used = Counter()
    for key, grant in decision.admitted.items():
        job = by_key[key]
        assert len(grant.nodes) == job.nodes == len(set(grant.nodes)), "one distinct node per worker"
        for name in grant.nodes:
            used[name] += job.gpus_per_node
    for node in nodes:
        assert used[node.name] <= node.free
    for tenant in ("a", "b"):
        spent = sum(by_key[k].gpus for k in decision.admitted if by_key[k].tenant == tenant)
        assert spent <= quota[(tenant, PRODUCT)]
    assert set(decision.admitted) | set(decision.waiting) == set(by_key)
    assert not set(decision.admitted) & set(decision.waiting)


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, nodes_strategy)
def test_required_jobs_never_span_two_domains(jobs, nodes):
    decision = admit(jobs, nodes, QUOTA, now=NOW, starvation_seconds=300)
    domains = {n.name: n.domains for n in nodes}
    for key, grant in decision.admitted.items():
        job = next(j for j in jobs if j.key == key)
        if job.topology_mode == "required":
            assert len({domains[n][job.topology_level] for n in grant.nodes}) == 1


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, nodes_strategy)
def test_a_starved_head_blocks_everything_behind_it_in_its_pool(jobs, nodes):
    decision = admit(jobs, nodes, QUOTA, now=NOW, starvation_seconds=300)
    ordered = queue_order(jobs)
    for i, job in enumerate(ordered):
        starved = (NOW - job.waiting_since).total_seconds() >= 300
        if (
            job.key in decision.waiting
            and starved
            and "capacity" not in decision.waiting[job.key]
            and "quota" not in decision.waiting[job.key]
        ):
            assert not [later.key for later in ordered[i + 1 :] if later.key in decision.admitted]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=20), st.integers(0, 12))
def test_identical_jobs_are_admitted_in_priority_order(priorities, node_count):
    jobs = [make_job(f"j{i:02d}", 1, 8, priority=p) for i, p in enumerate(priorities)]
    decision = admit(jobs, make_nodes("p", node_count), QUOTA, now=NOW, starvation_seconds=300)
    ordered = queue_order(jobs)
    admitted = [j.key for j in ordered if j.key in decision.admitted]
    assert admitted == [j.key for j in ordered[: len(admitted)]], "a prefix of the queue"
    assert len(admitted) == min(len(jobs), node_count)


def test_a_job_is_admitted_whole_or_not_at_all():
    decision = admit([make_job("big", nodes=5)], make_nodes("p", 4), QUOTA, now=NOW, starvation_seconds=300)
    assert decision.admitted == {}
    assert decision.waiting["big"] == "waiting for 40 H100 GPUs (5 x 8); 4 nodes of pool 'p' have 8 GPUs free"


def test_required_topology_explains_the_largest_free_block():
    nodes = make_nodes("p", 8, per_rack=4)
    nodes = [
        NodeSlot(n.name, n.pool, 0 if n.name in ("p-0", "p-1", "p-2", "p-4", "p-5") else 8, n.domains)
        for n in nodes
    ]
    job = make_job("gang", nodes=2, topology_mode="required", topology_level="rack")
    decision = admit(
        [make_job("gang3", nodes=3, topology_mode="required")], nodes, QUOTA, now=NOW, starvation_seconds=300
    )
    assert (
        decision.waiting["gang3"] == "waiting for 24 H100 GPUs (3 x 8) in one rack; largest free block has 16"
    )
    grant = admit([job], nodes, QUOTA, now=NOW, starvation_seconds=300).admitted["gang"]
    assert grant.nodes == ["p-6", "p-7"] and grant.domains == ["p-r1"]


def test_tightest_fit_keeps_the_large_block_free():
    nodes = make_nodes("p", 8, per_rack=4)
    nodes = [NodeSlot(n.name, n.pool, 0 if n.name in ("p-0", "p-1") else 8, n.domains) for n in nodes]
    grant = admit(
        [make_job("pair", nodes=2, topology_mode="required")], nodes, QUOTA, now=NOW, starvation_seconds=300
    )
    assert grant.admitted["pair"].domains == ["p-r0"], "the half-used rack, not the empty one"


def test_preferred_uses_as_few_domains_as_it_can():
    nodes = make_nodes("p", 8, per_rack=4)
    grant = admit(
        [make_job("six", nodes=6, topology_mode="preferred")], nodes, QUOTA, now=NOW, starvation_seconds=300
    )
    assert len(grant.admitted["six"].domains) == 2


def test_a_preferred_gang_too_big_for_one_nvlink_domain_stays_within_one_rack():
    # Racks of 4 nodes, NVLink domains of 2; the first rack has one node taken.
    nodes = [NodeSlot(n.name, n.pool, 0 if n.name == "p-0" else 8, n.domains) for n in make_nodes("p", 8)]
    job = make_job("three", nodes=3, topology_mode="preferred", topology_level="nvlinkDomain")
    grant = admit([job], nodes, QUOTA, now=NOW, starvation_seconds=300).admitted["three"]
    assert grant.nodes == ["p-2", "p-3", "p-1"], "the tightest rack, its fullest NVLink domain first"
    assert grant.domains == ["p-n0", "p-n1"]
    # Too big for any rack: as few NVLink domains as possible, wherever they are.
    five = make_job("five", nodes=5, topology_mode="preferred", topology_level="nvlinkDomain")
    assert len(admit([five], nodes, QUOTA, now=NOW, starvation_seconds=300).admitted["five"].domains) == 3


def test_a_preferred_gang_on_nodes_short_of_cpu_is_spread_by_the_scanning_path():
    # Racks of 2; p-0 has GPUs but no CPU left, so the indexed choice is passed over for a scan.
    cpu = (("cpu", 1000),)
    nodes = [
        NodeSlot(n.name, n.pool, 8, n.domains, () if n.name == "p-0" else cpu)
        for n in make_nodes("p", 4, per_rack=2)
    ]
    job = make_job("three", nodes=3, topology_mode="preferred", worker=cpu)
    grant = admit([job], nodes, QUOTA, now=NOW, starvation_seconds=300).admitted["three"]
    assert grant.nodes == ["p-2", "p-3", "p-1"] and grant.domains == ["p-r0", "p-r1"]


def test_a_tenant_over_quota_waits_while_another_runs():
    jobs = [make_job("a1", nodes=2, tenant="a"), make_job("b1", nodes=2, tenant="b")]
    decision = admit(
        jobs, make_nodes("p", 8), {("a", PRODUCT): 8, ("b", PRODUCT): 16}, now=NOW, starvation_seconds=300
    )
    assert list(decision.admitted) == ["b1"]
    assert decision.waiting["a1"] == "waiting for quota: tenant 'a' has 8 H100 GPUs left and the job needs 16"


def test_small_jobs_backfill_until_the_head_starves():
    jobs = [make_job("head", nodes=4, priority=5, waiting_since=NOW), make_job("small", nodes=1)]
    fresh = admit(jobs, make_nodes("p", 2), QUOTA, now=NOW, starvation_seconds=300)
    assert list(fresh.admitted) == ["small"]
    starved = admit(jobs, make_nodes("p", 2), QUOTA, now=NOW + timedelta(seconds=301), starvation_seconds=300)
    assert starved.admitted == {}
    assert starved.waiting["small"] == "waiting behind head, which has waited longest"
    assert starved.positions == {"head": 1, "small": 2}


@settings(max_examples=300, deadline=None)
@given(jobs_strategy, nodes_strategy, quota_strategy, st.integers(1, 6))
def test_a_capped_decision_admits_the_first_of_what_an_uncapped_one_would(jobs, nodes, quota, cap):
    whole = admit(jobs, nodes, quota, now=NOW, starvation_seconds=300)
    capped = admit(jobs, nodes, quota, now=NOW, starvation_seconds=300, max_admissions=cap)
    assert list(capped.admitted.items()) == list(whole.admitted.items())[:cap]
    assert capped.capped == (len(whole.admitted) >= cap)
    assert not whole.capped
    assert set(capped.admitted) | set(capped.waiting) == {j.key for j in jobs}
    assert sorted(capped.positions.values()) == list(range(1, len(capped.waiting) + 1))


def test_jobs_past_the_cap_that_fit_say_so_and_those_that_do_not_say_why():
    jobs = [make_job("a"), make_job("b"), make_job("c"), make_job("huge", nodes=9)]
    decision = admit(jobs, make_nodes("p", 4), QUOTA, now=NOW, starvation_seconds=300, max_admissions=2)
    assert list(decision.admitted) == ["a", "b"]
    assert decision.capped
    assert decision.waiting["c"] == "fits; admitted by the next decision (this one admitted 2, its limit)"
    assert decision.waiting["huge"].startswith("waiting for 72 H100 GPUs (9 x 8)")
    assert decision.positions == {"c": 1, "huge": 2}


def test_a_job_short_of_cpu_on_nodes_with_free_gpus_is_told_so():
    cpu_short = NodeSlot("p-0", "p", 8, spare=(("cpu", 4_000), ("memory", 1 << 40)))
    roomy = NodeSlot("p-1", "p", 8, spare=(("cpu", 64_000), ("memory", 1 << 40)))
    job = make_job("big", nodes=2, worker=(("cpu", 16_000), ("memory", 1 << 30)))
    decision = admit([job], [cpu_short, roomy], QUOTA, now=NOW, starvation_seconds=300)
    assert decision.admitted == {}
    assert decision.waiting["big"] == (
        "waiting for 16 H100 GPUs (2 x 8); 2 nodes of pool 'p' have 8 GPUs free,"
        " 1 of them with the cpu a worker requests"
    )


def test_a_small_worker_is_not_held_back_by_a_big_one_of_the_same_gpu_shape():
    node = NodeSlot("p-0", "p", 8, spare=(("cpu", 8_000),))
    big = make_job("a-big", worker=(("cpu", 16_000),), priority=10)
    small = make_job("b-small", worker=(("cpu", 2_000),))
    decision = admit([big, small], [node], QUOTA, now=NOW, starvation_seconds=300)
    assert list(decision.admitted) == ["b-small"]
    assert "0 of them with the cpu a worker requests" in decision.waiting["a-big"]
