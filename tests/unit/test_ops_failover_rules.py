"""FailoverPolicy's pure rules: the min-ISR safety check, replica placement, elections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from kafkaops.ops.events import BrokerDown, Event
from kafkaops.ops.failover import FailoverPolicy, min_isr_violation, plan_replacements, preferred_election_candidates
from kafkaops.ops.health import ClusterHealth, build_health


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
    moves, skipped = plan_replacements(h, {3})
    assert skipped == {}
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
    moves, skipped = plan_replacements(h, {3})
    assert moves == {}
    assert "no live broker" in skipped[("t", 0)]
    assert "offline" in skipped[("u", 0)]


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
