"""TypedConsumer[T]: a confluent_kafka.Consumer yielding decoded, typed records, at least once.

When an offset counts as processed (the at-least-once contract):

- ``for record in consumer`` / ``poll()`` / ``poll_batch()``: asking for more records
  acknowledges every record delivered before; a record is never acknowledged before
  the call that follows the one that returned it. ``ack()`` acknowledges earlier.
- Leaving a ``with`` block without an exception acknowledges the records delivered
  so far (the caller finished them); leaving with an exception does not.
- Acknowledged offsets (the NEXT offset per partition, ``processed_offsets()``) are
  handed to librdkafka (``store_offsets``) before each fetch, on ``commit()``, on
  partition revocation and on ``close()``; librdkafka's auto-commit (every 5 s),
  revocation and close commit only stored offsets. So a crash re-delivers records
  that were not acknowledged: nothing is skipped.

Poison records (``DecodeError``: undecodable bytes, unknown schema id, truncated
body, wrong magic byte) go to the dead-letter queue and count as processed, in
order with the records around them. Rebalance hooks, an ``OffsetSource`` for
starting offsets kept elsewhere (e.g. ZooKeeper checkpoints) and close hooks let
other components drive the consumer without touching it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kafkaops.clients.connection import authorization_error, watched
from kafkaops.clients.dlq import DeadLetterQueue, dead_letter_for
from kafkaops.clients.librdkafka import masked, render
from kafkaops.clients.offsets import OffsetTracker
from kafkaops.clients.sigterm import SigtermHandler
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError
from kafkaops.serde.codec import BytesCodec, Codec, DecodeError, Deserializer
from kafkaops.types import TP
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)

T = TypeVar("T")

ASSIGNMENT_STRATEGIES = ("range", "roundrobin", "cooperative-sticky")

DEFAULT_CONFIG: dict[str, Any] = {
    "enable.auto.commit": True,
    "enable.auto.offset.store": False,
    "auto.commit.interval.ms": 5000,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 1000,
}
"""librdkafka settings of every TypedConsumer (``config`` overrides them). Setting
``enable.auto.offset.store=true`` would store offsets on delivery, before processing:
at-most-once for the records in flight at a crash."""


class ConsumerError(KafkaopsError):
    """The consumer cannot go on (fatal client error, bad configuration, failed commit)."""


class PoisonMessageError(ConsumerError):
    """A record that does not decode, on a consumer without a dead-letter queue."""


class ConsumerRecord(NamedTuple, Generic[T]):
    """One decoded record. ``timestamp`` in ms since the epoch; ``headers`` as Kafka gave them.

    Immutable and built once per record, so a named tuple: the cheapest immutable record
    Python builds through its constructor (a frozen dataclass costs three times as much)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: Any
    headers: list[tuple[str, bytes]] | None
    value: T


class OffsetSource(Protocol):
    """Starting offsets kept outside Kafka's group offsets (e.g. ZooKeeper checkpoints)."""

    def starting_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        """For newly assigned partitions: where to start; partitions left out use the group's offsets."""
        ...


PartitionsHook = Callable[[list[TP]], None]


class TypedConsumer(Generic[T]):
    """Subscribe to ``topics`` in ``group_id`` and yield ``ConsumerRecord[T]`` decoded by ``value_codec``.

    ``cluster``: a :class:`~kafkaops.config.ClusterProfile` or a bootstrap string.
    ``assignment_strategy``: range, roundrobin or cooperative-sticky (default).
    ``offset_source``: consulted on every assignment; its offsets win over committed ones.
    ``on_assign``/``on_revoke``: hooks called with the list of (topic, partition)
    (after assignment / before the partitions go; revoke hooks also get lost partitions).
    ``dead_letter``: True (default: ``<topic>.dlq``), a DeadLetterQueue, or False
    (then a poison record raises PoisonMessageError). ``handle_sigterm`` (off by
    default: a library leaves the process' signal handlers alone): in the main thread,
    SIGTERM stops iteration gracefully; the previous handler is restored on close.
    Applications that own the process (the CLI, the demo) turn it on.
    """

    def __init__(
        self,
        cluster: ClusterProfile | str,
        topics: str | Iterable[str],
        group_id: str,
        value_codec: Codec[T] | Deserializer[T],
        *,
        key_codec: Deserializer[Any] | None = None,
        config: dict[str, Any] | None = None,
        assignment_strategy: str = "cooperative-sticky",
        offset_source: OffsetSource | None = None,
        on_assign: PartitionsHook | Iterable[PartitionsHook] | None = None,
        on_revoke: PartitionsHook | Iterable[PartitionsHook] | None = None,
        dead_letter: DeadLetterQueue | bool = True,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        handle_sigterm: bool = False,
    ) -> None:
        if assignment_strategy not in ASSIGNMENT_STRATEGIES:
            raise ConsumerError(
                f"unknown assignment strategy {assignment_strategy!r}: one of {', '.join(ASSIGNMENT_STRATEGIES)}"
            )
        self.profile = as_profile(cluster)
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.group_id = group_id
        self.value_codec = value_codec
        self.key_codec: Deserializer[Any] = key_codec if key_codec is not None else BytesCodec()
        self.offset_source = offset_source
        self.on_assign_hooks: list[PartitionsHook] = _hooks(on_assign)
        self.on_revoke_hooks: list[PartitionsHook] = _hooks(on_revoke)
        self.close_hooks: list[Callable[[], None]] = []
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self._cooperative = assignment_strategy == "cooperative-sticky"
        conf = render(self.profile, DEFAULT_CONFIG, {
            "group.id": group_id, "partition.assignment.strategy": assignment_strategy, "logger": log,
        }, config)
        self.config = masked(conf)
        conf, self._watch = watched(self.profile, conf, log)  # refusals (auth, TLS, protocol) raise at once
        self.dead_letter, self._own_dlq = dead_letter_for(self.profile, dead_letter)
        try:
            self.client = Consumer(conf)
        except KafkaException as exc:
            raise ConsumerError(
                f"invalid consumer configuration for {self.profile.bootstrap_servers}: {exc.args[0].str()}"
            ) from None
        self._buffer: deque[Message] = deque()  # fetched, not yet decoded
        self._kdecode = None if isinstance(self.key_codec, BytesCodec) else self.key_codec.decode
        self.offsets = OffsetTracker()
        self._stopping = False  # set by stop() / SIGTERM; a bool write is atomic
        self._closed = False
        self.dead_lettered = 0
        self.sigterm = SigtermHandler(self.stop, f"consumer of {', '.join(self.topics)} in group {group_id}")
        if handle_sigterm:
            self.sigterm.install()
        self.client.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)

    # ------------------------------------------------------------------ consuming
    def __iter__(self) -> Iterator[ConsumerRecord[T]]:
        """Records one by one, blocking; ends after ``stop()``, SIGTERM or close.

        Asking for the next record acknowledges the one before (and any poison
        records between them go to the dead-letter queue in order)."""
        unacked, processed = self.offsets.unacked, self.offsets.processed
        decode = self.value_codec.decode
        kdecode = self._kdecode
        record_type = ConsumerRecord
        while not (self._stopping or self._closed):
            if unacked:
                processed.update(unacked)
                unacked.clear()
            buffer = self._buffer
            if not buffer:
                self._fetch(self.poll_timeout)
                continue
            # decoded here, one record at a time (not a batch ahead): the value the caller
            # drops is freed before the next is built, which keeps memory hot
            m = buffer.popleft()
            raw = m.value()
            key = m.key()
            try:
                value = None if raw is None else decode(raw)
                if kdecode is not None and key is not None:
                    key = kdecode(key)
            except DecodeError as exc:
                self._poison(m, exc)
                continue
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            unacked[(topic, partition)] = offset + 1  # type: ignore[index, operator]
            yield record_type(topic, partition, offset, m.timestamp()[1], key, m.headers(), value)  # type: ignore[arg-type]

    def __next__(self) -> ConsumerRecord[T]:
        """The next record, blocking; ends (StopIteration) after ``stop()``, SIGTERM or close."""
        while True:
            record = self.poll(self.poll_timeout)
            if record is not None:
                return record
            if self._stopping or self._closed:
                raise StopIteration

    def poll(self, timeout: float = 1.0) -> ConsumerRecord[T] | None:
        """The next record, or None after ``timeout`` seconds. Acknowledges the records delivered before."""
        self.offsets.ack_all()
        deadline: Deadline | None = None
        while True:
            buffer = self._buffer
            while buffer:
                record = self._decode(buffer.popleft())
                if record is None:
                    continue
                self.offsets.delivered((record.topic, record.partition), record.offset)
                return record
            if deadline is None:
                deadline = Deadline(timeout)
            if deadline.expired or self._stopping or self._closed:
                return None
            self._fetch(deadline.remaining(cap=self.poll_timeout))

    def poll_batch(self, max_records: int = 500, timeout: float = 1.0) -> list[ConsumerRecord[T]]:
        """Up to ``max_records`` records, waiting at most ``timeout`` for the first ones.
        Acknowledges the records delivered before."""
        self.offsets.ack_all()
        deadline = Deadline(timeout)
        batch: list[ConsumerRecord[T]] = []
        unacked = self.offsets.unacked
        while len(batch) < max_records:
            buffer = self._buffer
            while buffer and len(batch) < max_records:
                record = self._decode(buffer.popleft())
                if record is None:
                    continue
                unacked[(record.topic, record.partition)] = record.offset + 1
                batch.append(record)
            if batch and not buffer:
                break
            if len(batch) >= max_records:
                break
            if deadline.expired or self._stopping or self._closed:
                break
            self._fetch(deadline.remaining(cap=self.poll_timeout))
        return batch

    def ack(self, record: ConsumerRecord[Any] | None = None) -> None:
        """Mark processed: every record delivered so far, or ``record`` and the ones before it in its partition."""
        if record is None:
            self.offsets.ack_all()
        else:
            self.offsets.ack((record.topic, record.partition), record.offset)

    def processed_offsets(self) -> dict[TP, int]:
        """Per assigned partition, the next offset after the last processed record (what a commit stores)."""
        return self.offsets.processed_offsets()

    def assignment(self) -> list[TP]:
        return sorted(self.offsets.assigned)

    def commit(self) -> dict[TP, int]:
        """Commit the processed offsets synchronously; returns what was committed."""
        offsets = self.processed_offsets()
        if not offsets:
            return {}
        self._store(offsets)
        try:
            self.client.commit(offsets=_partitions(offsets), asynchronous=False)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() == KafkaError._NO_OFFSET:
                return {}
            raise ConsumerError(f"commit of {offsets} failed: {err.str()}") from None
        return offsets

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called or SIGTERM received."""
        return self._stopping

    def stop(self) -> None:
        """Ask iteration to end after the current record (thread- and signal-safe)."""
        self._stopping = True

    def add_close_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` at ``close()``, before the client commits and leaves the group."""
        self.close_hooks.append(hook)

    def close(self) -> None:
        """Run close hooks, store and commit processed offsets, leave the group, restore SIGTERM."""
        if self._closed:
            return
        try:
            for hook in self.close_hooks:
                hook()
        finally:
            self._closed = True
            try:
                self.commit()
            except ConsumerError as exc:
                log.warning("final commit failed: %s", exc)
            try:
                self.client.close()
            finally:
                if self._own_dlq and self.dead_letter is not None:
                    self.dead_letter.close()
                self.sigterm.restore()

    def __enter__(self) -> TypedConsumer[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.ack()
        self.close()

    # ------------------------------------------------------------------ internals
    def _fetch(self, timeout: float) -> None:
        self._watch.check()  # a refused connection (auth, TLS, protocol) raises ConnectionRefused
        self._store(self.processed_offsets())
        try:
            msgs = self.client.consume(self.batch_size, timeout)
        except KafkaException as exc:
            raise ConsumerError(f"consume failed: {exc.args[0].str()}") from None
        append = self._buffer.append
        for m in msgs:
            err = m.error()
            if err is None:
                append(m)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif err.fatal():
                raise ConsumerError(f"fatal consumer error: {err.str()}")
            elif (denied := self._denied(err, m)) is not None:
                raise denied
            else:
                log.warning("consumer error (librdkafka retries): %s", err.str())

    def _denied(self, err: KafkaError, m: Message) -> KafkaopsError | None:
        """An authorization error naming the group or topic the principal may not read."""
        code = err.code()
        names = f"{self.group_id!r}" if code == KafkaError.GROUP_AUTHORIZATION_FAILED else (
            repr(m.topic()) if m.topic() else ", ".join(map(repr, self.topics)))
        return authorization_error(err, self.profile, "read", names)

    def _decode(self, m: Message) -> ConsumerRecord[T] | None:
        """The record of ``m``, or None when it was poison (dead-lettered, in order)."""
        raw = m.value()
        key = m.key()
        try:
            value = None if raw is None else self.value_codec.decode(raw)
            if self._kdecode is not None and key is not None:
                key = self._kdecode(key)
        except DecodeError as exc:
            self._poison(m, exc)
            return None
        return ConsumerRecord(m.topic(), m.partition(), m.offset(), m.timestamp()[1], key, m.headers(), value)  # type: ignore[arg-type]

    def _poison(self, m: Message, exc: DecodeError) -> None:
        where = f"{m.topic()}[{m.partition()}]@{m.offset()}"
        if self.dead_letter is None:
            raise PoisonMessageError(f"{where}: {type(exc).__name__}: {exc}")
        self.dead_letter.send(m, exc)
        self.dead_lettered += 1
        self.offsets.skipped((m.topic() or "", m.partition() or 0), m.offset() or 0)

    def _store(self, offsets: dict[TP, int]) -> None:
        todo = self.offsets.unstored(offsets)
        if not todo:
            return
        try:
            self.client.store_offsets(offsets=_partitions(todo))
        except KafkaException as exc:
            log.warning("store_offsets failed (partitions moving?): %s", exc.args[0].str())
            return
        self.offsets.mark_stored(todo)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self.offsets.assign(tps, incremental=self._cooperative)
        if self.offset_source is not None and tps:
            starts = self.offset_source.starting_offsets(tps)
            for p in partitions:
                off = starts.get((p.topic, p.partition))
                if off is not None:
                    p.offset = off
                    if off >= 0:  # not a logical offset (OFFSET_BEGINNING -2, OFFSET_END -1)
                        self.offsets.start_at((p.topic, p.partition), off)
            if self._cooperative:
                consumer.incremental_assign(partitions)
            else:
                consumer.assign(partitions)
        log.info("assigned %s", tps)
        for hook in self.on_assign_hooks:
            hook(tps)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        offsets = self.offsets.processed_offsets(tps)
        if offsets:
            self._store(offsets)
            try:
                consumer.commit(offsets=_partitions(offsets), asynchronous=False)
            except KafkaException as exc:
                log.warning("commit on revoke failed: %s", exc.args[0].str())
        for hook in self.on_revoke_hooks:
            hook(tps)
        self._forget(tps)
        log.info("revoked %s", tps)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        log.warning("partitions lost (another member may own them now): %s", tps)
        for hook in self.on_revoke_hooks:
            hook(tps)
        self._forget(tps)

    def _forget(self, tps: list[TP]) -> None:
        gone = set(tps)
        if self._buffer:
            self._buffer = deque(m for m in self._buffer if (m.topic(), m.partition()) not in gone)
        self.offsets.forget(gone)


def _partitions(offsets: dict[TP, int]) -> list[TopicPartition]:
    return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]


def _hooks(h: PartitionsHook | Iterable[PartitionsHook] | None) -> list[PartitionsHook]:
    if h is None:
        return []
    if callable(h):
        return [h]
    return list(h)
