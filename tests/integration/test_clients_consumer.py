"""TypedConsumer on the session cluster: at-least-once across restarts, offset source, hooks, opt-in SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafkaops.clients.consumer import ConsumerError, ConsumerRecord, TypedConsumer
from kafkaops.clients.producer import TypedProducer
from kafkaops.config import ClusterProfile
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.codec import JsonCodec
from kafkaops.testing.plugin import TopicFactory
from kafkaops.waits import Deadline


def _produce(bs: str, topic: str, count: int) -> None:
    with TypedProducer(bs, topic, JsonCodec()) as p:
        for i in range(count):
            p.produce({"seq": i}, key=str(i))


def _committed(bs: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "logger": logging.getLogger(__name__)})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in tps}


def _consumer(cluster: ClusterProfile | str, topic: str, group: str, **kw: object) -> TypedConsumer[dict[str, int]]:
    return TypedConsumer(cluster, topic, group, JsonCodec(), **kw)  # type: ignore[arg-type]


def test_at_least_once_across_a_restart(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    """The first consumer fails while processing record 121: it is not committed, the next
    consumer of the group starts with it; nothing is skipped."""
    bs = kafka_cluster.bootstrap_servers
    topic = kafka_topic(partitions=3, prefix="alo")
    _produce(bs, topic, 300)
    group = f"g-{uuid.uuid4().hex[:6]}"
    processed: list[int] = []
    failed_on: ConsumerRecord[dict[str, int]] | None = None
    first = _consumer(kafka_cluster.profile, topic, group)
    with pytest.raises(RuntimeError, match="processing failed"):
        with first:
            for rec in first:
                if len(processed) == 120:
                    failed_on = rec
                    raise RuntimeError("processing failed")
                processed.append(rec.value["seq"])
    assert failed_on is not None
    committed = _committed(bs, group, topic, 3)
    # committed = the next offset after the last processed record, and not beyond
    assert committed[failed_on.partition] == failed_on.offset
    assert sum(max(o, 0) for o in committed.values()) == 120

    second = _consumer(bs, topic, group)
    again: list[int] = []
    with second:
        while len(set(processed) | set(again)) < 300:
            rec = second.poll(30)
            assert rec is not None, f"stuck at {len(set(processed) | set(again))} of 300"
            again.append(rec.value["seq"])
    assert failed_on.value["seq"] in again  # the record being processed at the failure came back
    assert set(processed) | set(again) == set(range(300))
    assert not set(processed) & set(again)  # and nothing processed was re-delivered (clean close)


def test_at_least_once_after_sigkill(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    """A consumer process killed with SIGKILL (no close, no final commit): its successor
    re-reads from the last committed offsets; every record it reported processed or not, none skipped."""
    bs = kafka_cluster.bootstrap_servers
    topic = kafka_topic(partitions=2, prefix="alo-kill")
    _produce(bs, topic, 200)
    group = f"g-{uuid.uuid4().hex[:6]}"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from kafkaops.clients.consumer import TypedConsumer
        from kafkaops.serde.codec import JsonCodec
        c = TypedConsumer({bs!r}, {topic!r}, {group!r}, JsonCodec(),
                          config={{"auto.commit.interval.ms": 200, "session.timeout.ms": 6000}})
        n = 0
        for rec in c:
            print(rec.value["seq"], flush=True)
            n += 1
            if n == 5:
                c.commit()  # commits the 4 records processed before this one
            if n == 80:
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    first = [int(x) for x in proc.stdout.split()]
    assert len(first) == 80
    committed = _committed(bs, group, topic, 2)
    # some progress committed, never ahead of what was processed (the 80th record was in hand)
    assert 4 <= sum(max(o, 0) for o in committed.values()) <= 79

    second = _consumer(bs, topic, group, config={"session.timeout.ms": 6000})
    rest: list[int] = []
    with second:
        deadline = Deadline(90)
        while len(set(first) | set(rest)) < 200 and not deadline.expired:
            rec = second.poll(1)
            if rec is not None:
                rest.append(rec.value["seq"])
    assert set(first) | set(rest) == set(range(200))
    # whatever was not committed is delivered again: at least once, not at most once
    assert len(first) + len(rest) >= 200


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_offset_source_hooks_batches_and_commit(
    kafka_cluster: LocalCluster, kafka_topic: TopicFactory, strategy: str
) -> None:
    bs = kafka_cluster.bootstrap_servers
    topic = kafka_topic(partitions=1, prefix="osrc")
    _produce(bs, topic, 40)
    events: list[tuple[str, object]] = []

    class Source:
        def starting_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
            events.append(("source", list(partitions)))
            return {(topic, 0): 25}

    consumer = _consumer(
        bs, topic, f"g-{uuid.uuid4().hex[:6]}", assignment_strategy=strategy, offset_source=Source(),
        on_assign=lambda tps: events.append(("assign", tps)), on_revoke=[lambda tps: events.append(("revoke", tps))],
    )
    consumer.add_close_hook(lambda: events.append(("close-hook", consumer.client.assignment())))
    first = consumer.poll_batch(10, timeout=30)
    assert [r.offset for r in first] == list(range(25, 25 + len(first)))  # started at the source's offset
    assert consumer.processed_offsets() == {(topic, 0): 25}  # the batch is not acknowledged yet
    second = consumer.poll_batch(100, timeout=5)  # asking for more acknowledges the first batch
    assert consumer.processed_offsets() == {(topic, 0): 25 + len(first)}
    assert [r.value["seq"] for r in first + second][-1] == 39
    consumer.ack(second[0])
    assert consumer.commit() == {(topic, 0): second[0].offset + 1}
    consumer.ack()
    assert consumer.commit() == {(topic, 0): 40}
    consumer.close()
    names = [e[0] for e in events]
    assert names[:2] == ["source", "assign"] and events[1][1] == [(topic, 0)]
    assert names.index("close-hook") < names.index("revoke")  # hooks run before the client closes
    assert events[names.index("close-hook")][1]  # the client still had its assignment in the hook
    assert _committed(bs, consumer.group_id, topic, 1) == {0: 40}


def test_sigterm_is_left_alone_unless_asked_for(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    """A library consumer leaves the host's SIGTERM handler in place; handle_sigterm=True
    (what the CLI passes) installs its own while open, stopping after the record in hand."""
    bs = kafka_cluster.bootstrap_servers
    topic = kafka_topic(partitions=1, prefix="sigterm")
    _produce(bs, topic, 10)
    previous = signal.getsignal(signal.SIGTERM)
    with _consumer(bs, topic, f"g-{uuid.uuid4().hex[:6]}") as default:
        assert signal.getsignal(signal.SIGTERM) is previous  # the default installs nothing
        assert default.poll(30) is not None
    assert signal.getsignal(signal.SIGTERM) is previous
    consumer = _consumer(bs, topic, f"g-{uuid.uuid4().hex[:6]}", handle_sigterm=True)
    assert consumer.sigterm.installed and signal.getsignal(signal.SIGTERM) is not previous
    seen = []
    with consumer:
        for rec in consumer:
            seen.append(rec.offset)
            if len(seen) == 3:
                os.kill(os.getpid(), signal.SIGTERM)
    assert seen == [0, 1, 2]  # stopped after the record in hand
    assert signal.getsignal(signal.SIGTERM) == previous
    assert _committed(bs, consumer.group_id, topic, 1) == {0: 3}


def test_bad_configuration_is_a_clear_error(kafka_cluster: LocalCluster) -> None:
    with pytest.raises(ConsumerError, match="assignment strategy"):
        _consumer(kafka_cluster.bootstrap_servers, "t", "g", assignment_strategy="sticky-ish")
    with pytest.raises(ConsumerError, match="invalid consumer configuration") as bad:
        _consumer(kafka_cluster.profile, "t", "g", config={"no.such.setting": 1})
    # names what is wrong and where, from a profile as from a bootstrap string
    assert "no.such.setting" in str(bad.value) and kafka_cluster.bootstrap_servers in str(bad.value)
