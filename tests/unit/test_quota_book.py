"""Borrowing and lending between tenants (reconcile/quota_book.py), and admission with it: the
rules stated as properties over generated cohorts, with a few worked cases."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory_operator.api.v1alpha1.aifactory import AIFactory
from aifactory_operator.reconcile.admission import Fairness, NodeSlot, Request, admit
from aifactory_operator.reconcile.quota_book import QuotaBook, Share
from aifactory_operator.reconcile.training import fairness_of, quota_book
from builders import make_factory_body, make_tenant

NOW = datetime(2026, 12, 3, tzinfo=UTC)
P = "H100"


def book(**shares: Share) -> QuotaBook:
    return QuotaBook({(tenant, P): share for tenant, share in shares.items()})


def test_a_tenant_borrows_what_another_leaves_idle_up_to_its_limit():
    quota = book(research=Share(8, borrowing_limit=16), citizen=Share(16))
    assert quota.room(("research", P)) == 8 + 16
    quota.take(("citizen", P), 12)
    assert quota.room(("research", P)) == 8 + 4, "only the 4 GPUs citizen leaves idle"


def test_a_lending_limit_keeps_the_rest_of_the_share_for_its_owner():
    quota = book(research=Share(8, borrowing_limit=16), citizen=Share(16, lending_limit=6))
    assert quota.room(("research", P)) == 8 + 6
    quota.take(("citizen", P), 12)
    assert quota.room(("research", P)) == 8 + 4


def test_without_a_borrowing_limit_a_tenant_stays_within_its_share():
    quota = book(research=Share(8), citizen=Share(16))
    assert quota.room(("research", P)) == 8


def test_a_lender_may_always_use_its_share_even_when_it_is_lent():
    quota = book(research=Share(8, borrowing_limit=16), citizen=Share(16))
    quota.take(("research", P), 24)
    assert quota.borrowed(("research", P)) == 16
    assert quota.room(("citizen", P)) == 16, "the nominal share is the lender's; capacity decides"
    assert quota.room(("research", P)) == 0


def test_the_reason_says_how_much_may_be_borrowed():
    quota = book(research=Share(8, borrowing_limit=16), citizen=Share(16))
    quota.take(("citizen", P), 12)
    assert quota.explain(("research", P), 16) == (
        "waiting for quota: tenant 'research' has 8 H100 GPUs left, may borrow 4 more from other"
        " tenants' idle quota, and the job needs 16"
    )
    assert book(a=Share(4)).explain(("a", P), 8) == (
        "waiting for quota: tenant 'a' has 4 H100 GPUs left and the job needs 8"
    )


TENANTS = ["a", "b", "c"]
shares = st.fixed_dictionaries(
    {
        t: st.builds(
            Share,
            nominal=st.integers(0, 32),
            borrowing_limit=st.integers(0, 32),
            lending_limit=st.one_of(st.none(), st.integers(0, 32)),
        )
        for t in TENANTS
    }
)
takes = st.lists(st.tuples(st.sampled_from(TENANTS), st.integers(1, 16)), max_size=24)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(shares=shares, takes=takes)
def test_taking_only_what_room_allows_never_breaks_a_limit(shares, takes):
    """Whatever the shares and the order of requests: every tenant stays within its share plus its
    borrowing limit, and whenever a tenant borrows more, all borrowing together stays within what
    the others leave idle and lendable."""
    quota = book(**shares)
    for tenant, gpus in takes:
        key = (tenant, P)
        if gpus > quota.room(key):
            continue
        before = quota.borrowed(key)
        quota.take(key, gpus)
        borrowing_more = quota.borrowed(key) > before
        share = quota.share(key)
        assert quota.used[key] <= share.nominal + share.borrowing_limit
        if borrowing_more:
            lendable = sum(quota.idle_lendable((t, P)) for t in TENANTS)
            assert sum(quota.borrowed((t, P)) for t in TENANTS) <= lendable


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(shares=shares, takes=takes, tenant=st.sampled_from(TENANTS))
def test_room_is_exactly_the_most_that_keeps_the_rules(shares, takes, tenant):
    """room() is not merely safe but tight: one GPU more would break a rule."""
    quota = book(**shares)
    for t, gpus in takes:
        if gpus <= quota.room((t, P)):
            quota.take((t, P), gpus)
    key, room = (tenant, P), quota.room((tenant, P))
    trial = quota.copy()
    trial.take(key, room + 1)
    share = trial.share(key)
    over_limit = trial.borrowed(key) > share.borrowing_limit
    others_idle = sum(trial.idle_lendable((t, P)) for t in TENANTS if t != tenant)
    over_lendable = trial.borrowed(key) > quota.borrowed(key) and (
        sum(trial.borrowed((t, P)) for t in TENANTS) > others_idle
    )
    assert over_limit or over_lendable


def node(name: str, free: int = 8) -> NodeSlot:
    return NodeSlot(name, "h100", free)


def job(key: str, tenant: str, nodes: int, priority: int = 0) -> Request:
    return Request(key, tenant, "h100", P, nodes, 8, priority=priority, created=key)


def test_admission_lets_a_queue_use_another_tenants_idle_quota_and_no_more():
    nodes = [node(f"n{i}") for i in range(6)]
    quota = book(research=Share(16, borrowing_limit=24), citizen=Share(32, lending_limit=16))
    queue = [job(f"r{i}", "research", 1) for i in range(6)]
    decision = admit(queue, nodes, quota, now=NOW, starvation_seconds=300)
    # 2 nodes of its own share, then 2 borrowed: citizen lends at most 16 GPUs.
    assert sorted(decision.admitted) == ["r0", "r1", "r2", "r3"]
    assert "may borrow 0 more" in decision.waiting["r4"]
    assert quota.used == {}, "admit() decides on a copy of the book"


def test_a_plain_quota_mapping_still_means_no_borrowing():
    nodes = [node("n0"), node("n1")]
    decision = admit([job("r0", "research", 2)], nodes, {("research", P): 8}, now=NOW, starvation_seconds=300)
    assert (
        decision.waiting["r0"]
        == "waiting for quota: tenant 'research' has 8 H100 GPUs left and the job needs 16"
    )


def fairness(**weights: float) -> Fairness:
    return Fairness(dict(weights), {}, {P: 64})


def test_without_fair_sharing_the_oldest_job_goes_first_whatever_its_tenant():
    nodes = [node(f"n{i}") for i in range(2)]
    queue = [job("a0", "a", 1), job("a1", "a", 1), job("b0", "b", 1)]
    decision = admit(queue, nodes, {("a", P): 64, ("b", P): 64}, now=NOW, starvation_seconds=300)
    assert sorted(decision.admitted) == ["a0", "a1"]


def test_with_fair_sharing_tenants_of_equal_weight_take_turns():
    nodes = [node(f"n{i}") for i in range(2)]
    queue = [job("a0", "a", 1), job("a1", "a", 1), job("b0", "b", 1)]
    quota = {("a", P): 64, ("b", P): 64}
    decision = admit(queue, nodes, quota, now=NOW, starvation_seconds=300, fairness=fairness())
    assert sorted(decision.admitted) == ["a0", "b0"]
    assert decision.positions["a1"] == 1


def test_a_tenant_already_holding_gpus_waits_its_turn_and_priority_still_comes_first():
    nodes = [node(f"n{i}") for i in range(2)]
    held = Fairness({}, {("a", P): 16}, {P: 64})
    queue = [job("a0", "a", 1), job("b0", "b", 1), job("b1", "b", 1), job("a-urgent", "a", 1, priority=10)]
    quota = {("a", P): 64, ("b", P): 64}
    decision = admit(queue, nodes, quota, now=NOW, starvation_seconds=300, fairness=held)
    assert sorted(decision.admitted) == ["a-urgent", "b0"]
    assert held.used == {("a", P): 16}, "admit() counts its grants on a copy"


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    light=st.integers(1, 8),
    extra=st.integers(0, 8),
    capacity=st.integers(1, 12),
    jobs=st.integers(1, 12),
)
def test_more_weight_never_means_fewer_admissions(light, extra, capacity, jobs):
    """Two tenants with the same queue of one-node jobs compete for `capacity` nodes (the lighter
    one's jobs are older). The one with more weight gets at least as many nodes, the
    shares end within one job of each other's weighted share, and no node is left idle."""
    nodes = [node(f"n{i:02}") for i in range(capacity)]
    queue = [job(f"{t}{i:02}", t, 1) for i in range(jobs) for t in ("a-light", "b-heavy")]
    quota = {("a-light", P): 1000, ("b-heavy", P): 1000}
    w_light, w_heavy = light, light + extra
    weights = fairness(**{"a-light": w_light, "b-heavy": w_heavy})
    decision = admit(queue, nodes, quota, now=NOW, starvation_seconds=300, fairness=weights)
    heavy = sum(1 for k in decision.admitted if k.startswith("b-heavy"))
    lighter = sum(1 for k in decision.admitted if k.startswith("a-light"))
    assert heavy + lighter == min(capacity, 2 * jobs), "fairness never leaves capacity idle"
    if heavy < jobs and lighter < jobs:  # both still had jobs waiting
        assert heavy >= lighter or extra == 0
        assert abs(heavy / w_heavy - lighter / w_light) <= 1 / min(w_light, w_heavy) + 1e-9


def test_the_factory_turns_fair_sharing_on_with_its_weights_and_what_tenants_hold():
    body = make_factory_body(
        tenants=[
            make_tenant("a", gpuQuota=[{"product": P, "gpus": 16}]),
            make_tenant("b", gpuQuota=[{"product": P, "gpus": 48}]),
        ]
    )
    assert fairness_of(AIFactory.model_validate(body), quota_book(AIFactory.model_validate(body))) is None
    body["spec"]["scheduling"] = {"fairSharing": {"weights": {"b": 3}}}
    factory = AIFactory.model_validate(body)
    quota = quota_book(factory)
    quota.take(("b", P), 32)
    fair = fairness_of(factory, quota)
    assert fair is not None and fair.totals == {P: 64} and fair.weights == {"b": 3.0}
    assert fair.share("b") == 0.5 / 3 and fair.share("a") == 0.0
