"""TypedShareConsumer[T]: a member of a share group (KIP-932, "queues for Kafka"), typed records.

A consumer group is publish-subscribe: every group gets every record, and inside a group
each partition belongs to one member (order per partition, replay by offset). A share
group is point-to-point: its members take records one by one from the same partitions
(more members than partitions is fine), and each record is acknowledged on its own:

- ``accept(record)``: done, never delivered again;
- ``release(record)``: back to the group, delivered again (its ``delivery_count`` grows);
- ``reject(record)``: unprocessable, never delivered again.

The at-least-once contract: a record the caller was handed and did not acknowledge is
accepted when the caller asks for the next one (``for record in consumer``, ``poll()``,
``poll_batch()``) or leaves a ``with`` block without an exception, and released when the
block ends with one or the consumer closes. Acknowledgements go to the broker in batches,
with the next fetch, on ``commit()`` and on close. When a member's process dies its
connections close and the broker releases what it held at once; a member that hangs keeps
its records until their acquisition lock expires (``share.record.lock.duration.ms``).

Failures: a record that does not decode, or whose handler raises (``process(handler)``,
``fail(record, error)``), is released; once its delivery count reaches ``max_deliveries``
it is written to the dead-letter queue (``<topic>.dlq``, the headers of
:mod:`kafkaops.clients.dlq`), acknowledged there (acks=all), and then rejected. If the
dead letter cannot be stored, DeadLetterError stops the consumer with the record
unacknowledged; at the group's last delivery the broker then drops it, so a
``max_deliveries`` below ``share.delivery.count.limit`` leaves room for a DLQ outage.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from confluent_kafka import (
    AcknowledgeType,
    IllegalStateException,
    KafkaError,
    KafkaException,
    Message,
    ShareConsumer,
    TopicPartition,
)

from kafkaops.clients.dlq import DeadLetterQueue, dead_letter_for
from kafkaops.clients.librdkafka import masked, render
from kafkaops.clients.share_groups import ShareConsumerError, prepare_share_group
from kafkaops.clients.sigterm import SigtermHandler
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.serde.codec import BytesCodec, Codec, DecodeError, Deserializer
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


class _PreviewNotice(logging.Filter):
    """librdkafka warns on every share consumer that it is a preview: said at INFO instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if '"Preview"' not in record.getMessage():
            return True
        log.info("confluent-kafka's share consumer is a preview of its API (the broker side is GA since Kafka 4.2)")
        return False


rdkafka_log = logging.getLogger(__name__ + ".librdkafka")
"""Where librdkafka's own messages about share consumers go."""
rdkafka_log.addFilter(_PreviewNotice())

T = TypeVar("T")

DEFAULT_CONFIG: dict[str, Any] = {"fetch.wait.max.ms": 100}
"""librdkafka settings of every TypedShareConsumer (``config`` overrides them). The share
consumer fetches when polled, and a partition leader with no records to give holds its
answer up to ``fetch.wait.max.ms`` (librdkafka: 500): with one partition busy and another
idle, every poll took about that long. 100 ms gives a member several times the records/s
there (``kafkaops bench queues``: share-skewed vs share-skewed-wait500) for a few more
fetches a second while idle."""

FORCED_CONFIG: dict[str, Any] = {"share.acknowledgement.mode": "explicit"}
"""What every TypedShareConsumer sets whatever ``config`` says: records are acknowledged one by one."""


class ShareRecord(NamedTuple, Generic[T]):
    """One decoded record of a share group. ``delivery_count`` is 1 the first time the group
    hands it out and grows each time it comes back (released, or its holder died)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: Any
    headers: list[tuple[str, bytes]] | None
    value: T
    delivery_count: int


@dataclass
class ShareStats:
    """What this member did with the records it was handed (acknowledgements it made)."""

    accepted: int = 0
    released: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    decode_failures: int = 0
    handler_failures: int = 0
    ack_failures: int = 0
    """Acknowledgements the broker refused (e.g. the lock had expired): those records come again."""


Key = tuple[str, int, int]
Handler = Callable[[ShareRecord[T]], Any]


class TypedShareConsumer(Generic[T]):
    """Join share group ``group`` on ``topics`` and yield ``ShareRecord[T]`` decoded by ``value_codec``.

    ``cluster``: a :class:`~kafkaops.config.ClusterProfile` or a bootstrap string (a Kafka
    4.2+ cluster: share groups are a KRaft-only feature). ``config``: librdkafka overrides
    (``max.poll.records``...). ``max_deliveries``: the delivery at which a failing record
    goes to the dead-letter queue; it may not exceed the group's ``share.delivery.count.limit``
    (the broker would drop the record first). ``dead_letter``: True (``<topic>.dlq``), a
    DeadLetterQueue, or False (failing records are rejected at the limit, with an error
    logged). ``auto_offset_reset`` (earliest, latest): where the group starts reading when it
    has no position yet, set as its ``share.auto.offset.reset`` unless the group has a value
    of its own (Kafka's default: latest). ``handle_sigterm``: as TypedConsumer.
    """

    def __init__(
        self,
        cluster: ClusterProfile | str,
        topics: str | Iterable[str],
        group: str,
        value_codec: Codec[T] | Deserializer[T],
        *,
        key_codec: Deserializer[Any] | None = None,
        config: dict[str, Any] | None = None,
        max_deliveries: int = 5,
        dead_letter: DeadLetterQueue | bool = True,
        auto_offset_reset: str | None = None,
        poll_timeout: float = 0.5,
        handle_sigterm: bool = False,
    ) -> None:
        if max_deliveries < 1:
            raise ShareConsumerError(f"max_deliveries must be at least 1, not {max_deliveries}")
        self.profile = as_profile(cluster)
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.group = group
        self.value_codec = value_codec
        self.key_codec: Deserializer[Any] = key_codec if key_codec is not None else BytesCodec()
        self.max_deliveries = max_deliveries
        self.poll_timeout = poll_timeout
        self.stats = ShareStats()
        self.group_config = prepare_share_group(self.profile, group, self.topics, max_deliveries=max_deliveries,
                                                auto_offset_reset=auto_offset_reset)
        conf = render(self.profile, DEFAULT_CONFIG, {"logger": rdkafka_log}, config,
                      {"group.id": group, **FORCED_CONFIG})
        self.config = masked(conf)
        try:
            self.client = ShareConsumer(conf)
        except (KafkaException, ValueError) as exc:
            raise ShareConsumerError(
                f"invalid share consumer configuration for {self.profile.bootstrap_servers}: {_why(exc)}") from None
        self.client.set_acknowledgement_commit_callback(self._on_ack_commit)
        self.dead_letter, self._own_dlq = dead_letter_for(self.profile, dead_letter)
        self._kdecode = None if isinstance(self.key_codec, BytesCodec) else self.key_codec.decode
        self._buffer: deque[Message] = deque()  # acquired by this member, not yet handed out
        self._inflight: dict[Key, Message] = {}  # handed out, not yet acknowledged
        self._stopping = False
        self._closed = False
        self.sigterm = SigtermHandler(self.stop, f"share consumer of {', '.join(self.topics)} in group {group}")
        if handle_sigterm:
            self.sigterm.install()
        self.client.subscribe(self.topics)

    # ------------------------------------------------------------------ consuming
    def __iter__(self) -> Iterator[ShareRecord[T]]:
        """Records one by one, blocking; ends after ``stop()``, SIGTERM or close. Asking for the
        next record accepts the ones handed out before that were not acknowledged."""
        while not (self._stopping or self._closed):
            record = self._next(self.poll_timeout)
            if record is not None:
                yield record

    def poll(self, timeout: float = 1.0) -> ShareRecord[T] | None:
        """The next record, or None after ``timeout`` seconds (accepts what was handed out before)."""
        deadline = Deadline(timeout)
        while not (self._stopping or self._closed):
            record = self._next(deadline.remaining(cap=self.poll_timeout))
            if record is not None or deadline.expired:
                return record
        return None

    def poll_batch(self, max_records: int = 500, timeout: float = 1.0) -> list[ShareRecord[T]]:
        """Up to ``max_records`` records: what this member holds, or one fetch waiting at most
        ``timeout``. Accepts the records handed out before that were not acknowledged."""
        self._settle()
        if not self._buffer and not (self._stopping or self._closed):
            self._fetch(timeout)
        batch: list[ShareRecord[T]] = []
        while self._buffer and len(batch) < max_records:
            record = self._decode(self._buffer.popleft())
            if record is not None:
                batch.append(record)
        return batch

    def process(self, handler: Handler[T], *, max_records: int | None = None,
                idle_timeout: float | None = None) -> int:
        """Call ``handler(record)`` for each record until ``stop()``/SIGTERM, ``max_records``
        handled, or ``idle_timeout`` seconds without a record. A record the handler did not
        acknowledge is accepted when it returns; if it raises, the record fails (``fail``).
        Returns how many records the handler was given."""
        handled = 0
        idle = Deadline(idle_timeout) if idle_timeout is not None else None
        while not (self._stopping or self._closed) and (max_records is None or handled < max_records):
            record = self._next(self.poll_timeout)
            if record is None:
                if idle is not None and idle.expired:
                    break
                continue
            handled += 1
            try:
                handler(record)
            except Exception as exc:  # noqa: BLE001 - any handler error: release or dead-letter the record
                self.stats.handler_failures += 1
                self.fail(record, exc)
            else:
                if _key(record) in self._inflight:
                    self.accept(record)
            if idle_timeout is not None:
                idle = Deadline(idle_timeout)
        self._settle()
        return handled

    # ------------------------------------------------------------------ acknowledging
    def accept(self, record: ShareRecord[Any]) -> None:
        """Processed: the group never hands it out again."""
        self._ack(record, AcknowledgeType.ACCEPT)
        self.stats.accepted += 1

    def release(self, record: ShareRecord[Any]) -> None:
        """Not processed: back to the group now, for this or another member."""
        self._ack(record, AcknowledgeType.RELEASE)
        self.stats.released += 1

    def reject(self, record: ShareRecord[Any]) -> None:
        """Unprocessable: never handed out again (no dead letter; ``fail`` writes one)."""
        self._ack(record, AcknowledgeType.REJECT)
        self.stats.rejected += 1

    def fail(self, record: ShareRecord[Any], error: BaseException) -> None:
        """Processing ``record`` failed with ``error``: release it, or at ``max_deliveries``
        write it to the dead-letter queue and reject it."""
        self._failed(self._take(record), record.delivery_count, error)

    def commit(self, timeout: float = 30.0) -> int:
        """Send the pending acknowledgements now and wait for the broker; returns how many
        partitions it confirmed (refusals are logged and counted in ``stats.ack_failures``)."""
        try:
            results = self.client.commit_sync(timeout)
        except (KafkaException, IllegalStateException) as exc:
            raise ShareConsumerError(f"commit of acknowledgements failed: {_why(exc)}") from None
        failed = {f"{tp.topic}[{tp.partition}]": e for tp, e in results.items() if e is not None}
        if failed:
            log.warning("acknowledgements refused (those records come again): %s", failed)
        return len(results) - len(failed)

    # ------------------------------------------------------------------ lifecycle
    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Ask iteration to end after the current record (thread- and signal-safe)."""
        self._stopping = True

    def close(self) -> None:
        """Release what was not acknowledged, send the acknowledgements, leave the group."""
        if self._closed:
            return
        self._closed = True
        try:
            for m in [*self._inflight.values(), *self._buffer]:
                try:
                    self._acknowledge(m, AcknowledgeType.RELEASE)
                    self.stats.released += 1
                except ShareConsumerError as exc:  # its lock is gone: the group has it back anyway
                    log.info("not released at close: %s", exc)
            self._inflight.clear()
            self._buffer.clear()
            try:
                self.client.close()
            except KafkaException as exc:
                log.warning("share consumer close: %s", exc.args[0].str())
        finally:
            if self._own_dlq and self.dead_letter is not None:
                self.dead_letter.close()
            self.sigterm.restore()

    def __enter__(self) -> TypedShareConsumer[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None and not self._closed:
            self._settle()
        self.close()

    # ------------------------------------------------------------------ internals
    def _next(self, timeout: float) -> ShareRecord[T] | None:
        """Accept what is in flight, then the next decodable record (fetching once if need be)."""
        self._settle()
        if not self._buffer:
            self._fetch(timeout)
        while self._buffer:
            record = self._decode(self._buffer.popleft())
            if record is not None:
                return record
        return None

    def _settle(self) -> None:
        """Accept every record handed out and not acknowledged (the caller asked for more)."""
        if self._inflight:
            for m in self._inflight.values():
                self._acknowledge(m, AcknowledgeType.ACCEPT)
            self.stats.accepted += len(self._inflight)
            self._inflight.clear()

    def _fetch(self, timeout: float) -> None:
        try:
            msgs = self.client.poll(timeout)
        except (KafkaException, IllegalStateException) as exc:
            raise ShareConsumerError(f"share fetch failed: {_why(exc)}") from None
        for m in msgs:
            err = m.error()
            if err is None:
                self._buffer.append(m)
            elif err.fatal() or err.code() in _FATAL_CODES:
                raise ShareConsumerError(f"share consumer of {', '.join(self.topics)} in group {self.group}: "
                                         f"{err.str()}")
            else:
                log.warning("share consumer error (librdkafka retries): %s", err.str())

    def _decode(self, m: Message) -> ShareRecord[T] | None:
        """The record of ``m`` (now in flight), or None when it does not decode (then failed)."""
        raw = m.value()
        key = m.key()
        count = m.delivery_count() or 1
        try:
            value: Any = None if raw is None else self.value_codec.decode(raw)
            if self._kdecode is not None and key is not None:
                key = self._kdecode(key)
        except DecodeError as exc:
            self.stats.decode_failures += 1
            self._failed(m, count, exc)
            return None
        topic, partition, offset = m.topic() or "", m.partition() or 0, m.offset() or 0
        self._inflight[(topic, partition, offset)] = m
        headers: Any = m.headers()
        return ShareRecord(topic, partition, offset, m.timestamp()[1], key, headers, value, count)

    def _failed(self, m: Message, delivery_count: int, error: BaseException) -> None:
        where = f"{m.topic()}[{m.partition()}]@{m.offset()}"
        self._inflight.pop((m.topic() or "", m.partition() or 0, m.offset() or 0), None)
        if delivery_count < self.max_deliveries:
            log.info("%s released after delivery %d of %d: %s: %s", where, delivery_count, self.max_deliveries,
                     type(error).__name__, error)
            self._acknowledge(m, AcknowledgeType.RELEASE)
            self.stats.released += 1
            return
        if self.dead_letter is not None:
            self.dead_letter.send(m, error)  # acknowledged (acks=all) before the reject; raises if not
            self.stats.dead_lettered += 1
        else:
            log.error("%s rejected after %d deliveries, no dead-letter queue: %s: %s", where, delivery_count,
                      type(error).__name__, error)
        self._acknowledge(m, AcknowledgeType.REJECT)
        self.stats.rejected += 1

    def _ack(self, record: ShareRecord[Any], kind: AcknowledgeType) -> None:
        self._acknowledge(self._take(record), kind)

    def _take(self, record: ShareRecord[Any]) -> Message:
        """The message of an in-flight record, no longer in flight; ShareConsumerError if it was not."""
        msg = self._inflight.pop(_key(record), None)
        if msg is None:
            raise ShareConsumerError(f"{_where(record)} is not in flight (already acknowledged?)")
        return msg

    def _acknowledge(self, m: Message, kind: AcknowledgeType) -> None:
        try:
            self.client.acknowledge(m, kind)
        except (KafkaException, IllegalStateException) as exc:
            raise ShareConsumerError(f"acknowledging {m.topic()}[{m.partition()}]@{m.offset()}: {_why(exc)}") from None

    def _on_ack_commit(self, offsets: dict[TopicPartition, set[int]], error: KafkaException | None) -> None:
        if error is None:
            return
        n = sum(len(o) for o in offsets.values())
        self.stats.ack_failures += n
        log.warning("broker refused %d acknowledgement(s) (the records come again): %s", n, error)


_FATAL_CODES = frozenset({
    KafkaError.UNSUPPORTED_VERSION, KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.INVALID_GROUP_ID,
})


def _why(exc: Exception) -> str:
    """The text of a client error: librdkafka's KafkaError string, or the exception's."""
    return exc.args[0].str() if isinstance(exc, KafkaException) else str(exc)


def _key(record: ShareRecord[Any]) -> Key:
    return record.topic, record.partition, record.offset


def _where(record: ShareRecord[Any]) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
