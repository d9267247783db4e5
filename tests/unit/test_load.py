"""LeastLoaded and its LoadTracker: runs in flight, preference, ties, stalls, threads."""

from __future__ import annotations

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


def least_loaded(leaders: tuple[int, ...], clock: Clock, **kwargs: object) -> LeastLoaded:
    kwargs.setdefault("load", LoadTracker(clock=clock))
    ll = LeastLoaded(clock=clock, sticky_ms=10, **kwargs)  # type: ignore[arg-type]
    ll.metadata.set_leaders("t", leaders, set(leaders))
    return ll


def test_the_leader_with_fewer_records_in_flight_wins_ties_rotate() -> None:
    clock = Clock()
    load = LoadTracker(clock=clock)
    assert [load.choose((1, 2, 3), tick) for tick in range(3)] == [1, 2, 3]  # all idle: rotation
    probe = load.sent("t", 0, 1)
    load.grew(probe, 9)
    load.sent("t", 1, 2)
    assert load.inflight(1) == 10 and load.inflight(2) == 1
    assert {load.choose((1, 2, 3), tick) for tick in range(3)} == {3}
    load.sent("t", 2, 3)
    assert {load.choose((1, 2, 3), tick) for tick in range(3)} == {2, 3}  # 1 each: a tie, rotated
    load.acked("t", 0)
    assert load.inflight(1) == 0 and load.choose((1, 2, 3), 1) == 1


def test_a_stalled_leader_is_avoided_even_with_fewer_records_in_flight() -> None:
    clock = Clock()
    load = LoadTracker(stall_min_s=0.05, stall_factor=4, clock=clock)
    for p, b in ((1, 2), (2, 3)):  # brokers 2 and 3 answer in 10 ms
        load.sent("t", p, b)
        clock.now += 0.01
        load.acked("t", p)
    assert load.stall_threshold() == 0.05  # 4 x 10 ms is below the floor
    load.sent("t", 0, 1)  # broker 1: one record, then silence
    clock.now += 0.04

    def busy() -> None:  # broker 2 carries far more, but it answers
        for _ in range(20):
            load.acked("t", 1)
        for _ in range(20):
            probe = load.sent("t", 1, 2)
            load.grew(probe, 50)

    busy()
    assert load.stalled() == set() and load.choose((1, 2), 0) == 1  # fewer in flight, not stalled yet
    clock.now += 0.02
    busy()
    assert load.stalled() == {1}
    assert load.choose((1, 2), 0) == 2 and load.choose((1, 2), 1) == 2
    load.acked("t", 0)  # progress again
    assert load.stalled() == set() and load.choose((1, 2), 0) == 1


def test_the_stall_threshold_follows_the_clusters_latency() -> None:
    clock = Clock()
    load = LoadTracker(stall_min_s=0.05, stall_factor=4, clock=clock)
    for p, b in ((0, 1), (1, 2), (2, 3)):  # a busy machine: every broker answers in 200 ms
        load.sent("t", p, b)
        clock.now += 0.2
        load.acked("t", p)
    assert abs(load.stall_threshold() - 0.8) < 1e-9  # type: ignore[operator]
    load.sent("t", 0, 1)
    clock.now += 0.5
    assert load.stalled() == set()  # slow like the others, not stalled


def test_leaders_silent_alike_are_slow_not_stalled_but_one_far_more_silent_is() -> None:
    clock = Clock()
    load = LoadTracker(stall_min_s=0.05, stall_factor=4, clock=clock)
    load.sent("t", 0, 1)
    clock.now += 0.3
    load.sent("t", 1, 2)
    clock.now += 0.2
    assert load.silence(1) == 0.5 and abs(load.silence(2) - 0.2) < 1e-9 and load.silence(3) == 0.0
    assert load.oldest_age(1) == 0.5
    assert load.stalled() == set()  # within a factor 4 of each other: a slow machine, nobody stalls
    assert load.choose((1, 2), 0) == 1  # one run in flight each: rotation
    clock.now += 1.0
    load.acked("t", 1)  # broker 2 answers (late), broker 1 stays silent
    load.sent("t", 1, 2)
    assert load.stalled() == {1}
    assert load.choose((1, 2), 0) == 2 and load.choose((1, 2), 1) == 2
    alone = LoadTracker(stall_min_s=0.05, stall_factor=4, clock=clock)
    alone.sent("t", 0, 1)  # no other leader owes an answer: the floor decides
    clock.now += 0.06
    assert alone.stalled() == {1} and alone.choose((1,), 0) == 1


def test_an_idle_leader_is_not_stalled() -> None:
    clock = Clock()
    load = LoadTracker(clock=clock)
    probe = load.sent("t", 0, 1)
    load.acked("t", 0)
    clock.now += 60  # nothing sent for a minute
    assert load.stalled() == set() and load.inflight(1) == 0
    load.grew(probe, 5)  # a run that ended after its probe came back adds nothing
    assert load.inflight(1) == 0


def test_reports_not_asked_for_are_ignored_and_release_undoes_a_probe() -> None:
    clock = Clock()
    load = LoadTracker(clock=clock)
    load.acked("t", 3)  # a report for a record that was no probe
    assert load.inflight(1) == 0
    load.sent("t", 0, 1)
    load.sent("t", 0, 1)
    load.release("t", 0)  # the newest probe's produce() raised
    assert load.inflight(1) == 1
    load.acked("t", 0)
    load.acked("t", 0)
    assert load.inflight(1) == 0 and load.stalled() == set()


def test_least_loaded_stops_sending_runs_to_a_leader_that_never_answers() -> None:
    clock = Clock()
    ll = least_loaded((1, 2, 3, 1, 2, 3), clock)
    counts: Counter[int] = Counter()
    for _ in range(3000):
        p = ll.partition("t", None)
        counts[p] += 1
        if ll.probe is not None and p % 3 != 0:  # leaders 2 and 3 answer within a millisecond
            ll.on_delivery("t", p, None, 0.001)
        clock.now += 0.001  # 1,000 records/s: runs of about 10
    to_leader_1 = counts[0] + counts[3]
    assert to_leader_1 <= 30  # its first run or so, then it is avoided
    assert counts[1] + counts[4] > 1000 and counts[2] + counts[5] > 1000
    assert ll.load.inflight(1) == to_leader_1


def test_runs_rotate_over_leaders_and_their_partitions_when_all_answer() -> None:
    clock = Clock()
    ll = least_loaded((1, 2, 3, 1, 2, 3), clock)
    counts: Counter[int] = Counter()
    for _ in range(6000):
        p = ll.partition("t", None)
        counts[p] += 1
        if ll.probe is not None:
            ll.on_delivery("t", p, None, 0.0)
        clock.now += 0.001
    assert set(counts) == set(range(6))
    assert max(counts.values()) / min(counts.values()) < 1.2


def test_thread_safe_counts_balance_out() -> None:
    load = LoadTracker()

    def work(partition: int) -> None:
        for _ in range(5000):
            probe = load.sent("t", partition, partition % 3 + 1)
            load.grew(probe, 3)
            load.acked("t", partition)

    threads = [threading.Thread(target=work, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [load.inflight(b) for b in (1, 2, 3)] == [0, 0, 0]


def test_a_frozen_leader_is_left_even_when_every_leader_is_slow() -> None:
    """Every broker takes 500 ms to answer (an overloaded machine); broker 1 then freezes. Its
    count of records in flight stops growing and its oldest record is no older than the
    others', but it stops acknowledging while they go on."""
    clock = Clock()
    ll = least_loaded((1, 2, 3, 1, 2, 3), clock)
    pending: list[tuple[float, int]] = []  # (sent, partition) of probes
    frozen_at = clock.now + 2.0
    after_freeze: Counter[int] = Counter()
    for _ in range(5000):  # 1,000 records/s for 5 s
        now = clock.now
        p = ll.partition("t", None)
        if ll.probe is not None:
            pending.append((now, p))
        if now > frozen_at + 0.1:
            after_freeze[p % 3] += 1  # p % 3 == 0: led by broker 1
        for sent, q in [x for x in pending if x[0] <= now - 0.5]:
            if q % 3 != 0 or sent + 0.5 < frozen_at:  # broker 1 answers nothing once frozen
                pending.remove((sent, q))
                ll.on_delivery("t", q, None, 0.5)
        clock.now += 0.001
    assert after_freeze[0] <= 0.02 * sum(after_freeze.values())
    assert after_freeze[1] > 1000 and after_freeze[2] > 1000
