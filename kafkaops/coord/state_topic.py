"""TopicStateBackend: checkpoint states in a replicated, compacted Kafka topic.

A state is cut into records under the topic's ``max.message.bytes`` and produced to one
partition of the topic (default ``_kafkaops_state``: replication factor 3, min ISR 2,
``cleanup.policy=compact``, unclean election off) with acks=all and idempotence, keyed
``<job>/<token>/<chunk>``; a write returns once every record is acknowledged, and the
location records the partition and the first and last offsets. A read assigns that
partition at the first offset and collects the job's keys up to the last one: a record
deleted (tombstoned and compacted, or removed by DeleteRecords) is reported as a missing
chunk. Deleting a state writes a tombstone per key, so compaction reclaims the space.

The topic is created on the first write of a large state (so jobs with small states
never create it); an existing topic that is not compacted is refused, since its
retention would silently expire states.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from kafkaops.admin import admin_client, create_topic
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.coord.checkpoint_format import CheckpointCorruptError, CheckpointError
from kafkaops.coord.state_backends import Location
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)

STATE_TOPIC = "_kafkaops_state"
RECORD_OVERHEAD = 1024
"""Room left under ``max.message.bytes`` for the batch and record framing and the key."""
MAX_CHUNK_BYTES = 8 * 1024 * 1024
"""Largest record we cut, whatever the topic allows (keeps fetches and memory bounded)."""

PRODUCER_CONFIG: dict[str, Any] = {
    "allow.auto.create.topics": False,  # a state topic is created compacted, never by a produce
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 0,
    "compression.type": "none",  # the store zlib-compresses states that compress
}
"""librdkafka producer settings of the state topic (the bench's bare baseline uses them too)."""
CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "error",  # an offset that is gone is a missing state, never a jump
    "enable.partition.eof": True,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    "fetch.max.bytes": 64 * 1024 * 1024,
    # reads are of known offset ranges: a long-poll fetch left waiting at the log end by the
    # previous read would hold up the next read's first fetch for fetch.wait.max.ms (500 ms)
    "fetch.wait.max.ms": 10,
}
"""librdkafka consumer settings for reading states back (assign, never subscribe or commit)."""
TOPIC_CONFIG: dict[str, str] = {
    "cleanup.policy": "compact",
    "unclean.leader.election.enable": "false",
    "segment.bytes": str(64 * 1024 * 1024),  # closed segments are what the cleaner compacts
    "segment.ms": str(10 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.2",
    "delete.retention.ms": str(60 * 60 * 1000),
}
"""Configs of a state topic kafkaops creates (plus ``min.insync.replicas``)."""


class TopicStateBackend:
    """States in ``topic`` on the cluster of ``cluster`` (a ClusterProfile or bootstrap string).

    ``partitions`` and ``replication_factor`` (default min(3, brokers); min ISR 2 when
    it is 3) apply when the topic is created; ``timeout`` bounds each write and read.
    """

    kind = "topic"

    def __init__(
        self,
        cluster: ClusterProfile | str,
        topic: str = STATE_TOPIC,
        *,
        partitions: int = 3,
        replication_factor: int | None = None,
        timeout: float = 60.0,
        topic_config: dict[str, str] | None = None,
    ) -> None:
        self.profile = as_profile(cluster)
        self.topic = topic
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.timeout = timeout
        self.topic_config = {**TOPIC_CONFIG, **(topic_config or {})}
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._chunk_bytes: int | None = None
        self._partition_count: int | None = None
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None

    # ---- the topic -------------------------------------------------------------------

    def ensure_topic(self, create: bool = True) -> int | None:
        """Create the topic if missing (refuse one that is not compacted); returns the
        record size states are cut into (None when the topic is missing and not ``create``)."""
        with self._lock:
            if self._chunk_bytes is not None:
                return self._chunk_bytes
            admin = admin_client(self.profile)
            try:
                md = admin.list_topics(topic=self.topic, timeout=self.timeout).topics.get(self.topic)
                if md is None or md.error is not None or not md.partitions:
                    if not create:
                        return None
                    brokers = len(admin.list_topics(timeout=self.timeout).brokers)
                    rf = self.replication_factor or max(1, min(3, brokers))
                    if rf < 3:
                        log.warning("state topic %s gets replication factor %d (%d brokers)", self.topic, rf, brokers)
                    config = {"min.insync.replicas": "2" if rf >= 3 else "1", **self.topic_config}
                    create_topic(self.profile, self.topic, self.partitions, rf, config,
                                 timeout=self.timeout, exist_ok=True)
                    md = admin.list_topics(topic=self.topic, timeout=self.timeout).topics[self.topic]
                entries = admin.describe_configs([ConfigResource(ResourceType.TOPIC, self.topic)],
                                                 request_timeout=self.timeout)
                config = next(iter(entries.values())).result(timeout=self.timeout)
            except KafkaException as exc:
                raise CheckpointError(f"state topic {self.topic}: {exc.args[0].str()}") from None
            policy = str(config["cleanup.policy"].value)
            if "compact" not in policy:
                raise CheckpointError(f"state topic {self.topic} has cleanup.policy={policy}: its retention would "
                                      "expire checkpoint states; use a compacted topic")
            limit = int(config["max.message.bytes"].value)
            self._partition_count = len(md.partitions)
            self._chunk_bytes = max(1024, min(MAX_CHUNK_BYTES, limit - RECORD_OVERHEAD))
            return self._chunk_bytes

    def _producer_client(self) -> Producer:
        with self._lock:
            if self._producer is None:
                chunk = self._chunk_bytes or MAX_CHUNK_BYTES
                self._producer = Producer(self.profile.librdkafka(
                    logger=log, **PRODUCER_CONFIG,
                    **{"message.max.bytes": max(1_000_000, chunk + 2 * RECORD_OVERHEAD),
                       "delivery.timeout.ms": int(self.timeout * 1000)}))
            return self._producer

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self.profile.librdkafka(
                logger=log, **CONSUMER_CONFIG, **{"group.id": "kafkaops-state-reader"}))
        return self._consumer

    # ---- StateBackend ----------------------------------------------------------------

    def locate(self, job: str, token: str, size: int) -> Location:
        chunk = self.ensure_topic()
        assert chunk is not None and self._partition_count is not None
        return {"topic": self.topic, "partition": zlib.crc32(job.encode()) % self._partition_count,
                "chunks": max(1, -(-size // chunk)), "chunk_bytes": chunk}

    def write(self, job: str, token: str, data: bytes, location: Location) -> Location:
        topic, partition, chunks, chunk = _where(location, "chunk_bytes")
        producer = self._producer_client()
        offsets: dict[int, int] = {}
        errors: list[str] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(err.str())
            else:
                offsets[int((msg.key() or b"/0").rsplit(b"/", 1)[1])] = int(msg.offset() or 0)

        deadline = Deadline(self.timeout)
        for i in range(chunks):
            self._produce(producer, topic, partition, _key(job, token, i), data[i * chunk:(i + 1) * chunk],
                          delivered, deadline)
        left = producer.flush(deadline.remaining(floor=0.1))
        if errors or left or len(offsets) != chunks:
            why = errors[0] if errors else f"not acknowledged within {self.timeout:.0f}s"
            raise CheckpointError(f"job {job!r}: state not written to topic {topic}: {why}")
        return {**location, "offsets": [offsets[0], offsets[chunks - 1]]}

    @staticmethod
    def _produce(producer: Producer, topic: str, partition: int, key: bytes, value: bytes | None,
                 on_delivery: Any, deadline: Deadline) -> None:
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=partition, on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain
                if deadline.expired:
                    raise CheckpointError(f"producer queue for topic {topic} stayed full") from None
                producer.poll(0.1)
            except KafkaException as exc:
                raise CheckpointError(f"cannot produce to topic {topic}: {exc.args[0].str()}") from None

    def read(self, job: str, token: str, location: Location, size: int,
             on_part: Callable[[bytes], None] | None = None) -> bytes:
        topic, partition, chunks, _ = _where(location)
        try:
            first, last = (int(o) for o in location["offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointCorruptError(f"job {job!r}: topic state location {location!r} has no offsets") from None
        keys = {_key(job, token, i): i for i in range(chunks)}
        parts: dict[int, bytes] = {}
        seen = 0  # parts handed to on_part, in order, while later ones are still fetched
        where = f"topic {topic} partition {partition} offsets {first}-{last}"
        with self._read_lock:
            consumer = self._reader()
            deadline = Deadline(self.timeout)
            consumer.assign([TopicPartition(topic, partition, first)])
            try:
                done = False
                while not done and len(parts) < chunks:
                    if deadline.expired:
                        raise CheckpointError(f"job {job!r}: state in {where} not read within {self.timeout:.0f}s")
                    for msg in consumer.consume(num_messages=chunks, timeout=deadline.remaining(cap=1.0)):
                        err = msg.error()
                        if err is not None:
                            if err.code() in (KafkaError._PARTITION_EOF, KafkaError._AUTO_OFFSET_RESET,
                                              KafkaError.OFFSET_OUT_OF_RANGE):
                                done = True  # end of the log, or the records are gone
                                break
                            raise CheckpointError(f"job {job!r}: reading state in {where}: {err.str()}")
                        offset = int(msg.offset() or 0)
                        if offset < first:
                            continue
                        if offset > last:
                            done = True
                            break
                        index = keys.get(msg.key() or b"")
                        value = msg.value()
                        if index is not None and value is not None:
                            parts[index] = value
                            while on_part is not None and seen in parts:
                                on_part(parts[seen])
                                seen += 1
            finally:
                consumer.unassign()
        missing = [i for i in range(chunks) if i not in parts]
        if missing:
            raise CheckpointCorruptError(
                f"job {job!r}: state chunk {missing[0]} of {chunks} is missing from {where} "
                f"({len(missing)} missing: deleted or compacted away)")
        data = b"".join(parts[i] for i in range(chunks))
        if len(data) != size:
            raise CheckpointCorruptError(f"job {job!r}: state in {where} has {len(data)} bytes, expected {size}")
        return data

    def delete(self, job: str, token: str, location: Location) -> None:
        topic, partition, chunks, _ = _where(location)
        if not self._exists(topic):
            return  # no topic, no state (and no tombstone that would create it again)
        producer = self._producer_client()
        errors: list[str] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(err.str())

        deadline = Deadline(self.timeout)
        for i in range(chunks):  # tombstones: compaction removes the chunk and, later, them
            self._produce(producer, topic, partition, _key(job, token, i), None, delivered, deadline)
        if producer.flush(deadline.remaining(floor=0.1)) or errors:
            raise CheckpointError(f"job {job!r}: tombstones for state {token} in topic {topic} not acknowledged: "
                                  f"{errors[0] if errors else 'timed out'}")

    def _exists(self, topic: str) -> bool:
        if topic == self.topic:
            return self.ensure_topic(create=False) is not None
        try:
            md = admin_client(self.profile).list_topics(topic=topic, timeout=self.timeout).topics.get(topic)
        except KafkaException as exc:
            raise CheckpointError(f"state topic {topic}: {exc.args[0].str()}") from None
        return md is not None and md.error is None and bool(md.partitions)

    def describe(self, location: Location) -> str:
        offsets = location.get("offsets")
        span = f" offsets {offsets[0]}-{offsets[1]}" if offsets else ""
        return f"topic {location.get('topic')} partition {location.get('partition')}{span}"

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(self.timeout)
        with self._read_lock:
            consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()

    def __enter__(self) -> TopicStateBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TopicStateBackend({self.profile.bootstrap_servers!r}, {self.topic!r})"


def _key(job: str, token: str, index: int) -> bytes:
    return f"{job}/{token}/{index:05d}".encode()


def _where(location: Location, *extra: str) -> tuple[str, int, int, int]:
    """(topic, partition, chunks, chunk_bytes) of a location; CheckpointCorruptError when malformed."""
    try:
        chunk = int(location[extra[0]]) if extra else 0
        return str(location["topic"]), int(location["partition"]), int(location["chunks"]), chunk
    except (KeyError, TypeError, ValueError):
        raise CheckpointCorruptError(f"topic state location {location!r} is malformed") from None
