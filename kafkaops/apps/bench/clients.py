"""`kafkaops bench produce | consume`: the typed clients against the raw ones, side by side.

Produce: TypedProducer + AvroCodec vs confluent_kafka.Producer + fastavro vs kafka-python.
Consume: TypedConsumer (record by record, and in batches) vs confluent_kafka.Consumer +
fastavro. Same pre-built Avro records, same topic, same librdkafka settings; each
function returns a :class:`~kafkaops.apps.bench.timing.BenchReport` and prints nothing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafkaops.apps.bench.timing import BenchReport, Clock, Measurement, bench_topic, now, run_rounds, spanned
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.resources import schema_path
from kafkaops.waits import Deadline

if TYPE_CHECKING:
    from kafkaops.serde.avro import AvroSchema

log = logging.getLogger(__name__)

SUBJECT = "bench-order-value"


@dataclass
class AvroWorkload:
    """Pre-built records and the schema (with its id) every produce/consume contestant uses."""

    schema: AvroSchema
    schema_id: int
    records: list[dict[str, Any]]

    def header(self) -> bytes:
        from kafkaops.serde.avro import wire_header

        return wire_header(self.schema_id)


def avro_workload(count: int, schema_file: Path | None = None, cluster: ClusterProfile | None = None,
                  seed: int = 7) -> AvroWorkload:
    """``count`` sample records of the order schema (generated once, reused by all contestants).

    With a ``cluster`` that has ZooKeeper the schema is registered in its registry (subject
    ``bench-order-value``) and that id used; otherwise the id is 1.
    """
    import random

    from fastavro.utils import generate_many

    from kafkaops.serde.avro import AvroSchema

    schema = AvroSchema.load(schema_file or schema_path("order-v1"))
    random.seed(seed)
    distinct = list(generate_many(schema.parsed, min(count, 1000) or 1))
    records = [distinct[i % len(distinct)] for i in range(count)]
    sid = 1
    if cluster is not None and cluster.zookeeper is not None:
        from kafkaops.coord.session import Coordinator
        from kafkaops.serde.registry import SchemaRegistry

        coord = Coordinator.shared(cluster)
        try:
            sid = SchemaRegistry(coord).register(SUBJECT, schema).id
        finally:
            coord.stop()
    return AvroWorkload(schema, sid, records)


def produce_typed(cluster: ClusterProfile, topic: str, work: AvroWorkload, count: int) -> dict[str, Any]:
    """TypedProducer + AvroCodec: produce every record (futures discarded), close (flush);
    acknowledgements come from the producer's own delivery counters."""
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.serde.avro import AvroCodec

    producer: TypedProducer[dict[str, Any]] = TypedProducer(cluster, topic, AvroCodec(work.schema, work.schema_id))
    records = work.records
    produce = producer.produce
    t0 = now()
    for i in range(count):
        produce(records[i])
    producer.close()
    end = now()
    return {"seen": producer.acknowledged, "first": t0, "end": end}


def produce_raw(cluster: ClusterProfile, topic: str, work: AvroWorkload, count: int) -> dict[str, Any]:
    """confluent_kafka.Producer (same settings) + fastavro + wire header, the documented idiom:
    produce with a delivery callback, poll(0) after each record, poll and retry when the queue is full."""
    from io import BytesIO

    from confluent_kafka import Producer
    from fastavro import schemaless_writer

    from kafkaops.clients.producer import DEFAULT_CONFIG

    producer = Producer(cluster.librdkafka(**DEFAULT_CONFIG, logger=log))
    parsed, header, records = work.schema.parsed, work.header(), work.records
    acked = 0

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    t0 = now()
    for i in range(count):
        buf = BytesIO()
        buf.write(header)
        schemaless_writer(buf, parsed, records[i])
        value = buf.getvalue()
        while True:
            try:
                producer.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    return {"seen": acked, "first": t0, "end": now()}


KAFKA_PYTHON_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "compression_type": "lz4",
    "batch_size": 1_000_000,  # librdkafka's batch.size
}
"""kafka-python's equivalents of TypedProducer's settings (DEFAULT_CONFIG)."""


def produce_kafka_python(cluster: ClusterProfile, topic: str, work: AvroWorkload, count: int) -> dict[str, Any]:
    """kafka-python's KafkaProducer with the same settings (:data:`KAFKA_PYTHON_SETTINGS`: acks=all,
    idempotent, linger 5 ms, lz4, 1 MB batches) + the same fastavro encoding."""
    from io import BytesIO

    from fastavro import schemaless_writer
    from kafka import KafkaProducer

    logging.getLogger("kafka").setLevel(logging.ERROR)  # its event-loop timing warnings are noise here

    producer = KafkaProducer(**cluster.kafka_python(**KAFKA_PYTHON_SETTINGS))
    parsed, header, records = work.schema.parsed, work.header(), work.records
    futures = []
    t0 = now()
    for i in range(count):
        buf = BytesIO()
        buf.write(header)
        schemaless_writer(buf, parsed, records[i])
        futures.append(producer.send(topic, buf.getvalue()))
    producer.flush(120)
    end = now()
    producer.close(30)
    return {"seen": sum(1 for f in futures if f.succeeded()), "first": t0, "end": end}


def bench_produce(
    cluster: ClusterProfile | str,
    records: int = 50_000,
    rounds: int = 3,
    peer_records: int | None = None,
    partitions: int = 3,
) -> BenchReport:
    """TypedProducer vs raw confluent_kafka + fastavro vs kafka-python, same records, same topic,
    same settings (kafka-python: the same count unless ``peer_records`` says otherwise)."""
    from kafkaops.clients.producer import DEFAULT_CONFIG

    profile = as_profile(cluster)
    peer = peer_records if peer_records is not None else records
    work = avro_workload(max(records, peer), cluster=profile)
    topic = bench_topic(profile, partitions, prefix="bench-produce")
    import kafkaops.clients.producer  # noqa: F401  (imports out of the first timed round)

    contestants: dict[str, Callable[[], Measurement]] = {
        "typed": lambda: spanned("typed", records, produce_typed, profile, topic, work, records),
        "raw": lambda: spanned("raw", records, produce_raw, profile, topic, work, records),
        "kafka-python": lambda: spanned("kafka-python", peer, produce_kafka_python, profile, topic, work, peer),
    }
    report = BenchReport("produce", records, rounds, run_rounds(contestants, rounds))
    report.add_ratio("typed", "raw", 0.90)
    report.add_ratio("typed", "kafka-python", 5.0)
    report.add_cpu_ratio("typed", "raw")
    report.add_cpu_ratio("typed", "kafka-python")
    settings = dict(DEFAULT_CONFIG)
    report.settings = {"confluent-kafka (typed, raw)": settings, "kafka-python": dict(KAFKA_PYTHON_SETTINGS),
                       "records": records, "kafka-python records": peer, "partitions": partitions}
    report.notes += [
        f"topic {topic}: {partitions} partitions, RF min(3, brokers); Avro order records, schema id {work.schema_id}",
        "counts are acknowledged records (acks=all); each round's rate from the first produce to the end of"
        " flush, the median of the rounds' rates",
    ]
    return report


def consume_typed(
    cluster: ClusterProfile, topic: str, work: AvroWorkload, count: int, timeout: float = 120.0, batch: bool = False
) -> dict[str, Any]:
    """TypedConsumer + AvroCodec, fresh group from the earliest offset: record by record
    (iterator), or ``batch`` (poll_batch of 500, the shape of the raw consumer's consume(500))."""
    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.serde.avro import AvroCodec

    consumer: TypedConsumer[dict[str, Any]] = TypedConsumer(
        cluster, topic, f"bench-{uuid.uuid4().hex[:8]}", AvroCodec(work.schema, work.schema_id),
        handle_sigterm=False,
    )
    seen = 0
    first: Clock = (0.0, 0.0)
    deadline = Deadline(timeout)
    stop = threading.Timer(timeout, consumer.stop)  # the iterator ends on stop()
    stop.start()
    try:
        if batch:
            while seen < count and not deadline.expired:
                records = consumer.poll_batch(500, 0.5)
                if records and not seen:
                    first = now()
                seen += len(records)
        else:
            for _rec in consumer:
                if not seen:
                    first = now()
                seen += 1
                if seen >= count:
                    break
        consumer.ack()
        end = now()
    finally:
        stop.cancel()
        consumer.close()
    return {"seen": seen, "first": first, "end": end}


def consume_raw(cluster: ClusterProfile, topic: str, work: AvroWorkload, count: int,
                timeout: float = 120.0) -> dict[str, Any]:
    """confluent_kafka.Consumer (same settings) + fastavro: consume() batches, check the wire
    header, decode, store offsets after each batch (at-least-once, as the typed consumer does)."""
    from io import BytesIO

    from confluent_kafka import Consumer
    from fastavro import schemaless_reader

    from kafkaops.clients.consumer import DEFAULT_CONFIG

    consumer = Consumer(cluster.librdkafka(**{
        **DEFAULT_CONFIG,
        "group.id": f"bench-{uuid.uuid4().hex[:8]}",
        "partition.assignment.strategy": "cooperative-sticky",
        "logger": log,
    }))
    consumer.subscribe([topic])
    parsed, header = work.schema.parsed, work.header()
    seen = 0
    first: Clock = (0.0, 0.0)
    deadline = Deadline(timeout)
    try:
        while seen < count and not deadline.expired:
            msgs = consumer.consume(500, 0.5)
            for m in msgs:
                if m.error() is not None:
                    continue
                data = m.value()
                if data is None or data[:5] != header:
                    raise ValueError("unexpected wire header")
                buf = BytesIO(data)
                buf.seek(5)
                schemaless_reader(buf, parsed, None)
                if seen == 0:
                    first = now()
                seen += 1
            last = [m for m in msgs if m.error() is None]
            if last:
                consumer.store_offsets(message=last[-1])
        end = now()
    finally:
        consumer.close()
    return {"seen": seen, "first": first, "end": end}


def bench_consume(
    cluster: ClusterProfile | str,
    records: int = 50_000,
    rounds: int = 3,
    partitions: int = 3,
) -> BenchReport:
    """TypedConsumer vs raw confluent_kafka.Consumer + fastavro over the same pre-produced topic."""
    profile = as_profile(cluster)
    work = avro_workload(records, cluster=profile)
    topic = bench_topic(profile, partitions, prefix="bench-consume")
    produced = produce_raw(profile, topic, work, records)["seen"]
    if produced != records:
        raise RuntimeError(f"bench consume: only {produced} of {records} records acknowledged while preparing")

    import kafkaops.clients.consumer  # noqa: F401  (imports out of the first timed round)

    contestants: dict[str, Callable[[], Measurement]] = {
        "typed": lambda: spanned("typed", records, consume_typed, profile, topic, work, records),
        "typed-batch": lambda: spanned("typed-batch", records, consume_typed, profile, topic, work, records, 120.0, True),
        "raw": lambda: spanned("raw", records, consume_raw, profile, topic, work, records),
    }
    report = BenchReport("consume", records, rounds, run_rounds(contestants, rounds))
    report.add_ratio("typed", "raw", 0.90)
    report.add_ratio("typed-batch", "raw", 0.90)
    report.add_cpu_ratio("typed", "raw")
    report.add_cpu_ratio("typed-batch", "raw")
    from kafkaops.clients.consumer import DEFAULT_CONFIG as CONSUMER_CONFIG

    report.settings = {"confluent-kafka (typed, raw)": dict(CONSUMER_CONFIG),
                       "records": records, "partitions": partitions}
    report.notes += [
        f"topic {topic}: {partitions} partitions, {records} Avro order records; each round a fresh group from the start",
        "measured from the first record to the last (client start-up and group join excluded)",
        "typed: `for record in consumer` (one ConsumerRecord per step); typed-batch: poll_batch(500), which"
        " holds 500 decoded records at a time; raw: consume(500) + fastavro, decoding and dropping one"
        " record at a time, store_offsets per batch",
    ]
    return report
