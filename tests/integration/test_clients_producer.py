"""TypedProducer on real brokers: futures, partitioner hook, backpressure, and a broker killed mid-run."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError

from kafkaops.admin import admin_client
from kafkaops.clients.partitioners import murmur2_partition
from kafkaops.clients.producer import DeliveryReport, ProducerError, QueueFullError, TypedProducer, wait
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.codec import EncodeError, JsonCodec
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until
from kafkaops.waits import Deadline


def _read(cluster: ClusterProfile | str, topic: str, count: int, timeout: float = 90.0) -> list[Any]:
    c = Consumer(as_profile(cluster).librdkafka(**{
        "group.id": f"r-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
        "logger": logging.getLogger(__name__), "enable.auto.commit": False}))
    c.subscribe([topic])
    got: list[Any] = []
    deadline = Deadline(timeout)
    try:
        while len(got) < count and not deadline.expired:
            for m in c.consume(500, 0.5):
                if m.error() is None:
                    got.append(m)
    finally:
        c.close()
    return got


def test_futures_callbacks_keys_and_headers(any_cluster: LocalCluster, any_topic: TopicFactory) -> None:
    """A typed round trip (on the plaintext and on the secured cluster)."""
    profile = any_cluster.profile
    topic = any_topic(partitions=3, prefix="prod")
    reports: list[DeliveryReport | None] = []
    producer = TypedProducer(any_cluster.profile, topic, JsonCodec())
    assert producer.config["acks"] == "all" and producer.config["enable.idempotence"] is True
    assert producer.config["partitioner"] == "murmur2_random"
    futures = [
        producer.produce({"n": i}, key="same-key", headers={"h": b"v"}, on_delivery=lambda e, r: reports.append(r))
        for i in range(20)
    ]
    first = futures[0].result(30)  # waiting serves the delivery callbacks itself
    assert isinstance(first, DeliveryReport) and first.topic == topic and first.offset == 0 and first.timestamp > 0
    assert producer.flush(30) == 0
    results = [f.result(0) for f in futures]
    assert len({r.partition for r in results}) == 1  # one key, one partition (murmur2)
    assert [r.offset for r in results] == list(range(results[0].offset, results[0].offset + 20))
    assert len(reports) == 20 and all(r is not None for r in reports)
    assert (producer.acknowledged, producer.failed) == (20, 0)
    msgs = _read(profile, topic, 20)
    assert {m.key() for m in msgs} == {b"same-key"} and msgs[0].headers() == [("h", b"v")]
    with pytest.raises(EncodeError):
        producer.produce({"bad": object()})
    # done callbacks, and wait() (serving the callbacks too) while another thread flushes
    done: list[int] = []
    more = [producer.produce({"n": i}) for i in range(50)]
    for i, f in enumerate(more):
        f.add_done_callback(lambda fut, i=i: done.append(i) if fut.exception(0) is None else None)
    flusher = threading.Thread(target=producer.flush, args=(30,))
    flusher.start()
    finished, pending = wait(more, timeout=30)
    flusher.join(30)
    assert not pending and finished == set(more) and sorted(done) == list(range(50))
    assert (producer.acknowledged, producer.failed) == (70, 0)
    producer.close()


def test_partitioner_hook(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    bs = kafka_cluster.bootstrap_servers
    topic = kafka_topic(partitions=3, prefix="part")

    class ToTwo:
        def __init__(self) -> None:
            self.bound: Any = None
            self.calls: list[tuple[str, bytes | None]] = []
            self.deliveries: list[tuple[str, int, KafkaError | None, float]] = []

        def bind(self, client: Any) -> None:
            self.bound = client

        def partition(self, topic: str, key: bytes | None) -> int | None:
            self.calls.append((topic, key))
            return 2 if key != b"free" else None

        def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
            self.deliveries.append((topic, partition, error, latency_s))

    part = ToTwo()
    with TypedProducer(bs, topic, JsonCodec(), partitioner=part) as producer:
        assert part.bound is producer.client
        futures = [producer.produce({"n": i}, key=f"k{i}") for i in range(10)]
        free = producer.produce({"n": "free"}, key="free")
    assert {f.result(0).partition for f in futures} == {2}
    assert free.result(0).partition == murmur2_partition(b"free", 3)  # None: librdkafka's murmur2_random decides
    assert part.calls[0] == (topic, b"k0") and len(part.calls) == 11
    assert len(part.deliveries) == 11
    assert all(d[0] == topic and d[2] is None and d[3] > 0 for d in part.deliveries)
    assert sum(1 for d in part.deliveries if d[1] == 2) >= 10


def test_queue_full_backpressure_ends_in_a_clear_error() -> None:
    """No broker at all: the local queue (5 records) fills, produce polls and retries, then gives up."""
    producer = TypedProducer(
        "127.0.0.1:1", "nowhere", JsonCodec(), queue_full_timeout=1.0,
        config={"queue.buffering.max.messages": 5, "message.timeout.ms": 60000},
    )
    for i in range(5):
        producer.produce({"n": i})
    t0 = time.monotonic()
    with pytest.raises(QueueFullError, match="still full"):
        producer.produce({"n": 5})
    assert time.monotonic() - t0 >= 0.9  # it did wait for room before giving up
    with pytest.raises(ProducerError, match="unacknowledged"):
        producer.close(timeout=0.5)
    assert producer.acknowledged == 0


def test_killing_a_broker_loses_no_acknowledged_record(
    fresh_kafka_cluster: LocalCluster, fresh_topic_factory: Callable[[LocalCluster], TopicFactory]
) -> None:
    """A producer keeps producing while the leader of partition 0 is SIGKILLed; every record
    the brokers acknowledged (acks=all, min.insync.replicas=2) is in the topic afterwards.
    A cluster of its own: the session cluster is not broken for the tests after it."""
    kafka_cluster = fresh_kafka_cluster
    bs = kafka_cluster.bootstrap_servers
    topic = fresh_topic_factory(kafka_cluster)(partitions=3, prefix="kill")
    acked: list[int] = []
    failed: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def on_delivery(seq: int) -> Any:
        def cb(err: Any, report: Any) -> None:
            with lock:
                (acked if err is None else failed).append(seq)
        return cb

    def run() -> None:
        with TypedProducer(kafka_cluster.profile, topic, JsonCodec()) as producer:
            seq = 0
            while not stop.is_set():
                producer.produce({"seq": seq}, key=str(seq), on_delivery=on_delivery(seq))
                seq += 1
                producer.poll(0.002)

    leader = admin_client(bs).list_topics(topic=topic, timeout=10).topics[topic].partitions[0].leader
    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(lambda: len(acked) >= 200, 60, "records acknowledged before the kill")
        kafka_cluster.kill_broker(leader)
        before = len(acked)
        wait_until(lambda: len(acked) >= before + 300, 90, "records acknowledged after the kill")
    finally:
        stop.set()
        thread.join(120)
    assert not thread.is_alive()
    assert not failed, f"{len(failed)} records failed delivery"
    msgs = _read(bs, topic, len(acked))
    stored = {int(m.key()) for m in msgs}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged records missing, e.g. {sorted(missing)[:5]}"
    assert len(msgs) == len(stored)  # idempotence: no duplicates from retries

