"""OffsetTracker: what counts as processed, and what may be stored or committed."""

from __future__ import annotations

from kafkaops.clients.offsets import OffsetTracker

A, B = ("t", 0), ("t", 1)


def test_handed_out_records_count_once_acknowledged() -> None:
    o = OffsetTracker()
    o.assign([A, B], incremental=False)
    o.delivered(A, 10)
    o.delivered(B, 3)
    assert o.processed_offsets() == {}  # handed out, not processed yet
    o.ack_all()
    assert o.processed_offsets() == {A: 11, B: 4} and o.unacked == {}


def test_ack_of_one_record_covers_the_ones_before_it_only() -> None:
    o = OffsetTracker()
    o.assign([A], incremental=False)
    o.delivered(A, 5)
    o.ack(A, 3)  # an earlier record: processed up to it, the one in hand stays open
    assert o.processed_offsets() == {A: 4} and o.unacked == {A: 6}
    o.ack(A, 5)
    assert o.processed_offsets() == {A: 6} and o.unacked == {}
    o.ack(A, 2)  # never backwards
    assert o.processed_offsets() == {A: 6}


def test_a_skipped_record_waits_for_the_record_in_hand() -> None:
    o = OffsetTracker()
    o.assign([A, B], incremental=False)
    o.delivered(A, 7)
    o.skipped(A, 8)  # dead-lettered while record 7 is being processed: acknowledged together
    assert o.processed_offsets() == {} and o.unacked == {A: 9}
    o.skipped(B, 0)  # nothing in hand: processed at once
    assert o.processed_offsets() == {B: 1}


def test_only_owned_partitions_are_stored_and_a_new_owner_starts_clean() -> None:
    o = OffsetTracker()
    o.assign([A, B], incremental=False)
    o.delivered(A, 1)
    o.delivered(B, 1)
    o.ack_all()
    o.mark_stored({A: 2})
    assert o.unstored(o.processed_offsets()) == {B: 2}
    assert o.processed_offsets([B]) == {B: 2}
    o.forget([B])
    assert o.processed_offsets() == {A: 2} and B not in o.assigned
    o.assign([B], incremental=True)  # back again (cooperative): no stale progress
    assert o.assigned == {A, B} and o.processed_offsets() == {A: 2}
    o.start_at(B, 40)  # an offset source says where B starts
    assert o.processed_offsets() == {A: 2, B: 40}
    o.assign([B], incremental=False)  # eager rebalance: the assignment is replaced
    assert o.assigned == {B} and o.processed_offsets() == {}
