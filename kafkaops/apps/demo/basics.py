"""The demo's first area: a topic, an acks=all round trip, and the same with a leader killed."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, Producer

from kafkaops.admin import admin_client, create_topic
from kafkaops.apps.demo.steps import DemoCluster, Step, replication
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


def round_trip(cluster: ClusterProfile | str, topic: str, count: int, tag: str, timeout: float = 60.0) -> tuple[int, int]:
    """Produce ``count`` records with acks=all and read them back; (acked, read back)."""
    profile = as_profile(cluster)
    acked = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    producer = Producer(profile.librdkafka(**{"acks": "all", "enable.idempotence": True, "logger": log}))
    for i in range(count):
        producer.produce(topic, value=f"{tag}-{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    producer.flush(timeout)
    consumer = Consumer(profile.librdkafka(**{
        "group.id": f"demo-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "logger": log,
    }))
    consumer.subscribe([topic])
    seen = 0
    deadline = Deadline(timeout)
    try:
        while seen < acked and not deadline.expired:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if (msg.value() or b"").decode().startswith(f"{tag}-"):
                seen += 1
    finally:
        consumer.close()
    return acked, seen


def partition_leader(cluster: ClusterProfile | str, topic: str, partition: int = 0) -> int:
    md = admin_client(cluster).list_topics(topic=topic, timeout=10)
    return int(md.topics[topic].partitions[partition].leader)


def broker_steps(cluster: DemoCluster, messages: int = 1000) -> Iterator[Step]:
    """Create a topic, round trip, kill a leader, round trip again, restart it."""
    profile = cluster.profile
    topic = f"demo-{uuid.uuid4().hex[:6]}"
    create_topic(profile, topic, partitions=3, replication_factor=replication(cluster))
    yield Step("create topic", f"{topic}: 3 partitions, replication factor 3, min.insync.replicas 2")
    acked, seen = round_trip(profile, topic, messages, "before")
    yield Step("round trip", f"{acked} acknowledged (acks=all), {seen} read back", acked == seen == messages)
    victim = partition_leader(profile, topic)
    cluster.kill_broker(victim)
    yield Step("kill broker", f"SIGKILL broker {victim}, leader of {topic}[0]")
    acked, seen = round_trip(profile, topic, messages, "after")
    yield Step(
        "round trip, one broker dead",
        f"{acked} acknowledged, {seen} read back; leader of {topic}[0] is now broker "
        f"{partition_leader(profile, topic)}",
        acked == seen == messages,
    )
    cluster.start_broker(victim)
    yield Step("restart broker", f"broker {victim} is back with the same id and data")
