"""The per-domain index behind topology-aware admission: which domain it picks, how it follows the
GPUs admission takes, and that it answers as grouping every fitting node would, ties included."""

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st
from test_admission import NOW, make_job
from test_admission_reference import kind_of, scan_admit

from aifactory_operator.reconcile.admission import FreeGPUs, NodeSlot, admit
from aifactory_operator.reconcile.topology_index import DomainIndex


def make_rack(rack: str, frees: list[int], pool: str = "p") -> list[NodeSlot]:
    return [NodeSlot(f"{rack}-{i}", pool, free, {"rack": rack}) for i, free in enumerate(frees)]


def rack_index(nodes: list[NodeSlot]) -> tuple[FreeGPUs, DomainIndex]:
    free = FreeGPUs(nodes)
    return free, free.domains("p", "rack")


def test_the_tightest_whole_domain_has_the_fewest_fitting_nodes():
    _, index = rack_index(make_rack("big", [8, 8, 8]) + make_rack("small", [8, 8]))
    assert index.whole_domain(8, 2) == ["small-0", "small-1"]


def test_between_domains_of_one_size_the_one_with_fewer_free_gpus_wins():
    _, index = rack_index(make_rack("a", [8, 8]) + make_rack("b", [8, 4]))
    assert index.whole_domain(4, 2) == ["b-1", "b-0"]


def test_between_equal_domains_the_label_decides():
    _, index = rack_index(make_rack("b", [8, 8]) + make_rack("a", [8, 8]))
    assert index.whole_domain(8, 2) == ["a-0", "a-1"]


def test_no_whole_domain_when_every_domain_is_too_small():
    _, index = rack_index(make_rack("a", [8, 8]) + make_rack("b", [8, 0]))
    assert index.whole_domain(8, 3) is None


def test_the_index_follows_the_gpus_admission_takes():
    free, index = rack_index(make_rack("a", [8, 8]) + make_rack("b", [8, 8, 8]))
    assert index.whole_domain(8, 2) == ["a-0", "a-1"]
    free.take("a-0", 4)
    assert index.whole_domain(8, 2) == ["b-0", "b-1"]
    assert index.whole_domain(4, 2) == ["a-0", "a-1"]
    free.take("b-2", 8)
    assert index.largest_block(8) == 2


def test_spreading_takes_the_domains_with_most_fitting_nodes_first():
    _, index = rack_index(make_rack("a", [8]) + make_rack("b", [8, 8]) + make_rack("c", [8, 8, 8]))
    assert index.fewest_domains(8, 4) == ["c-0", "c-1", "c-2", "b-0"]


def test_spreading_leaves_the_index_as_it_was():
    _, index = rack_index(make_rack("a", [8]) + make_rack("b", [8, 8]))
    first = index.fewest_domains(8, 3)
    assert index.fewest_domains(8, 3) == first == ["b-0", "b-1", "a-0"]
    assert index.whole_domain(8, 2) == ["b-0", "b-1"]


def test_an_unlabelled_node_is_a_domain_of_its_own():
    nodes = [NodeSlot("x", "p", 8), NodeSlot("y", "p", 8)]
    _, index = rack_index(nodes)
    assert index.largest_block(8) == 1
    assert index.whole_domain(8, 2) is None


def test_unlabelled_nodes_tie_on_an_empty_label_and_then_go_in_best_fit_order():
    # A plain scan ranks an unlabelled node by the label "" (so before "a") and breaks the tie
    # between two of them by best fit: the one with less free first.
    nodes = [NodeSlot("x", "p", 8), NodeSlot("y", "p", 4), NodeSlot("z", "p", 4)]
    _, index = rack_index(nodes + make_rack("a", [8]))
    assert index.fewest_domains(4, 3) == ["y", "z", "x"]


def test_levels_and_pools_are_indexed_only_when_asked_for():
    free = FreeGPUs(make_rack("a", [8, 8]) + make_rack("b", [8], pool="q"))
    assert not any(free.indexes.values())
    free.domains("p", "rack")
    assert {pool: list(levels) for pool, levels in free.indexes.items() if levels} == {"p": ["rack"]}


# Random pools where labels go missing, are empty, or equal another node's name, so that domains
# tie on the label and a node's own name can be a domain of a labelled group too.
NAMES = ["a", "b", "c", "d", "e", "f", "x0", "x1", "x2", "x3", "x4", "x5"]
LABELS = st.one_of(st.none(), st.sampled_from(["", "a", "b", "r0", "r1", "r2"]))

messy_nodes_strategy = st.lists(
    st.builds(
        lambda name, pool, free, rack, nvl: NodeSlot(
            name,
            pool,
            free,
            {level: value for level, value in (("rack", rack), ("nvlinkDomain", nvl)) if value is not None},
        ),
        st.sampled_from(NAMES),
        st.sampled_from(["p", "q"]),
        st.sampled_from([0, 1, 2, 4, 6, 8]),
        LABELS,
        LABELS,
    ),
    max_size=12,
    unique_by=lambda n: n.name,
)
messy_jobs_strategy = st.lists(
    st.builds(
        lambda i, n, g, prio, pool, mode, level: make_job(
            f"j{i:03d}",
            n,
            g,
            priority=prio,
            pool=pool,
            topology_mode=mode,
            topology_level=level,
            waiting_since=NOW,
        ),
        st.integers(0, 999),
        st.integers(1, 5),
        st.sampled_from([1, 2, 4, 8]),
        st.integers(0, 3),
        st.sampled_from(["p", "q"]),
        st.sampled_from(["none", "preferred", "required"]),
        st.sampled_from(["rack", "nvlinkDomain", "zone"]),
    ),
    max_size=25,
    unique_by=lambda r: r.key,
)


@settings(max_examples=400, deadline=None)
@given(messy_jobs_strategy, messy_nodes_strategy)
def test_admission_over_messy_labels_decides_as_a_plain_scan(jobs, nodes):
    quota = {("a", "H100"): 10_000}
    fast = admit(jobs, nodes, quota, now=NOW, starvation_seconds=10_000)
    slow = scan_admit(jobs, nodes, quota)
    assert fast.admitted == slow.admitted
    assert fast.positions == slow.positions
    assert {k: kind_of(v) for k, v in fast.waiting.items()} == slow.waiting


def scan_groups(nodes: list[NodeSlot], free: dict[str, int], gpus: int) -> dict[str, list[NodeSlot]]:
    """The domains at rack level as a plain scan sees them, each with its fitting nodes in best-fit order."""
    groups: dict[str, list[NodeSlot]] = defaultdict(list)
    for node in sorted((n for n in nodes if free[n.name] >= gpus), key=lambda n: (free[n.name], n.name)):
        groups[node.domains.get("rack", node.name)].append(node)
    return groups


@settings(max_examples=300, deadline=None)
@given(
    messy_nodes_strategy,
    st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from([1, 2, 4])), max_size=20),
    st.sampled_from([1, 2, 4]),
)
def test_after_any_takes_the_index_answers_as_grouping_the_fitting_nodes(nodes, takes, gpus):
    nodes = [NodeSlot(n.name, "p", n.free, n.domains) for n in nodes]
    free, index = rack_index(nodes)
    index.ranking(gpus)  # built before the takes, so that it must follow them
    for name, taken in takes:
        if name in free.free and free.free[name] >= taken:
            free.take(name, taken)
    groups = scan_groups(nodes, free.free, gpus)
    assert index.largest_block(gpus) == max(map(len, groups.values()), default=0)
    for wanted in range(1, 5):
        whole = [ns for ns in groups.values() if len(ns) >= wanted]
        key = lambda ns: (len(ns), sum(free.free[n.name] for n in ns), ns[0].domains.get("rack", ""))  # noqa: E731
        expected = [n.name for n in min(whole, key=key)[:wanted]] if whole else None
        assert index.whole_domain(gpus, wanted) == expected
        spread = [
            n.name
            for ns in sorted(groups.values(), key=lambda ns: (-len(ns), ns[0].domains.get("rack", "")))
            for n in ns
        ]
        assert index.fewest_domains(gpus, wanted) == spread[:wanted]
