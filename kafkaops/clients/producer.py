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
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafkaops.clients.delivery import (
    DeliveryCallback,
    DeliveryError,
    DeliveryFuture,
    DeliveryReport,
    Deliveries,
    DoneAndPending,
    Placement,
    ProducerError,
    wait,
)
from kafkaops.clients.connection import producer_denied, watched
from kafkaops.clients.librdkafka import masked, render
from kafkaops.clients.partitioners import BasePartitioner, Partitioner, make_partitioner
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import ConfigError, KafkaopsError
from kafkaops.serde.codec import Codec, Serializer, StringCodec
from kafkaops.waits import Deadline

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


class QueueFullError(ProducerError):
    """The local queue stayed full for longer than ``queue_full_timeout``: brokers too slow or gone."""


__all__ = [
    "DEFAULT_CONFIG", "DeliveryCallback", "DeliveryError", "DeliveryFuture", "DeliveryReport",
    "DoneAndPending", "ProducerError", "QueueFullError", "TypedProducer", "wait",
]


class TypedProducer(Generic[T]):
    """Produce values of type T to a default topic through a value codec.

    ``cluster`` is a :class:`~kafkaops.config.ClusterProfile` (bootstrap servers and
    security) or a bootstrap string. ``produce`` returns a DeliveryFuture resolved by
    the broker's acknowledgement (served by ``poll``, ``flush`` or waiting on the
    future). When the local queue is full it polls and retries up to
    ``queue_full_timeout`` seconds, then raises QueueFullError. ``strategy`` (the CLI's
    names: ``round-robin``, ``random``, ``least-loaded``, ``key-hash``) or ``partitioner``
    (one you built, e.g. with options) chooses each record's partition
    (:mod:`kafkaops.clients.partitioners`); neither: librdkafka's ``murmur2_random``
    (Java-compatible key hashing, sticky runs for records without a key) decides. A
    partitioner made from ``strategy`` is closed with the producer. ``config`` (the
    rendered librdkafka config, secrets masked) shows what the client runs with.
    """

    def __init__(
        self,
        cluster: ClusterProfile | str,
        topic: str,
        value_codec: Codec[T] | Serializer[T],
        *,
        key_codec: Serializer[Any] | None = None,
        partitioner: Partitioner | None = None,
        strategy: str | None = None,
        config: dict[str, Any] | None = None,
        queue_full_timeout: float = 30.0,
    ) -> None:
        self._owned: BasePartitioner | None = None
        if strategy is not None:
            if partitioner is not None:
                raise ConfigError("give a partitioner or a strategy, not both")
            partitioner = self._owned = make_partitioner(strategy)
        self.profile = as_profile(cluster)
        feed = getattr(partitioner, "producer_config", None)  # librdkafka statistics -> broker states
        conf = render(self.profile, DEFAULT_CONFIG, {"logger": log}, feed() if feed is not None else None, config)
        self.topic = topic
        self.config = masked(conf)
        conf, self._watch = watched(self.profile, conf, log)  # refusals (auth, TLS, protocol) raise at once
        self.value_codec = value_codec
        self.key_codec: Serializer[Any] = key_codec if key_codec is not None else StringCodec()
        self.queue_full_timeout = queue_full_timeout
        try:
            self.client = Producer(conf)
        except KafkaException as exc:
            raise ProducerError(
                f"invalid producer configuration for {self.profile.bootstrap_servers}: {exc.args[0].str()}"
            ) from None
        self._produce = self.client.produce
        self._poll = self.client.poll
        self._deliveries = Deliveries(cast(Producer, _NamedErrors(self)))  # futures poll through it
        self._partitioner = partitioner
        # our strategies ask for the delivery reports of a few records (their ``probe``);
        # a partitioner of your own hears of every record it placed
        self._probes = isinstance(partitioner, BasePartitioner)
        if isinstance(partitioner, BasePartitioner):
            partitioner.bind(self.client, conf)  # keyed records go to librdkafka when it hashes as Kafka does
        elif partitioner is not None:
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
        if partitioner is None:
            fut = DeliveryFuture(self._deliveries, on_delivery)
            try:  # the common case inline: one produce call, no backpressure
                self._produce(topic, data, kb, on_delivery=fut, headers=headers)
            except BufferError:
                self._enqueue(topic, data, kb, headers, fut, None)
            except KafkaException as exc:
                raise ProducerError(f"cannot produce to {topic}: {exc.args[0].str()}") from None
        else:
            partition = partitioner.partition(topic, kb)
            placement = (Placement(partitioner, topic, time.monotonic())
                         if not self._probes or partitioner.probe is not None else None)  # type: ignore[attr-defined]
            fut = DeliveryFuture(self._deliveries, on_delivery, placement)
            try:
                self._enqueue(topic, data, kb, headers, fut, partition)
            except Exception:
                release = getattr(partitioner, "release", None)
                if release is not None and placement is not None and partition is not None and partition >= 0:
                    release(topic, partition)  # no delivery report will come for it
                raise
        try:
            self._poll(0)
        except KafkaException as exc:  # fatal: e.g. the idempotent producer's ID was refused
            raise self._fatal(exc) from None
        return fut

    def _fatal(self, exc: KafkaException) -> KafkaopsError:
        """A fatal client error as a kafkaops error (AuthorizationFailed names principal and topic)."""
        err = exc.args[0]
        return producer_denied(err, self.profile, self.topic) or ProducerError(f"producer failed: {err.str()}")

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
        part = -1 if partition is None else partition  # -1 (or None): librdkafka's partitioner decides
        try:
            produce(topic, data, key, part, on_delivery=cb, headers=headers)
            return
        except BufferError:
            pass
        except KafkaException as exc:
            raise ProducerError(f"cannot produce to {topic}: {exc.args[0].str()}") from None
        # backpressure: the local queue is full; serve delivery reports until there is room
        deadline = Deadline(self.queue_full_timeout)
        while True:
            self.client.poll(0.05)
            try:
                produce(topic, data, key, part, on_delivery=cb, headers=headers)
                return
            except BufferError:
                if deadline.expired:
                    raise QueueFullError(
                        f"local producer queue for {topic} still full after {self.queue_full_timeout:.0f}s "
                        f"({len(self.client)} records waiting): brokers at {self.profile.bootstrap_servers} "
                        "unreachable or too slow"
                    ) from None

    @property
    def partitioner(self) -> Partitioner | None:
        """The partitioner choosing partitions (None: librdkafka's)."""
        return self._partitioner

    # ------------------------------------------------------------------ lifecycle
    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports (resolves futures); returns how many were served. Raises
        ConnectionRefused (kafkaops.clients.connection) once the brokers refused this client."""
        try:
            served = int(self.client.poll(timeout))
        except KafkaException as exc:
            raise self._fatal(exc) from None
        self._watch.check()
        return served

    def flush(self, timeout: float = 60.0) -> int:
        """Wait until every queued record is acknowledged or failed; returns how many are still queued.
        A refused connection (wrong credentials, untrusted certificate) raises at once."""
        deadline = Deadline(timeout)
        while True:
            self._watch.check()
            try:
                left = int(self.client.flush(deadline.remaining(cap=0.5)))
            except KafkaException as exc:
                raise self._fatal(exc) from None
            if left == 0 or deadline.expired:
                return left

    @property
    def acknowledged(self) -> int:
        """Records the brokers acknowledged so far (delivery reports served)."""
        return self._deliveries.acknowledged

    @property
    def failed(self) -> int:
        """Records whose delivery failed so far."""
        return self._deliveries.failed

    def __len__(self) -> int:
        """Records queued or in flight."""
        return len(self.client)

    def close(self, timeout: float = 60.0) -> None:
        """Flush; raises ProducerError if records are still unacknowledged after ``timeout``."""
        if self._closed:
            return
        self._closed = True
        left = self.flush(timeout)
        if self._owned is not None:
            self._owned.close()
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
            if self._owned is not None:
                self._owned.close()
            if left:
                log.error("%d record(s) unacknowledged when leaving the producer on %s", left, exc_type.__name__)


class _NamedErrors:
    """The producer's ``poll`` as its futures call it: fatal client errors raised as kafkaops errors."""

    __slots__ = ("_producer",)

    def __init__(self, producer: TypedProducer[Any]) -> None:
        self._producer = producer

    def poll(self, timeout: float = 0.0) -> int:
        try:
            return int(self._producer.client.poll(timeout))
        except KafkaException as exc:
            raise self._producer._fatal(exc) from None
