"""The webhook Service's route follows the active replica: the label rules, and what a set of
replicas converges to whatever the labels were when they started."""

from hypothesis import given
from hypothesis import strategies as st

from aifactory_operator.reconcile.webhook_route import ROUTE_VALUE, route_changes

PODS = ["op-a", "op-b", "op-c"]


def test_the_active_replica_labels_itself_before_it_takes_the_label_from_the_others():
    changes = route_changes("op-b", True, ["op-a", "op-c"])
    assert list(changes.items()) == [("op-b", ROUTE_VALUE), ("op-a", None), ("op-c", None)]


def test_a_paused_replica_gives_up_only_its_own_label():
    assert route_changes("op-b", False, ["op-a", "op-b"]) == {"op-b": None}
    assert route_changes("op-b", False, ["op-a"]) == {}


def test_a_settled_route_needs_no_write():
    assert route_changes("op-a", True, ["op-a"]) == {}


@given(
    active=st.sampled_from(PODS),
    labelled=st.sets(st.sampled_from(PODS)),
    order=st.permutations(PODS),
)
def test_whatever_the_start_one_pass_of_every_replica_leaves_the_label_on_the_active_pod_alone(
    active, labelled, order
):
    labels = set(labelled)
    for pod in order:
        for name, value in route_changes(pod, pod == active, labels).items():
            labels = labels | {name} if value else labels - {name}
    assert labels == {active}


@given(active=st.sampled_from(PODS), labelled=st.sets(st.sampled_from(PODS)))
def test_the_active_replica_never_removes_its_own_label_nor_leaves_a_gap_while_it_writes(active, labelled):
    labels = set(labelled)
    for name, value in route_changes(active, True, labels).items():
        labels = labels | {name} if value else labels - {name}
        assert active in labels, "the Service would have been left without the active endpoint"
