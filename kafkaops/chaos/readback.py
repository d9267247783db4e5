"""Read a whole topic back with a fresh consumer: every partition from its first offset to
the high watermark it has once the writers are done. The checker's ground truth."""

from __future__ import annotations

import json
import logging
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kafkaops.chaos.history import LogRecord
from kafkaops.config import ClusterProfile
from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


class ReadBackError(KafkaopsError):
    """The topic could not be read to its end in time."""


def parse(partition: int, offset: int, key: bytes | None, value: bytes | None) -> LogRecord:
    """A chaos record (``{"w": writer, "s": sequence}`` under a text key); writer -1 otherwise."""
    k = key.decode("utf-8", "replace") if key is not None else ""
    try:
        doc = json.loads(value or b"")
        return LogRecord(partition, offset, int(doc["w"]), int(doc["s"]), k)
    except (ValueError, KeyError, TypeError):
        return LogRecord(partition, offset, -1, -1, k)


def read_topic(profile: ClusterProfile, topic: str, timeout: float = 180.0) -> tuple[list[LogRecord], dict[int, int]]:
    """Every record of ``topic`` and each partition's high watermark, read without a group."""
    consumer = Consumer(profile.librdkafka(**{
        "group.id": f"kafkaops-chaos-readback-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "enable.partition.eof": False, "logger": log,
    }))
    deadline = Deadline(timeout)
    try:
        try:
            md = consumer.list_topics(topic, timeout=30).topics[topic]
            partitions = sorted(md.partitions)
            ends = {}
            for p in partitions:
                ends[p] = _watermarks(consumer, TopicPartition(topic, p), deadline)
        except KafkaException as exc:
            raise ReadBackError(f"cannot read the watermarks of {topic}: {exc.args[0].str()}") from None
        todo = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in sorted(todo)])
        records: list[LogRecord] = []
        while todo:
            if deadline.expired:
                raise ReadBackError(f"reading {topic} back: partitions {sorted(todo)} not read to their end "
                                    f"in {timeout:.0f}s")
            for m in consumer.consume(500, 1.0):
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("read back %s: %s", topic, err.str())
                    continue
                p, o = m.partition(), m.offset()
                assert p is not None and o is not None
                if o < ends[p][1]:
                    records.append(parse(p, o, m.key(), m.value()))
                if o + 1 >= ends[p][1]:
                    todo.discard(p)
        return records, {p: high for p, (_, high) in ends.items()}
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, tp: TopicPartition, deadline: Deadline) -> tuple[int, int]:
    """A partition's low and high watermarks, asked again while the error is retriable
    (NOT_LEADER while leadership moves back after a rolling restart)."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=max(1.0, min(30.0, deadline.remaining())))
            return int(low), int(high)
        except KafkaException as exc:
            if not exc.args[0].retriable() or deadline.expired:
                raise
            time.sleep(deadline.remaining(cap=0.5))
