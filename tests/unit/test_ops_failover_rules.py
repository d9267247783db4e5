"""The pure rules of failover: the min-ISR safety check, replica placement (ops/placement.py),
elections, and the policy's decisions on a fixed model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from kafkaops.ops.events import BrokerDown, Event
from kafkaops.ops.failover import FailoverPolicy, preferred_election_candidates
from kafkaops.ops.failover_state import SUBMITTED, DownBroker, FailoverStore, InFlight
from kafkaops.ops.health import ClusterHealth, build_health
from kafkaops.ops.placement import BrokerLoad, Move, min_isr_violation, plan_balanced, plan_replacements
from kafkaops.ops.reassign import Batch


def four_brokers_one_dead(dead: int = 3, partitions: int = 8) -> ClusterHealth:
    live = {b: ("h", 9000 + b) for b in (1, 2, 3, 4) if b != dead}
    rows = []
    for p in range(partitions):
        reps = [(p + i) % 4 + 1 for i in range(3)]
        isr = [b for b in reps if b != dead]
        leader = reps[0] if reps[0] != dead else isr[0]
        rows.append(("t", p, leader, reps, isr))
    return build_health(live, 1, rows, {"t": 2})


@pytest.mark.parametrize(
    ("replicas", "isr", "target", "min_isr", "safe"),
    [
        ([1, 2, 3], [1, 2], [1, 2, 4], 2, True),  # replace a dead, out-of-sync replica: add before remove
        ([1, 2, 3], [1, 2, 3], [1, 2, 4], 2, True),  # removes one in-sync replica, two remain
        ([1, 2, 3], [1, 2], [1, 3, 4], 2, False),  # drops in-sync 2: ISR {1} < 2 meanwhile
        ([1, 2, 3], [1, 2], [1], 2, False),  # shrink below min ISR
        ([1, 2, 3], [1], [1, 2, 4], 2, True),  # already under min ISR; the move does not make it worse
        ([1, 2, 3], [1], [2, 3, 4], 2, False),  # removes the only in-sync replica
        ([1, 2], [1, 2], [3, 4], 1, False),  # removes every in-sync replica
    ],
)
def test_min_isr_rule(replicas: list[int], isr: list[int], target: list[int], min_isr: int, safe: bool) -> None:
    reason = min_isr_violation(replicas, isr, target, min_isr)
    assert (reason is None) == safe, reason


def test_plan_replaces_dead_replica_in_place_spread_evenly() -> None:
    h = four_brokers_one_dead(dead=3, partitions=8)
    plan = plan_replacements(h, {3})
    moves = plan.moves
    assert plan.skipped == {}
    assert set(moves) == {tp for tp, p in h.partitions.items() if 3 in p.replicas}
    for (current, target) in moves.values():
        assert 3 not in target and len(target) == 3 and len(set(target)) == 3
        for i, b in enumerate(current):  # only the dead replica's slot changes
            assert target[i] == b or b == 3
        assert min_isr_violation(current, [b for b in current if b != 3], target, 2) is None
    after = Counter(b for tp, p in h.partitions.items() for b in (moves[tp][1] if tp in moves else p.replicas))
    assert max(after.values()) - min(after.values()) <= 1, after  # 24 replicas over 3 brokers: 8 each


def test_plan_skips_when_no_spare_broker_or_offline() -> None:
    h = build_health(
        {1: ("h", 1), 2: ("h", 2)},
        1,
        [("t", 0, 1, [1, 2, 3], [1, 2]), ("u", 0, -1, [3], [])],
        {"t": 2, "u": 1},
    )
    plan = plan_replacements(h, {3})
    assert plan.moves == {}
    assert "no live broker left to take the replica(s) of broker(s) [3]" in plan.skipped[("t", 0)]
    assert "offline" in plan.skipped[("u", 0)]


def test_preferred_election_candidates() -> None:
    h = build_health(
        {1: ("h", 1), 2: ("h", 2), 3: ("h", 3)},
        1,
        [
            ("t", 0, 1, [3, 1, 2], [1, 2, 3]),  # 3 back in sync, not leader: candidate
            ("t", 1, 1, [3, 1, 2], [1, 2]),  # 3 not in sync yet
            ("t", 2, 3, [3, 1, 2], [1, 2, 3]),  # already preferred
            ("t", 3, 2, [1, 2, 3], [1, 2, 3]),  # broker 1 preferred
        ],
        {"t": 2},
    )
    assert preferred_election_candidates(h, [3]) == [("t", 0)]
    assert preferred_election_candidates(h) == [("t", 0), ("t", 3)]


class ModelOnly:
    """The part of ReplicaMonitor the policy reads: a fixed model and subscriptions."""

    def __init__(self, health: ClusterHealth) -> None:
        self.health = health
        self.callbacks: list[Callable[[Event], None]] = []

    def snapshot(self) -> ClusterHealth:
        return self.health

    def subscribe(self, cb: Callable[[Event], None]) -> Callable[[], None]:
        self.callbacks.append(cb)
        return lambda: self.callbacks.remove(cb)


class NotLeader:
    is_leader = False


def test_dry_run_reports_after_grace_only_once() -> None:
    mon = ModelOnly(four_brokers_one_dead(dead=3))
    policy = FailoverPolicy(mon, "127.0.0.1:1", grace=30, dry_run=True)  # type: ignore[arg-type]
    policy._unsubscribe = mon.subscribe(policy._on_event)
    mon.callbacks[0](BrokerDown(3, timestamp=1000.0))
    policy.step(now=1010.0)
    assert policy.actions == []  # within the grace period
    policy.step(now=1031.0)
    policy.step(now=1032.0)
    (action,) = policy.actions
    assert action.what == "reassign" and action.result == "dry-run" and action.dry_run
    assert "down for more than 30s" in action.why
    assert all(3 in m["from"] and 3 not in m["to"] for m in action.details["moves"].values())


def test_standby_instance_takes_no_action() -> None:
    mon = ModelOnly(four_brokers_one_dead(dead=3))
    policy = FailoverPolicy(mon, "127.0.0.1:1", grace=0, dry_run=True, leadership=NotLeader())  # type: ignore[arg-type]
    policy.step(now=1e10)
    assert policy.actions == []


# ---------------------------------------------------------------------- placement rules
def test_ties_go_to_fewest_preferred_leaderships_then_lowest_id() -> None:
    rows = [
        ("t", 0, 1, [3, 1, 2], [1, 2]),  # broker 3 is dead and the preferred replica
        ("a", 0, 4, [4, 1, 2], [1, 2, 4]),  # broker 4: one replica, preferred leader once
        ("a", 1, 1, [1, 5, 2], [1, 2, 5]),  # broker 5: one replica, never preferred leader
    ]
    h = build_health({b: ("h", b) for b in (1, 2, 4, 5)}, 1, rows, {"t": 2, "a": 2})
    plan = plan_replacements(h, {3})
    assert plan.moves == {("t", 0): Move((3, 1, 2), (5, 1, 2))}  # same load: 5 leads less often than 4
    assert plan.moves[("t", 0)].adding == (5,) and plan.moves[("t", 0)].removing == (3,)
    load = BrokerLoad([6, 7, 8])
    assert load.least_loaded([8, 7, 6]) == 6  # all equal: the lowest id
    assert load.least_loaded([]) is None


def test_draining_a_live_broker_respects_min_isr() -> None:
    rows = [
        ("t", 0, 1, [1, 2, 3], [1, 2, 3]),  # full ISR: dropping 2 leaves two in sync
        ("t", 1, 1, [1, 2, 3], [1, 2]),  # ISR {1, 2} = min ISR: dropping 2 leaves one
    ]
    h = build_health({b: ("h", b) for b in (1, 2, 3, 4)}, 1, rows, {"t": 2})
    plan = plan_replacements(h, {2})
    assert plan.moves == {("t", 0): Move((1, 2, 3), (1, 4, 3))}  # in place: the order is kept
    assert "below min.insync.replicas=2" in plan.skipped[("t", 1)]


def test_plan_balanced_spreads_onto_a_new_broker() -> None:
    rows = [("t", p, 1 + p % 3, [1 + p % 3, 1 + (p + 1) % 3, 1 + (p + 2) % 3], [1, 2, 3]) for p in range(8)]
    h = build_health({b: ("h", b) for b in (1, 2, 3, 4)}, 1, rows, {"t": 2})
    plan = plan_balanced(h)
    target = {tp: (plan.moves[tp].target if tp in plan.moves else p.replicas) for tp, p in h.partitions.items()}
    load = Counter(b for r in target.values() for b in r)
    leaders = Counter(r[0] for r in target.values())
    assert set(load) == {1, 2, 3, 4}
    assert max(load.values()) - min(load.values()) <= 1
    assert max(leaders.values()) - min(leaders.values()) <= 1
    assert all(len(set(r)) == 3 for r in target.values())
    assert sum(len(m.adding) for m in plan.moves.values()) == 6, "the minimum: 24 replicas, broker 4 needs its 6"
    balanced = build_health(
        {b: ("h", b) for b in (1, 2, 3, 4)}, 1, [(t, p, r[0], r, r) for (t, p), r in target.items()], {"t": 2}
    )
    assert plan_balanced(balanced).moves == {}  # already balanced: nothing to do


def test_plan_balanced_replaces_dead_brokers_and_skips_offline() -> None:
    rows = [("t", 0, 1, [5, 1, 2], [1, 2]), ("t", 1, 1, [1, 2, 5], [1, 2]), ("t", 2, -1, [5], [])]
    h = build_health({1: ("h", 1), 2: ("h", 2), 3: ("h", 3)}, 1, rows, {"t": 1})
    plan = plan_balanced(h)
    assert all(5 not in m.target and len(set(m.target)) == 3 for m in plan.moves.values())
    assert set(plan.moves) == {("t", 0), ("t", 1)}
    assert "offline" in plan.skipped[("t", 2)]


# ---------------------------------------------------------------------- state and takeover
def test_state_records_round_trip_and_apply() -> None:
    batch = Batch.plan({("t.x", 3): Move((1, 2, 3), (1, 2, 4))}, 1000, live=[1, 2, 4])
    assert batch.brokers == (1, 2, 4) and batch.topics == ("t.x",)
    flight = InFlight("abc", batch, SUBMITTED, "broker 3 down", 12.5)
    assert InFlight.from_json(flight.to_json()) == flight
    assert Batch.plan(batch.moves, 0, live=[1, 2, 4]).brokers == ()  # unthrottled: no broker throttled
    store = FailoverStore()
    store.update({3: DownBroker(1.0)}, {"abc": flight})
    store.update({3: DownBroker(1.0, handled=True), 4: DownBroker(2.0)}, {"abc": None})
    state = store.load()
    assert state.brokers == {3: DownBroker(1.0, True), 4: DownBroker(2.0)} and state.reassignments == {}
    state.brokers.clear()
    assert store.load().brokers, "load returns a copy"


class Flag:
    is_leader = False


def test_takeover_merges_the_stored_state_and_respects_handled_brokers() -> None:
    mon = ModelOnly(four_brokers_one_dead(dead=3))
    flag = Flag()
    policy = FailoverPolicy(mon, "127.0.0.1:1", grace=0, leadership=flag)  # type: ignore[arg-type]
    # what a predecessor wrote: broker 3 dead since 500 and handled; broker 4 dead (it is back now)
    policy.store.update({3: DownBroker(500.0, handled=True), 4: DownBroker(600.0)})
    policy.step(now=1000.0)  # standby: sees broker 3 dead, keeps it in memory only
    assert policy.actions == [] and set(policy.store.load().brokers) == {3, 4}
    flag.is_leader = True
    policy.step(now=1001.0)  # takes over: nothing to move (3 was handled), nothing to talk to Kafka about
    (resume,) = policy.actions
    assert resume.what == "resume" and resume.ok and set(resume.details["brokers_down"]) == {"3", "4"}
    assert policy.store.load().brokers == {3: DownBroker(500.0, handled=True)}  # 4 is back: record dropped
    assert policy.in_flight == {}



def test_live_brokers_first_dead_ones_left_out() -> None:
    from kafkaops.config import ClusterProfile
    from kafkaops.ops.reassign import live_first

    h = build_health({2: ("h2", 9092)}, 2, [("t", 0, 2, [1, 2], [2])], addresses={1: ("h1", 9092)})
    profile = ClusterProfile("h1:9092,h3:9092", name="p")
    assert live_first(profile, h).bootstrap_servers == "h2:9092,h3:9092"
    assert live_first(profile, h).name == "p"
    assert live_first("h1:9092", h).bootstrap_servers == "h2:9092"
