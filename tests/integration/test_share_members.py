"""A share group of member processes on a real Kafka 4.x cluster: the split, and a member's death.

Four members (child processes) on a topic of 2 partitions: more members than partitions,
which a consumer group cannot use. The records are produced first, in small producer
batches (a share fetch acquires whole batches), and the members start together.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from kafkaops.apps.bench.queues import produce_json
from kafkaops.apps.demo.share_members import Coord, ShareRun, run_share_group
from kafkaops.clients.share_groups import configure_share_group
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory

LOCK_MS = 3000


@pytest.fixture
def queue(kraft_kafka_cluster: LocalCluster,
          fresh_topic_factory: Callable[[LocalCluster], TopicFactory]) -> tuple[str, set[Coord]]:
    """A topic of 2 partitions holding 1200 JSON records, and their coordinates."""
    topic = fresh_topic_factory(kraft_kafka_cluster)(partitions=2, prefix="queue")
    coords = produce_json(kraft_kafka_cluster.profile, topic, 1200, batch_records=10)
    assert len(coords) == 1200 and {p for p, _ in coords} == {0, 1}
    return topic, coords


def _run(cluster: LocalCluster, queue: tuple[str, set[Coord]], workdir: Path, fault: str | None = None) -> ShareRun:
    topic, coords = queue
    group = f"workers-{uuid.uuid4().hex[:8]}"
    configure_share_group(cluster.profile, group, {"share.auto.offset.reset": "earliest",
                                                   "share.record.lock.duration.ms": LOCK_MS})
    return run_share_group(cluster.profile, topic, group, workdir, lambda: coords, members=4, fault=fault,
                           timeout=120)


def test_four_members_split_two_partitions_each_record_once(kraft_kafka_cluster: LocalCluster,
                                                            queue: tuple[str, set[Coord]], tmp_path: Path) -> None:
    run = _run(kraft_kafka_cluster, queue, tmp_path)
    assert run.lost == 0, f"{run.lost} records never processed"
    assert all(n > 0 for n in run.per_member.values()), f"a member got no work: {run.per_member}"
    assert run.duplicates == 0 and set(run.counts.values()) == {1}, "a record was processed twice"
    assert not run.redelivered, f"no-fault run, yet records came twice: {run.redelivered[:5]}"
    assert all(m.closed for m in run.members), "a member did not close cleanly"
    assert sum(m.stats["accepted"] for m in run.members) == len(queue[1])
    assert sum(m.stats["released"] + m.stats["rejected"] for m in run.members) == 0


def test_a_killed_members_records_are_delivered_to_the_others(kraft_kafka_cluster: LocalCluster,
                                                              queue: tuple[str, set[Coord]], tmp_path: Path) -> None:
    """SIGKILL while holding a fetched batch: its connection drops, the broker releases the batch,
    the other members process it (delivery count 2); every record is processed."""
    run = _run(kraft_kafka_cluster, queue, tmp_path, fault="kill")
    victim = next(m for m in run.members if m.fault == "kill")
    assert victim.holding is not None and not victim.closed
    assert run.lost == 0, f"{run.lost} records lost after the kill"
    again = {(p, o): (name, dc) for name, p, o, dc in run.redelivered}
    assert victim.holding[:2] in again, "the record the killed member held was not delivered again"
    assert all(name != victim.name and dc == 2 for name, dc in again.values())
    mine = {(p, o) for p, o, _ in victim.processed}
    assert not mine & set(again), "records the victim accepted and committed came again"
    assert Counter(run.counts.values()) == {1: len(queue[1])}, "committed acknowledgements: each record once"


def test_a_frozen_members_records_come_back_when_the_lock_expires(kraft_kafka_cluster: LocalCluster,
                                                                  queue: tuple[str, set[Coord]],
                                                                  tmp_path: Path) -> None:
    """SIGSTOP while holding a batch: the connection stays, so the records come back only when
    their acquisition lock expires; then the others process them and nothing is lost."""
    run = _run(kraft_kafka_cluster, queue, tmp_path, fault="pause")
    victim = next(m for m in run.members if m.fault == "pause")
    assert victim.holding is not None
    assert run.lost == 0, f"{run.lost} records lost behind a frozen member"
    again = {(p, o) for _, p, o, _ in run.redelivered}
    assert victim.holding[:2] in again, "the frozen member's record never came back"
    assert run.redelivered_after is not None and run.redelivered_after > 0
