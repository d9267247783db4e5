"""TypedShareConsumer on a real Kafka 4.x cluster: accept / release / reject, failures, the DLQ.

Each test uses a fresh topic and share group on the session KRaft cluster; the group's
acquisition lock is short (2 s) so records a test leaves come back in seconds.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from kafkaops.clients import dlq
from kafkaops.clients.share_consumer import ShareRecord, TypedShareConsumer
from kafkaops.clients.share_groups import ShareConsumerError, configure_share_group, share_group_config
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.codec import JsonCodec, UndecodableError
from kafkaops.testing.plugin import TopicFactory
from kafkaops.waits import Deadline

LOG = logging.getLogger(__name__)
LOCK_MS = 2000


@pytest.fixture
def share_topic(kraft_kafka_cluster: LocalCluster,
                fresh_topic_factory: Callable[[LocalCluster], TopicFactory]) -> TopicFactory:
    return fresh_topic_factory(kraft_kafka_cluster)


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "logger": LOG})
    for v in values:
        p.produce(topic, v, partition=0)
    assert p.flush(60) == 0


def _group(cluster: LocalCluster) -> str:
    """A new share group reading from the earliest record, with a short acquisition lock."""
    group = f"sg-{uuid.uuid4().hex[:8]}"
    configure_share_group(cluster.profile, group, {"share.auto.offset.reset": "earliest",
                                                   "share.record.lock.duration.ms": LOCK_MS})
    return group


def _until(consumer: TypedShareConsumer[Any], done: Callable[[], bool], handler: Callable[[ShareRecord[Any]], None],
           timeout: float = 60.0) -> None:
    """``consumer.process(handler)`` until ``done()`` (asserted within ``timeout``: joining a new
    share group takes a few seconds)."""
    deadline = Deadline(timeout)
    while not done():
        assert not deadline.expired, f"not done within {timeout:.0f}s; stats {consumer.stats}"
        consumer.process(handler, idle_timeout=0.5, max_records=1)


def _quiet(consumer: TypedShareConsumer[Any], seconds: float) -> list[ShareRecord[Any]]:
    """Whatever the group still delivers within ``seconds`` (longer than the lock: anything owed comes)."""
    got: list[ShareRecord[Any]] = []
    window = Deadline(seconds)
    while not window.expired:
        rec = consumer.poll(window.remaining(cap=0.5))
        if rec is not None:
            got.append(rec)
    return got


def _comes_again(cluster: LocalCluster, topic: str, group: str, count: int) -> list[tuple[int, int]]:
    """(n, delivery_count) of what a new member of ``group`` gets: ``count`` records, then
    whatever else comes within the lock duration and 2 s (nothing more is owed), sorted."""
    again: list[ShareRecord[Any]] = []
    with TypedShareConsumer(cluster.profile, topic, group, JsonCodec()) as consumer:
        _until(consumer, lambda: len(again) >= count, again.append)
        again += _quiet(consumer, LOCK_MS / 1000 + 2)
    return sorted((r.value["n"], r.delivery_count) for r in again)


def _dead_letters(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex[:6]}", "logger": LOG,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic + dlq.DEFAULT_SUFFIX])
    got: list[Any] = []
    deadline = Deadline(timeout)
    try:
        while len(got) < count and not deadline.expired:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m)
        linger = Deadline(2)  # any extra dead letter would show here
        while not linger.expired:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m)
    finally:
        c.close()
    return got


def _values(n: int) -> list[bytes]:
    return [json.dumps({"n": i}).encode() for i in range(n)]


def test_accept_release_reject(kraft_kafka_cluster: LocalCluster, share_topic: TopicFactory) -> None:
    """A released record comes back (delivery count 2); a rejected one never does; accepted ones neither."""
    topic = share_topic(partitions=1)
    _produce(kraft_kafka_cluster.bootstrap_servers, topic, _values(10))
    group = _group(kraft_kafka_cluster)
    first: list[tuple[int, int]] = []
    with TypedShareConsumer(kraft_kafka_cluster.profile, topic, group, JsonCodec()) as consumer:
        def decide(rec: ShareRecord[Any]) -> None:
            first.append((rec.value["n"], rec.delivery_count))
            {3: consumer.reject, 5: consumer.release}.get(rec.value["n"], consumer.accept)(rec)
        _until(consumer, lambda: len(first) >= 10, decide)
        assert consumer.commit() == 1
        stats = consumer.stats
    assert sorted(first) == [(n, 1) for n in range(10)]
    assert (stats.accepted, stats.released, stats.rejected) == (8, 1, 1)
    assert _comes_again(kraft_kafka_cluster, topic, group, 1) == [(5, 2)], \
        "only the released record comes again, once; the rejected and accepted ones never"


def test_unacknowledged_records_come_back_after_an_exception(kraft_kafka_cluster: LocalCluster,
                                                             share_topic: TopicFactory) -> None:
    """Leaving the with block by an exception releases what was handed out and not acknowledged."""
    topic = share_topic(partitions=1)
    _produce(kraft_kafka_cluster.bootstrap_servers, topic, _values(5))
    group = _group(kraft_kafka_cluster)
    with pytest.raises(RuntimeError, match="crash"):
        with TypedShareConsumer(kraft_kafka_cluster.profile, topic, group, JsonCodec()) as consumer:
            for rec in consumer:
                if rec.value["n"] == 2:
                    raise RuntimeError("crash while processing record 2")
    assert _comes_again(kraft_kafka_cluster, topic, group, 3) == [(2, 2), (3, 2), (4, 2)], \
        "the record in hand and the rest of the batch come again; those asked past were accepted"


def test_handler_failures_go_to_the_dlq_at_the_delivery_limit(kraft_kafka_cluster: LocalCluster,
                                                               share_topic: TopicFactory) -> None:
    """A handler that keeps failing: released until delivery 3, then dead-lettered and rejected."""
    topic = share_topic(partitions=1)
    _produce(kraft_kafka_cluster.bootstrap_servers, topic, _values(6))
    group = _group(kraft_kafka_cluster)
    deliveries: list[tuple[int, int]] = []

    def handler(rec: ShareRecord[Any]) -> None:
        deliveries.append((rec.value["n"], rec.delivery_count))
        if rec.value["n"] == 4:
            raise ValueError("cannot bill order 4")

    with TypedShareConsumer(kraft_kafka_cluster.profile, topic, group, JsonCodec(), max_deliveries=3) as consumer:
        _until(consumer, lambda: consumer.stats.dead_lettered >= 1 and len(deliveries) >= 8, handler)
        deliveries += [(r.value["n"], r.delivery_count) for r in _quiet(consumer, LOCK_MS / 1000 + 1)]
        stats = consumer.stats
    assert [dc for n, dc in deliveries if n == 4] == [1, 2, 3], "delivered 3 times, then never again"
    assert sorted(n for n, _ in deliveries if n != 4) == [0, 1, 2, 3, 5]
    assert (stats.handler_failures, stats.released, stats.dead_lettered, stats.rejected) == (3, 2, 1, 1)
    letters = _dead_letters(kraft_kafka_cluster.bootstrap_servers, topic, 1)
    assert len(letters) == 1
    h = dict(letters[0].headers())
    assert json.loads(letters[0].value()) == {"n": 4}
    assert h[dlq.H_ERROR_CLASS] == b"ValueError" and h[dlq.H_ERROR_MESSAGE] == b"cannot bill order 4"
    assert (h[dlq.H_SOURCE_TOPIC], h[dlq.H_SOURCE_PARTITION], h[dlq.H_SOURCE_OFFSET]) == (topic.encode(), b"0", b"4")


def test_records_that_do_not_decode_go_to_the_dlq(kraft_kafka_cluster: LocalCluster,
                                                   share_topic: TopicFactory) -> None:
    """Undecodable records never reach the caller: released, then dead-lettered at the limit."""
    topic = share_topic(partitions=1)
    _produce(kraft_kafka_cluster.bootstrap_servers, topic,
             [b'{"n": 0}', b"\x00\x00\x00\x00\x07garbage", b'{"n": 2}', b"{not json", b'{"n": 4}'])
    group = _group(kraft_kafka_cluster)
    seen: list[int] = []
    with TypedShareConsumer(kraft_kafka_cluster.profile, topic, group, JsonCodec(), max_deliveries=2) as consumer:
        _until(consumer, lambda: consumer.stats.dead_lettered >= 2 and len(seen) >= 3,
               lambda r: seen.append(r.value["n"]))
        stats = consumer.stats
    assert sorted(seen) == [0, 2, 4]
    assert (stats.decode_failures, stats.dead_lettered, stats.accepted) == (4, 2, 3)
    letters = _dead_letters(kraft_kafka_cluster.bootstrap_servers, topic, 2)
    assert sorted(m.value() for m in letters) == [b"\x00\x00\x00\x00\x07garbage", b"{not json"]
    for m in letters:
        h = dict(m.headers())
        assert h[dlq.H_ERROR_CLASS] == UndecodableError.__name__.encode()
        assert h[dlq.H_SOURCE_OFFSET] in (b"1", b"3")


def test_bad_setups_fail_fast_with_a_clear_error(kraft_kafka_cluster: LocalCluster, share_topic: TopicFactory) -> None:
    """Unknown topic, a delivery limit above the group's, an unreachable cluster: one clear error each."""
    profile = kraft_kafka_cluster.profile
    topic = share_topic(partitions=1)
    with pytest.raises(ShareConsumerError, match="no-such-topic.* do not exist"):
        TypedShareConsumer(profile, "no-such-topic", "g", JsonCodec())
    limit = int(share_group_config(profile, "g-limit")["share.delivery.count.limit"])
    with pytest.raises(ShareConsumerError, match=f"max_deliveries={limit + 1} exceeds .*count.limit={limit}"):
        TypedShareConsumer(profile, topic, "g-limit", JsonCodec(), max_deliveries=limit + 1)
    with pytest.raises(ShareConsumerError, match="cannot read metadata from 127.0.0.1:1"):
        TypedShareConsumer("127.0.0.1:1", topic, "g", JsonCodec())
    with pytest.raises(ShareConsumerError, match="max_deliveries must be at least 1"):
        TypedShareConsumer(profile, topic, "g", JsonCodec(), max_deliveries=0)


@pytest.mark.zookeeper_mode
def test_a_cluster_without_share_groups_says_so(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    """Kafka 3.9 (ZooKeeper mode) has no share groups: one clear error at construction, not a silent consumer."""
    topic = kafka_topic(partitions=1)
    deadline = Deadline(30)
    with pytest.raises(ShareConsumerError) as failure:
        TypedShareConsumer(kafka_cluster.profile, topic, f"sg-{uuid.uuid4().hex[:6]}", JsonCodec())
    expected = f"{kafka_cluster.bootstrap_servers} has no share groups (Kafka 4.2+ in KRaft mode needed)"
    assert str(failure.value) == expected
    assert not deadline.expired
