"""LeastLoaded and its LoadTracker: in-flight counting, preference, ties, threads, statistics."""

from __future__ import annotations

import json
import threading
from collections import Counter

from kafkaops.clients.load import LoadTracker
from kafkaops.clients.partitioners import LeastLoaded


class Clock:
    """A clock that only moves when told: no test depends on how fast this machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def least_loaded(leaders: tuple[int, ...], **kwargs: object) -> LeastLoaded:
    kwargs.setdefault("load", LoadTracker(clock=Clock()))
    ll = LeastLoaded(**kwargs)  # type: ignore[arg-type]
    ll.metadata.set_leaders("t", leaders, set(leaders))
    return ll


def deliver(ll: LeastLoaded, partition: int, n: int = 1) -> None:
    for _ in range(n):
        ll.on_delivery("t", partition, None, 0.001)


def test_prefers_the_partition_with_fewer_records_in_flight() -> None:
    ll = least_loaded((1, 2, 3))
    assert sorted(ll.partition("t", None) for _ in range(3)) == [0, 1, 2]  # a tie: one each
    deliver(ll, 0)
    deliver(ll, 2)
    assert ll.load.inflight("t", 1) == 1
    picks = [ll.partition("t", None) for _ in range(2)]
    assert sorted(picks) == [0, 2]  # partition 1 still has a record in flight
    # all tie again: round robin on from where the rotation stands (5 picks so far), one each
    assert [ll.partition("t", None) for _ in range(3)] == [2, 0, 1]


def test_within_one_leader_the_partition_with_fewer_in_flight_wins() -> None:
    ll = least_loaded((1, 1, 1))
    for _ in range(3):
        ll.partition("t", None)
    deliver(ll, 1)
    assert ll.partition("t", None) == 1


def test_a_slow_leader_stops_getting_records() -> None:
    ll = least_loaded((1, 2, 3, 1, 2, 3))
    counts: Counter[int] = Counter()
    for _ in range(600):
        p = ll.partition("t", None)
        counts[p] += 1
        if p % 3 != 0:  # leaders 2 and 3 acknowledge at once, leader 1 never does
            deliver(ll, p)
    assert counts[0] + counts[3] <= 2  # one record each to leader 1, then it is avoided
    assert ll.load.leader_inflight(1) == counts[0] + counts[3]


def test_a_stalled_leader_is_avoided_even_with_fewer_records_in_flight() -> None:
    clock = Clock()
    ll = least_loaded((1, 2, 3), load=LoadTracker(stall_s=0.25, clock=clock))
    assert sorted(ll.partition("t", None) for _ in range(3)) == [0, 1, 2]
    for _ in range(20):  # leaders 2 and 3 carry more, but they acknowledge
        for p in (1, 2):
            ll.load.sent("t", p)
    clock.now += 0.2
    deliver(ll, 1)
    deliver(ll, 2)
    assert ll.partition("t", None) == 0  # leader 1 has the fewest in flight, not stalled yet
    clock.now += 0.1  # leader 1: records in flight, no delivery report for 0.3 s
    deliver(ll, 1)
    deliver(ll, 2)
    assert ll.load.stalled() == {1}
    assert 0 not in {ll.partition("t", None) for _ in range(10)}
    deliver(ll, 0)  # progress again
    assert ll.load.stalled() == set()
    assert ll.partition("t", None) == 0


def test_a_leader_that_was_idle_is_not_stalled() -> None:
    clock = Clock()
    ll = least_loaded((1, 2), load=LoadTracker(stall_s=0.25, clock=clock))
    clock.now += 60  # nothing sent for a minute
    assert ll.partition("t", None) == 0
    assert ll.load.stalled() == set()


def test_ties_are_broken_round_robin() -> None:
    ll = least_loaded((1, 2, 3, 1, 2, 3))
    seen = []
    for _ in range(60):
        p = ll.partition("t", None)
        seen.append(p)
        deliver(ll, p)
    assert Counter(seen) == {p: 10 for p in range(6)}


def test_in_flight_moves_with_a_new_leader() -> None:
    ll = least_loaded((1, 2))
    for _ in range(4):
        ll.partition("t", None)
    assert (ll.load.leader_inflight(1), ll.load.leader_inflight(2)) == (2, 2)
    ll.metadata.set_leaders("t", (2, 2), {1, 2})  # leader 1 lost partition 0 to broker 2
    assert (ll.load.leader_inflight(1), ll.load.leader_inflight(2)) == (0, 4)
    deliver(ll, 0, 2)
    assert ll.load.leader_inflight(2) == 2


def test_counts_never_go_negative_and_release_undoes_a_placement() -> None:
    ll = least_loaded((1, 2))
    deliver(ll, 0, 5)  # reports for records another path placed
    assert ll.load.inflight("t", 0) == 0 and ll.load.leader_inflight(1) == 0
    p = ll.partition("t", None)
    assert p is not None
    ll.release("t", p)
    assert ll.load.inflight("t", p) == 0


def test_statistics_can_be_blended_in() -> None:
    ll = least_loaded((1, 2, 3), load=LoadTracker(stats_weight=1.0, rtt_weight=0.0, clock=Clock()))
    stats = {
        "brokers": {
            "a/1": {"nodeid": 1, "state": "UP", "outbuf_msg_cnt": 50, "waitresp_msg_cnt": 50, "rtt": {"avg": 900}},
            "a/2": {"nodeid": 2, "state": "UP", "outbuf_msg_cnt": 0, "waitresp_msg_cnt": 0, "rtt": {"avg": 900}},
            "a/3": {"nodeid": 3, "state": "UP", "outbuf_msg_cnt": 0, "waitresp_msg_cnt": 2, "rtt": {"avg": 900}},
        }
    }
    ll.on_stats(json.dumps(stats))
    assert ll.load.leader_load(1) == 100
    picks = Counter(ll.partition("t", None) for _ in range(60))
    assert picks[0] == 0 and picks[1] > picks[2] > 0
    rtt = least_loaded((1, 2), load=LoadTracker(rtt_weight=1.0, clock=Clock()))
    stats["brokers"]["a/1"]["rtt"] = {"avg": 50_000}  # 50 ms
    rtt.on_stats(stats)
    assert rtt.load.leader_load(1) == 50.0
    assert Counter(rtt.partition("t", None) for _ in range(40))[0] == 0


def test_two_choices_for_many_partitions_avoid_the_loaded_leader() -> None:
    leaders = tuple(p % 4 + 1 for p in range(200))
    ll = least_loaded(leaders, two_choices_above=64, seed=7)
    counts: Counter[int] = Counter()
    for _ in range(2000):
        p = ll.partition("t", None)
        assert p is not None
        counts[leaders[p]] += 1
        if leaders[p] != 1:
            deliver(ll, p)
    # leader 1 never acknowledges: it only gets records when both samples are its own (1/16)
    assert counts[1] < 0.1 * 2000  # uniform choice would give it 1/4
    assert min(counts[b] for b in (2, 3, 4)) > 0.2 * 2000


def test_thread_safe_counts_balance_out() -> None:
    ll = least_loaded(tuple(range(1, 13)))

    def work() -> None:
        for _ in range(5000):
            p = ll.partition("t", None)
            assert p is not None
            ll.on_delivery("t", p, None, 0.0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = ll.load.snapshot()
    assert snap["partitions"]["t"] == [0] * 12
    assert all(v == 0 for v in snap["leaders"].values())
