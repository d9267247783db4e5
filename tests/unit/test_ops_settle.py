"""The settle stage: transient leaderless states never reach the events (kafkaops.ops.settle)."""

from __future__ import annotations

from kafkaops.ops.events import IsrShrunk, LeaderChanged, PartitionOffline, UnderMinIsr, UnderReplicated, diff_health
from kafkaops.ops.health import ClusterHealth, build_health
from kafkaops.ops.settle import Settler


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def health(leader: int, isr: tuple[int, ...] = (1, 2, 3), extra: bool = False) -> ClusterHealth:
    rows = [("t", 0, leader, (3, 1, 2), isr)]
    if extra:
        rows.append(("new", 0, -1, (1, 2, 3), ()))
    return build_health({1: ("h", 1), 2: ("h", 2), 3: ("h", 3)}, 1, rows, {"t": 2})


def run(settler: Settler, published: ClusterHealth, model: ClusterHealth) -> tuple[ClusterHealth, list[str]]:
    sources = {("partition", "t", 0): "admin"}
    view = settler.view(published, model, sources)
    return view, [e.describe() for e in diff_health(published, view, sources=sources)]


def test_a_leader_that_comes_back_within_the_settle_time_is_one_leader_change() -> None:
    clock = Clock()
    s = Settler(1.0, clock)
    pub = health(3)
    pub, events = run(s, pub, health(-1, (1, 2)))
    assert events == [] and s.holding == {("t", 0)}
    assert s.due_in() == 1.0
    clock.t += 0.6
    pub, events = run(s, pub, health(2, (1, 2)))
    assert events == ["LeaderChanged topic=t partition=0 previous=3 leader=2",
                      "IsrShrunk topic=t partition=0 isr=(1, 2) removed=(3,)",
                      "UnderReplicated topic=t partition=0 replicas=(3, 1, 2) isr=(1, 2)"]
    assert s.holding == frozenset() and s.due_in() is None


def test_a_partition_leaderless_past_the_settle_time_is_published_offline_once() -> None:
    clock = Clock()
    s = Settler(1.0, clock)
    pub = health(3)
    model = health(-1, (3,))
    pub, events = run(s, pub, model)
    assert events == []
    clock.t += 1.0
    due = s.view(pub, model, sources := {})
    evs = diff_health(pub, due, sources=sources)
    assert [type(e) for e in evs] == [LeaderChanged, IsrShrunk, UnderReplicated, UnderMinIsr, PartitionOffline]
    assert evs[0].previous == 3 and evs[0].leader == -1  # type: ignore[attr-defined]
    assert all(e.source == "admin" for e in evs)  # the source that made it leaderless
    again = s.view(due, model, {})
    assert diff_health(due, again) == [] and s.due_in() is None


def test_a_new_topic_without_leaders_yet_is_left_out_then_appears_led() -> None:
    clock = Clock()
    s = Settler(1.0, clock)
    pub = health(3)
    view = s.view(pub, health(3, extra=True))
    assert ("new", 0) not in view.partitions
    clock.t += 0.3
    led = build_health({1: ("h", 1), 2: ("h", 2), 3: ("h", 3)}, 1,
                       [("t", 0, 3, (3, 1, 2), (1, 2, 3)), ("new", 0, 1, (1, 2, 3), (1, 2, 3))], {"t": 2})
    view2 = s.view(view, led)
    assert diff_health(view, view2) == [] and ("new", 0) in view2.partitions


def test_zero_settle_time_and_first_snapshot_pass_straight_through() -> None:
    model = health(-1, (1, 2))
    assert Settler(0.0).view(health(3), model) is model
    assert Settler(1.0).view(None, model) is model

