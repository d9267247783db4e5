"""The end-to-end demo `kafkaops demo` runs against a local cluster.

Each step is a generator item (title, detail) so the CLI can render progress while
the library itself prints nothing. Later parts of kafkaops add their steps here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer

from kafkaops.admin import admin_client, create_topic
from kafkaops.errors import KafkaopsError
from kafkaops.local.cluster import LocalCluster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    title: str
    detail: str
    ok: bool = True


def round_trip(bootstrap_servers: str, topic: str, count: int, tag: str, timeout: float = 60.0) -> tuple[int, int]:
    """Produce ``count`` records with acks=all and read them back; (acked, read back)."""
    acked = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "acks": "all", "enable.idempotence": True, "logger": log}
    )
    for i in range(count):
        producer.produce(topic, value=f"{tag}-{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    producer.flush(timeout)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"demo-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "logger": log,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < acked and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if (msg.value() or b"").decode().startswith(f"{tag}-"):
                seen += 1
    finally:
        consumer.close()
    return acked, seen


def partition_leader(bootstrap_servers: str, topic: str, partition: int = 0) -> int:
    md = admin_client(bootstrap_servers).list_topics(topic=topic, timeout=10)
    return int(md.topics[topic].partitions[partition].leader)


def run(cluster: LocalCluster, messages: int = 1000) -> Iterator[Step]:
    """Create a topic, round trip, kill a leader, round trip again, restart it."""
    bootstrap = cluster.bootstrap_servers
    topic = f"demo-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions=3, replication_factor=min(3, len(cluster.brokers)))
    yield Step("create topic", f"{topic}: 3 partitions, replication factor 3, min.insync.replicas 2")
    acked, seen = round_trip(bootstrap, topic, messages, "before")
    yield Step("round trip", f"{acked} acknowledged (acks=all), {seen} read back", acked == seen == messages)
    victim = partition_leader(bootstrap, topic)
    cluster.kill_broker(victim)
    yield Step("kill broker", f"SIGKILL broker {victim}, leader of {topic}[0]")
    acked, seen = round_trip(bootstrap, topic, messages, "after")
    yield Step(
        "round trip, one broker dead",
        f"{acked} acknowledged, {seen} read back; leader of {topic}[0] is now broker "
        f"{partition_leader(bootstrap, topic)}",
        acked == seen == messages,
    )
    cluster.start_broker(victim)
    yield Step("restart broker", f"broker {victim} is back with the same id and data")


class DemoFailed(KafkaopsError):
    """A demo step did not reach its expected outcome."""
