"""The chaos checker on hand-made histories: each property sees the violation it exists for
(a lost, moved, duplicated, phantom or reordered record; a consumer going backwards), and
a clean history passes them all. Pure logic, no cluster."""

from __future__ import annotations

from kafkaops.chaos.checker import check_counts, check_group, check_producer, check_share, max_ack_gap
from kafkaops.chaos.history import Delivery, LogRecord, Sent, first_covered_after, first_seen_after
from kafkaops.chaos.report import cell_text, markdown
from kafkaops.chaos.runner import CellResult


def acked(w: int, q: int, p: int, o: int, at: float = 0.0) -> Sent:
    return Sent(w, q, f"w{w}-k{q % 2}", sent_at=at, acked_at=at + 0.01, partition=p, offset=o)


def rec(p: int, o: int, w: int, q: int) -> LogRecord:
    return LogRecord(p, o, w, q, f"w{w}-k{q % 2}")


def clean() -> tuple[list[Sent], list[LogRecord]]:
    sent = [acked(0, 0, 0, 0), acked(0, 1, 0, 1), acked(1, 0, 1, 0), acked(0, 2, 0, 2)]
    log = [rec(0, 0, 0, 0), rec(0, 1, 0, 1), rec(0, 2, 0, 2), rec(1, 0, 1, 0)]
    return sent, log


def failing(checks: list) -> dict[str, int]:  # type: ignore[type-arg]
    return {c.name: c.violations for c in checks if not c.passed}


def test_a_clean_history_passes_every_producer_check() -> None:
    sent, log = clean()
    assert failing(check_producer(sent, log)) == {}


def test_an_acknowledged_record_missing_from_the_log_is_lost() -> None:
    sent, log = clean()
    assert failing(check_producer(sent, log[1:])) == {"acknowledged records lost": 1}


def test_an_acknowledged_record_at_another_offset_is_reported() -> None:
    sent, _ = clean()
    log = [rec(0, 0, 0, 1), rec(0, 1, 0, 0), rec(0, 2, 0, 2), rec(1, 0, 1, 0)]
    found = failing(check_producer(sent, log))
    assert found["acknowledged offsets kept"] == 2
    assert found["writer order per partition"] == 1


def test_an_acknowledgement_without_offset_needs_the_record_in_the_log_only() -> None:
    sent, log = clean()
    sent[1].offset = None  # a retried batch the broker had written: DUPLICATE_SEQUENCE_NUMBER, no offset
    assert failing(check_producer(sent, log)) == {}
    assert failing(check_producer(sent, [r for r in log if r.seq != 1 or r.writer != 0])) == {
        "acknowledged records lost": 1}


def test_a_record_written_twice_is_a_duplicate() -> None:
    sent, log = clean()
    found = failing(check_producer(sent, [*log, rec(0, 3, 0, 2)]))
    assert found["no duplicates"] == 1


def test_in_doubt_records_may_appear_but_refused_or_unsent_ones_may_not() -> None:
    sent, log = clean()
    pending = Sent(0, 3, "w0-k1", sent_at=1.0)  # no delivery report: in doubt
    timed_out = Sent(0, 4, "w0-k0", sent_at=1.0, error="_MSG_TIMED_OUT")  # in doubt too
    refused = Sent(0, 5, "w0-k1", sent_at=1.0, error="NOT_ENOUGH_REPLICAS")  # certainly not written
    assert pending.in_doubt and timed_out.in_doubt and not refused.in_doubt
    log += [rec(0, 3, 0, 3), rec(0, 4, 0, 4)]
    assert failing(check_producer([*sent, pending, timed_out, refused], log)) == {}
    found = failing(check_producer([*sent, pending, timed_out, refused], [*log, rec(0, 5, 0, 5), rec(2, 0, 7, 0)]))
    assert found == {"nothing unacknowledged visible": 2}


def d(member: str, segment: int, p: int, o: int, w: int, q: int, at: float = 1.0) -> Delivery:
    return Delivery(member, segment, p, o, w, q, f"w{w}-k{q % 2}", at)


def test_group_checks_pass_with_redelivery_after_a_new_assignment() -> None:
    _, log = clean()
    deliveries = [d("a", 1, 0, 0, 0, 0), d("a", 1, 0, 1, 0, 1), d("b", 2, 0, 1, 0, 1), d("b", 2, 0, 2, 0, 2),
                  d("b", 3, 1, 0, 1, 0)]
    assert failing(check_group(deliveries, log)) == {}


def test_group_checks_catch_backwards_offsets_order_unseen_and_foreign() -> None:
    _, log = clean()
    deliveries = [d("a", 1, 0, 1, 0, 1), d("a", 1, 0, 0, 0, 0), d("a", 1, 0, 2, 0, 2), d("a", 1, 1, 0, 9, 9)]
    found = failing(check_group(deliveries, log))
    assert found["offsets strictly increasing"] == 1
    assert "per-key order kept" not in found  # sequences 1 and 0 are of different keys
    assert found["group got only the log's records"] == 1
    assert "every record reached the group" not in found
    found = failing(check_group(deliveries[:3], log))
    assert found["every record reached the group"] == 1


def test_per_key_order_is_checked_within_an_ownership() -> None:
    log = [rec(0, 0, 0, 2), rec(0, 1, 0, 0)]  # w0-k0 twice, sequence 2 before 0
    deliveries = [d("a", 1, 0, 0, 0, 2), d("a", 1, 0, 1, 0, 0)]
    assert failing(check_group(deliveries, log)) == {"per-key order kept": 1}


def test_share_checks_allow_any_order_but_not_a_missed_record() -> None:
    _, log = clean()
    deliveries = [d("b", 0, 0, 2, 0, 2), d("a", 0, 0, 0, 0, 0), d("a", 0, 0, 1, 0, 1), d("b", 0, 0, 0, 0, 0)]
    assert failing(check_share(deliveries, log)) == {"every record reached the share group": 1}
    assert failing(check_share([*deliveries, d("a", 0, 1, 0, 1, 0)], log)) == {}


def test_counts_must_equal_the_log_key_by_key() -> None:
    _, log = clean()
    assert check_counts({"w0-k0": 2, "w0-k1": 1, "w1-k0": 1}, log).passed
    off_by_one = check_counts({"w0-k0": 3, "w0-k1": 1, "w1-k0": 1}, log)
    assert off_by_one.violations == 1 and "w0-k0: 3 counted, 2 in the log" in off_by_one.detail
    assert check_counts({"w0-k0": 2, "w0-k1": 1}, log).violations == 1


def test_figures_ack_gap_and_end_to_end_recovery() -> None:
    sent = [acked(0, i, i % 2, i // 2, at=t) for i, t in enumerate([0.0, 0.1, 5.0, 5.1, 5.2, 9.0])]
    assert round(max_ack_gap(sent), 2) == 4.9
    # partition 0 holds sequences 0, 2, 4 (offsets 0, 1, 2); partition 1 holds 1, 3, 5
    seen = [(0, 0, 0.5), (1, 0, 0.6), (0, 1, 6.0), (1, 1, 7.5), (0, 2, 6.1)]
    first = first_seen_after(sent, seen, since=4.0, partitions=[0, 1])
    assert first == {0: 6.0, 1: 7.5}
    assert first_seen_after(sent, seen[:3], since=4.0, partitions=[0, 1])[1] is None
    checkpoints = [(3.0, {0: 1, 1: 1}), (6.5, {0: 3, 1: 1}), (8.0, {0: 3, 1: 2})]
    assert first_covered_after(sent, checkpoints, since=4.0, partitions=[0, 1]) == {0: 6.5, 1: 8.0}


def test_report_cells_say_pass_fail_or_why_not() -> None:
    ok = CellResult("group", "leader-kill", "pass", figures={"records": 6012, "max_ack_gap": 6.31, "recovery": 7.0})
    assert cell_text(ok) == "**pass** · 6,012 acked · gap 6.3 s · recovery 7.0 s"
    na = CellResult("share", "leader-kill", "unsupported",
                    "not supported on this cluster: share groups need a KRaft cluster (Kafka 4.x)")
    assert cell_text(na) == "n/a: share groups need a KRaft cluster (Kafka 4.x)"
    table = markdown([ok, na])
    assert table.splitlines()[0] == "| fault | group | share |"
    assert "| leader-kill | **pass**" in table
