"""Burrow's lag rules as kafkaops adapts them to polled committed offsets (kafkaops.ops.lag)."""

from __future__ import annotations

import pytest

from kafkaops.ops.lag import LagEvaluator, LagStatus, Observation, evaluate, group_status

TP0 = ("orders", 0)


def window(*entries: tuple[int, int, float]) -> list[Observation]:
    return [Observation(o, lag, t) for o, lag, t in entries]


def test_rule1_lag_zero_anywhere_is_ok_even_when_everything_else_looks_bad() -> None:
    w = window((10, 5, 0), (10, 0, 0), (5, 9, 0))  # a rewind and no progress, but lag was 0 once
    assert evaluate(w, now=100, owned=False) is LagStatus.OK


def test_allowed_lag_counts_as_zero() -> None:
    w = window((10, 3, 0), (10, 3, 0), (10, 3, 0))
    assert evaluate(w, now=100, owned=False, allowed_lag=3) is LagStatus.OK
    assert evaluate(w, now=100, owned=False, allowed_lag=2) is LagStatus.STOP


def test_rule2_offset_decrease_is_rewind_before_any_other_error() -> None:
    w = window((50, 50, 0), (50, 50, 0), (10, 90, 2), (10, 90, 2))
    assert evaluate(w, now=100, owned=True) is LagStatus.REWIND
    assert evaluate(w, now=100, owned=False) is LagStatus.REWIND


def test_rule3_no_commit_for_longer_than_the_window_span_is_stop_without_owner_stall_with_one() -> None:
    # offsets moved at t=0..4 (span 4 s), then nothing for 5 s
    w = window((10, 5, 0), (12, 5, 2), (14, 6, 4), (14, 8, 4))
    assert evaluate(w, now=9.0, owned=False) is LagStatus.STOP
    assert evaluate(w, now=9.0, owned=True) is LagStatus.STALL
    # within the span it is not stopped: the lag never decreased, so WARN
    assert evaluate(w, now=7.9, owned=False) is LagStatus.WARN


def test_rule4_unchanged_offsets_with_lag() -> None:
    w = window((7, 3, 5), (7, 3, 5), (7, 4, 5))
    assert evaluate(w, now=5, owned=True) is LagStatus.STALL  # span 0 and now == last: rule 4 alone
    assert evaluate(w, now=5, owned=False) is LagStatus.STOP


def test_rule5_advancing_offsets_with_lag_never_decreasing_is_warn() -> None:
    w = window((10, 5, 0), (12, 5, 1), (14, 7, 2), (16, 9, 3))
    assert evaluate(w, now=3.5, owned=True) is LagStatus.WARN


def test_advancing_offsets_whose_lag_decreases_somewhere_are_ok() -> None:
    w = window((10, 5, 0), (12, 7, 1), (14, 4, 2), (16, 6, 3))
    assert evaluate(w, now=3.5, owned=True) is LagStatus.OK


def test_group_status_is_the_worst_partition_with_errors_as_err() -> None:
    assert group_status([]) is LagStatus.OK
    assert group_status([LagStatus.OK, LagStatus.WARN]) is LagStatus.WARN
    for bad in (LagStatus.STOP, LagStatus.STALL, LagStatus.REWIND):
        assert group_status([LagStatus.WARN, bad, LagStatus.OK]) is LagStatus.ERR


def test_evaluator_judges_only_full_windows_and_dates_entries_by_the_last_offset_change() -> None:
    ev = LagEvaluator(window=3)
    for t in (0.0, 1.0):
        res = ev.observe("g", {TP0: 10}, {TP0: 20}, now=t)
        assert res.status is LagStatus.OK and res.partitions[0].observations == int(t) + 1
    res = ev.observe("g", {TP0: 10}, {TP0: 20}, now=2.0)
    assert res.partitions[0].status is LagStatus.STOP
    assert res.status is LagStatus.ERR and res.total_lag == 10
    res = ev.observe("g", {TP0: 10}, {TP0: 20}, owned=[TP0], now=3.0)
    assert res.partitions[0].status is LagStatus.STALL and res.partitions[0].owned


def test_evaluator_keeping_up_then_stopping() -> None:
    ev = LagEvaluator(window=4)
    t = 0.0
    for i in range(8):  # advancing; lag goes up and down
        res = ev.observe("g", {TP0: 10 * i}, {TP0: 10 * i + (3 if i % 2 else 1)}, owned=[TP0], now=t)
        assert res.partitions[0].status is LagStatus.OK
        t += 1
    statuses = []
    for _ in range(5):  # the consumer leaves: offset frozen, producer goes on
        statuses.append(ev.observe("g", {TP0: 70}, {TP0: 200}, now=t).partitions[0].status)
        t += 1
    assert statuses[-1] is LagStatus.STOP
    assert LagStatus.STOP in statuses[:4]  # within one window of polls


def test_evaluator_forgets_partitions_no_longer_committed_and_skips_unknown_log_ends() -> None:
    ev = LagEvaluator(window=2)
    ev.observe("g", {TP0: 1, ("orders", 1): 1}, {TP0: 2, ("orders", 1): 2}, now=0)
    res = ev.observe("g", {TP0: 1}, {}, now=1)
    assert res.partitions == ()
    res = ev.observe("g", {TP0: 1}, {TP0: 2}, now=2)
    assert res.partitions[0].observations == 2  # TP0 kept its window; log end unknown added nothing


@pytest.mark.parametrize("window, allowed", [(1, 0), (10, -1)])
def test_bad_settings_are_refused(window: int, allowed: int) -> None:
    with pytest.raises(ValueError):
        LagEvaluator(window=window, allowed_lag=allowed)
