"""TypedProducer[T]: a confluent_kafka.Producer that encodes values with a codec and returns futures.

No-loss defaults: ``acks=all`` and ``enable.idempotence=true`` (no duplicates or
reordering on retry), unlimited delivery retries within ``delivery.timeout.ms``.
Overrides that WEAKEN them, passed through ``config``: ``acks`` 0/1,
``enable.idempotence=false``, a short ``delivery.timeout.ms`` / ``message.timeout.ms``,
``max.in.flight.requests.per.connection`` > 5 (refused with idempotence). Batching
(``linger.ms=5``) and ``compression.type=lz4`` favour throughput.
"""

from __future__ import annotations

import logging
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures._base import FINISHED as _FINISHED
from concurrent.futures._base import PENDING as _PENDING
from typing import Any, Generic, NamedTuple, TypeVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafkaops.clients.partitioners import Partitioner
from kafkaops.errors import KafkaopsError
from kafkaops.serde.codec import Codec, Serializer, StringCodec

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "compression.type": "lz4",
    "delivery.timeout.ms": 120000,
    "partitioner": "murmur2_random",
}
"""librdkafka settings of every TypedProducer; ``config`` entries override them."""

Headers = dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]]


class ProducerError(KafkaopsError):
    """Producing failed (queue stayed full, client error)."""


class QueueFullError(ProducerError):
    """The local queue stayed full for longer than ``queue_full_timeout``: brokers too slow or gone."""


class DeliveryError(ProducerError):
    """The broker did not acknowledge a record (after librdkafka's retries)."""

    def __init__(self, error: KafkaError, topic: str, partition: int | None) -> None:
        self.error = error
        self.topic = topic
        self.partition = partition
        super().__init__(f"delivery to {topic}[{partition}] failed: {error.str()} ({error.name()})")


class DeliveryReport(NamedTuple):
    """Where an acknowledged record landed. ``timestamp`` is in ms since the epoch."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class DeliveryFuture(Future[DeliveryReport]):
    """A Future of a DeliveryReport, resolved by librdkafka's delivery callback.

    Waiting on it (``result``/``exception``) serves the producer's callbacks, so it
    works without a separate poll loop. Kept lean because one is made per record: the
    futures of one producer share its Condition, and the report is built from the
    delivered Message only when asked for.
    """

    # set on the per-producer subclass (see TypedProducer): shared by its futures
    _client: Producer
    _condition: threading.Condition
    _lock: Any
    _counts: list[int]  # [acknowledged, failed] of the producer's records
    # per-record extras default to the class attribute; set on the instance when used
    _user: DeliveryCallback | None = None
    _partitioner: Partitioner | None = None
    _topic = ""
    _sent = 0.0

    # Future's per-instance state, as class defaults until the delivery report sets them
    _state = _PENDING
    _result = None
    _exception = None
    _waiters_: list[Any] | None = None
    _callbacks_: list[Any] | None = None

    def __init__(self) -> None:
        """Nothing to set up: no super().__init__(), which would make a Condition and two lists per record."""

    @property
    def _waiters(self) -> list[Any]:  # type: ignore[override]
        """Future's waiter list (for concurrent.futures.wait), made on first use."""
        w = self._waiters_
        if w is None:
            w = self._waiters_ = []
        return w

    @property
    def _done_callbacks(self) -> list[Any]:
        """Future's done-callback list (add_done_callback), made on first use."""
        c = self._callbacks_
        if c is None:
            c = self._callbacks_ = []
        return c

    @classmethod
    def bound_to(cls, client: Producer) -> type[DeliveryFuture]:
        """A subclass whose futures serve ``client`` and share one Condition."""
        lock = threading.RLock()
        return type(
            cls.__name__, (cls,),
            {"_client": client, "_condition": threading.Condition(lock), "_lock": lock, "_counts": [0, 0]},
        )

    def _serve(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return
            self._client.poll(left)

    def result(self, timeout: float | None = None) -> DeliveryReport:
        self._serve(timeout)
        if self._state == _FINISHED and self._exception is None:
            r: Any = self._result
            if not isinstance(r, DeliveryReport):
                r = self._result = _report(r)
            return typing.cast(DeliveryReport, r)
        return super().result(timeout=0)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._serve(timeout)
        return super().exception(timeout=0)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery callback for this record (called from poll/flush)."""
        partitioner = self._partitioner
        if partitioner is not None:
            try:
                partitioner.on_delivery(self._topic, msg.partition() or 0, err, time.monotonic() - self._sent)
            except Exception:  # a partitioner bug must not lose the delivery report
                log.exception("partitioner.on_delivery failed")
        exc = None if err is None else DeliveryError(err, msg.topic() or "", msg.partition())
        with self._lock:  # the Condition's lock, without its Python-level wrapper
            waiters = self._waiters_
            if exc is None:
                self._result = msg  # type: ignore[assignment]
                if waiters:
                    for waiter in waiters:
                        waiter.add_result(self)
            else:
                self._exception = exc
                if waiters:
                    for waiter in waiters:
                        waiter.add_exception(self)
            self._state = _FINISHED
            self._counts[exc is not None] += 1
            if self._condition._waiters:  # type: ignore[attr-defined]  # a thread waits in Future.result
                self._condition.notify_all()
        if self._callbacks_:
            self._invoke_callbacks()  # type: ignore[attr-defined]
        if self._user is not None:
            if exc is None:
                report = self._result = _report(msg)
                self._user(None, report)
            else:
                self._user(exc, None)

    # the future itself is librdkafka's delivery callback for its record (no bound method per record)
    __call__ = _delivered


DeliveryCallback = Callable[[DeliveryError | None, DeliveryReport | None], None]


class TypedProducer(Generic[T]):
    """Produce values of type T to a default topic through a value codec.

    ``produce`` returns a DeliveryFuture resolved by the broker's acknowledgement
    (served by ``poll``, ``flush`` or waiting on the future). When the local queue is
    full it polls and retries up to ``queue_full_timeout`` seconds, then raises
    QueueFullError. ``partitioner``: when given, it chooses each record's partition
    (``partition=``) and learns from delivery reports; when None, librdkafka's
    ``murmur2_random`` (Java-compatible key hashing) decides.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        value_codec: Codec[T] | Serializer[T],
        *,
        key_codec: Serializer[Any] | None = None,
        partitioner: Partitioner | None = None,
        config: dict[str, Any] | None = None,
        queue_full_timeout: float = 30.0,
    ) -> None:
        conf = {**DEFAULT_CONFIG, "bootstrap.servers": bootstrap_servers, "logger": log}
        feed = getattr(partitioner, "producer_config", None)
        if feed is not None:  # librdkafka statistics -> the partitioner's broker states
            conf.update(feed())
        conf.update(config or {})
        self.topic = topic
        self.config = conf
        self.value_codec = value_codec
        self.key_codec: Serializer[Any] = key_codec if key_codec is not None else StringCodec()
        self.queue_full_timeout = queue_full_timeout
        try:
            self.client = Producer(conf)
        except KafkaException as exc:
            raise ProducerError(f"invalid producer configuration: {exc.args[0].str()}") from None
        self._produce = self.client.produce
        self._poll = self.client.poll
        self._future = DeliveryFuture.bound_to(self.client)
        self._partitioner = partitioner
        if partitioner is not None:
            partitioner.bind(self.client)
        self._closed = False

    # ------------------------------------------------------------------ produce
    def produce(
        self,
        value: T,
        key: Any = None,
        headers: Headers | None = None,
        *,
        topic: str | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> DeliveryFuture:
        """Encode and enqueue one record; the future resolves to its DeliveryReport.

        ``on_delivery(error, report)`` is called as well (from poll/flush), if given.
        Encoding errors raise EncodeError here; delivery errors resolve the future
        with DeliveryError.
        """
        topic = topic or self.topic
        data = self.value_codec.encode(value)
        kb = None if key is None else self.key_codec.encode(key)
        partitioner = self._partitioner
        fut = self._future()
        if on_delivery is not None:
            fut._user = on_delivery
        if partitioner is None:
            try:  # the common case inline: one produce call, no backpressure
                self._produce(topic, data, kb, on_delivery=fut, headers=headers)
            except BufferError:
                self._enqueue(topic, data, kb, headers, fut, None)
            except KafkaException as exc:
                raise ProducerError(f"cannot produce to {topic}: {exc.args[0].str()}") from None
        else:
            partition = partitioner.partition(topic, kb)
            fut._partitioner, fut._topic, fut._sent = partitioner, topic, time.monotonic()
            try:
                self._enqueue(topic, data, kb, headers, fut, partition)
            except Exception:
                release = getattr(partitioner, "release", None)
                if release is not None and partition is not None:
                    release(topic, partition)  # no delivery report will come for it
                raise
        self._poll(0)
        return fut

    def _enqueue(
        self,
        topic: str,
        data: bytes,
        key: bytes | None,
        headers: Headers | None,
        cb: Callable[[KafkaError | None, Message], None],
        partition: int | None,
    ) -> None:
        produce = self.client.produce
        part = -1 if partition is None else partition  # -1: librdkafka's partitioner decides
        try:
            produce(topic, data, key, part, on_delivery=cb, headers=headers)
            return
        except BufferError:
            pass
        except KafkaException as exc:
            raise ProducerError(f"cannot produce to {topic}: {exc.args[0].str()}") from None
        # backpressure: the local queue is full; serve delivery reports until there is room
        deadline = time.monotonic() + self.queue_full_timeout
        while True:
            self.client.poll(0.05)
            try:
                produce(topic, data, key, part, on_delivery=cb, headers=headers)
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise QueueFullError(
                        f"local producer queue for {topic} still full after {self.queue_full_timeout:.0f}s "
                        f"({len(self.client)} records waiting): brokers unreachable or too slow"
                    ) from None

    # ------------------------------------------------------------------ lifecycle
    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports (resolves futures); returns how many were served."""
        return int(self.client.poll(timeout))

    def flush(self, timeout: float = 60.0) -> int:
        """Wait until every queued record is acknowledged or failed; returns how many are still queued."""
        return int(self.client.flush(timeout))

    @property
    def acknowledged(self) -> int:
        """Records the brokers acknowledged so far (delivery reports served)."""
        return self._future._counts[0]

    @property
    def failed(self) -> int:
        """Records whose delivery failed so far."""
        return self._future._counts[1]

    def __len__(self) -> int:
        """Records queued or in flight."""
        return len(self.client)

    def close(self, timeout: float = 60.0) -> None:
        """Flush; raises ProducerError if records are still unacknowledged after ``timeout``."""
        if self._closed:
            return
        self._closed = True
        left = self.flush(timeout)
        if left:
            raise ProducerError(f"{left} record(s) still unacknowledged after {timeout:.0f}s at close")

    def __enter__(self) -> TypedProducer[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # already failing: flush what we can, do not mask the original error
            self._closed = True
            left = self.flush(10.0)
            if left:
                log.error("%d record(s) unacknowledged when leaving the producer on %s", left, exc_type.__name__)


def _report(msg: Message) -> DeliveryReport:
    return DeliveryReport(msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1])  # type: ignore[arg-type]
