"""Every kind of poison message lands in <topic>.dlq with its headers; the consumer keeps going."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kafkaops.admin import admin_client
from kafkaops.clients import dlq
from kafkaops.clients.consumer import PoisonMessageError, TypedConsumer
from kafkaops.config import ClusterProfile
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.avro import AvroCodec, AvroSchema, wire_header
from kafkaops.serde.registry import SchemaRegistry
from kafkaops.testing.plugin import TopicFactory
from kafkaops.waits import Deadline

ROOT = Path(__file__).resolve().parents[2]
LOG = logging.getLogger(__name__)


@pytest.fixture
def registry(any_cluster: LocalCluster) -> Iterator[SchemaRegistry]:
    with Coordinator(any_cluster.profile, root=f"/kafkaops-test/{uuid.uuid4().hex[:8]}") as coord:
        yield SchemaRegistry(coord)


def _read_all(cluster: ClusterProfile, topic: str, count: int, timeout: float = 60.0) -> list[Any]:
    consumer = Consumer(cluster.librdkafka(**{"group.id": f"r-{uuid.uuid4().hex[:6]}", "logger": LOG,
                                              "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    consumer.subscribe([topic])
    got: list[Any] = []
    try:
        deadline = Deadline(timeout)
        while len(got) < count and not deadline.expired:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m)
    finally:
        consumer.close()
    return got


def test_poison_messages_go_to_the_dlq_with_headers(
    any_cluster: LocalCluster, any_topic: TopicFactory, registry: SchemaRegistry
) -> None:
    """Typed Avro consumption with the registry in ZooKeeper, poison records dead-lettered
    (on the plaintext and on the secured cluster)."""
    profile = any_cluster.profile
    topic = any_topic(partitions=1, prefix="dlq")
    schema = AvroSchema.load(ROOT / "schemas/payment-v1.avsc")
    sid = registry.register("payments-value", schema).id
    codec: AvroCodec[dict[str, Any]] = AvroCodec(schema, sid, registry=registry)

    def good(n: int) -> bytes:
        return codec.encode({"payment_id": f"p{n}", "order_id": "o", "amount_cents": n, "currency": "EUR",
                             "method": "CARD", "paid_at": 1})

    poison = {
        "WrongMagicByteError": b'{"payment_id": "p-json"}',  # undecodable: JSON, not Avro
        "TruncatedMessageError": b"\x00\x00",  # shorter than the wire header
        "UnknownSchemaIdError": wire_header(987654) + good(1)[5:],
        "UndecodableError": good(2) + b"\xde\xad",  # trailing garbage after the body
    }
    truncated_body = good(3)[:-4]  # body ends early: also TruncatedMessageError
    raw = Producer(profile.librdkafka(acks="all", logger=LOG))
    sequence: list[tuple[str, bytes]] = []
    n = 0
    for kind, value in [*poison.items(), ("TruncatedMessageError", truncated_body)]:
        sequence.append(("good", good(100 + n)))
        sequence.append((kind, value))
        n += 1
    sequence.append(("good", good(999)))
    for i, (kind, value) in enumerate(sequence):
        raw.produce(topic, value, key=f"k{i}".encode(), headers=[("app", f"h{i}".encode())])
    assert raw.flush(30) == 0

    consumer: TypedConsumer[dict[str, Any]] = TypedConsumer(
        profile, topic, f"g-{uuid.uuid4().hex[:6]}", codec
    )
    goods = [i for i, (k, _) in enumerate(sequence) if k == "good"]
    with consumer:
        values = []
        while len(values) < len(goods):
            rec = consumer.poll(30)
            assert rec is not None, f"consumer stopped after {values}"
            values.append((rec.offset, rec.value["amount_cents"], rec.key, rec.headers))
        consumer.ack()
        assert consumer.processed_offsets() == {(topic, 0): len(sequence)}  # poison counted as processed
        assert consumer.dead_lettered == 5
    assert [v[0] for v in values] == goods
    assert values[0][2:] == (b"k0", [("app", b"h0")])

    # the group's committed offset covers the poison records too
    check = Consumer(profile.librdkafka(**{"group.id": consumer.group_id, "logger": LOG}))
    committed = check.committed([TopicPartition(topic, 0)], timeout=15)
    check.close()
    assert committed[0].offset == len(sequence)

    dead = _read_all(profile, f"{topic}.dlq", 5)
    assert len(dead) == 5
    for m in dead:
        h = {k: v for k, v in m.headers()}
        offset = int(h[dlq.H_SOURCE_OFFSET])
        kind, value = sequence[offset]
        assert h[dlq.H_ERROR_CLASS].decode() == kind
        assert h[dlq.H_ERROR_MESSAGE]
        assert h[dlq.H_SOURCE_TOPIC].decode() == topic
        assert h[dlq.H_SOURCE_PARTITION] == b"0"
        assert m.value() == value  # original bytes preserved
        assert m.key() == f"k{offset}".encode()
        assert h["app"] == f"h{offset}".encode()  # original headers preserved
    assert "UnknownSchemaIdError" in {dict(m.headers())[dlq.H_ERROR_CLASS].decode() for m in dead}
    assert b"987654" in dict(next(m for m in dead if dict(m.headers())[dlq.H_ERROR_CLASS] == b"UnknownSchemaIdError").headers())[dlq.H_ERROR_MESSAGE]
    md = admin_client(profile).list_topics(topic=f"{topic}.dlq", timeout=10).topics[f"{topic}.dlq"]
    assert len(md.partitions[0].replicas) == 3


def test_without_dlq_a_poison_message_stops_the_consumer(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    bs = kafka_cluster.bootstrap_servers
    topic = kafka_topic(partitions=1, prefix="nodlq")
    schema = AvroSchema.load(ROOT / "schemas/trade-v1.avsc")
    raw = Producer({"bootstrap.servers": bs, "logger": LOG})
    raw.produce(topic, b"\x07not avro")
    raw.flush(30)
    consumer: TypedConsumer[dict[str, Any]] = TypedConsumer(
        bs, topic, f"g-{uuid.uuid4().hex[:6]}", AvroCodec(schema, 1), dead_letter=False
    )
    with pytest.raises(PoisonMessageError, match=r"\[0\]@0.*WrongMagicByteError"):
        with consumer:
            consumer.poll(30)
    assert consumer.processed_offsets() == {}
