"""Delivery reports of a TypedProducer: one DeliveryFuture per record, resolved by librdkafka.

A DeliveryFuture is not a ``concurrent.futures.Future``: nothing resolves it unless
someone serves the producer's delivery callbacks (``poll``/``flush``), so waiting on
it (``result``, ``exception``, :func:`wait`) serves them itself. It is built once per
record, so it is small: a few slots, no lock or list of its own until a done-callback
is added. Use :func:`wait` where ``concurrent.futures.wait`` would be used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from confluent_kafka import KafkaError, Message, Producer

from kafkaops.errors import KafkaopsError
from kafkaops.waits import Deadline, WaitTimeout

if TYPE_CHECKING:
    from kafkaops.clients.partitioners import Partitioner

log = logging.getLogger(__name__)

SERVE_INTERVAL = 0.1
"""Longest single ``poll`` while waiting, so a report served by another thread is seen soon."""


class ProducerError(KafkaopsError):
    """Producing failed (queue stayed full, client error)."""


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


DeliveryCallback = Callable[[DeliveryError | None, DeliveryReport | None], None]
DoneCallback = Callable[["DeliveryFuture"], object]


@dataclass(slots=True, eq=False)
class Deliveries:
    """The delivery reports of one producer: the client whose ``poll`` serves them, and counts."""

    client: Producer
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: int = 0
    failed: int = 0


class Placement(NamedTuple):
    """A record a partitioner placed: told to the partitioner again with the delivery report."""

    partitioner: Partitioner
    topic: str
    sent: float


class DeliveryFuture:
    """The outcome of one record: a DeliveryReport, or a DeliveryError.

    It is the record's librdkafka delivery callback itself (``on_delivery=future``), so
    no bound method is made per record. The report is built from the delivered Message
    only when asked for.
    """

    __slots__ = ("_deliveries", "_outcome", "_callbacks", "_on_delivery", "_placement")

    def __init__(
        self,
        deliveries: Deliveries,
        on_delivery: DeliveryCallback | None = None,
        placement: Placement | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._outcome: Message | DeliveryReport | DeliveryError | None = None  # None while pending
        self._callbacks: list[DoneCallback] | None = None
        self._on_delivery = on_delivery
        self._placement = placement

    # ------------------------------------------------------------------ reading
    def done(self) -> bool:
        """True once the broker acknowledged the record or its delivery failed."""
        return self._outcome is not None

    def result(self, timeout: float | None = None) -> DeliveryReport:
        """The DeliveryReport, waiting up to ``timeout`` seconds (None: no limit) while serving
        the producer's callbacks. Raises DeliveryError, or WaitTimeout (a TimeoutError)."""
        outcome = self._outcome
        if outcome is None:
            outcome = self._wait(timeout)
        if type(outcome) is DeliveryReport:
            return outcome
        if isinstance(outcome, DeliveryError):
            raise outcome
        report = self._outcome = _report(outcome)  # type: ignore[arg-type]
        return report

    def exception(self, timeout: float | None = None) -> DeliveryError | None:
        """The DeliveryError of a failed record, None for an acknowledged one (waits as ``result``)."""
        outcome = self._outcome
        if outcome is None:
            outcome = self._wait(timeout)
        return outcome if isinstance(outcome, DeliveryError) else None

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(future)`` once the record is resolved (now, if it already is). Called from
        whichever thread serves the delivery report; an exception it raises is logged."""
        with self._deliveries.lock:
            if self._outcome is None:
                if self._callbacks is None:
                    self._callbacks = [fn]
                else:
                    self._callbacks.append(fn)
                return
        _call(fn, self)

    def _wait(self, timeout: float | None) -> Message | DeliveryReport | DeliveryError:
        poll = self._deliveries.client.poll
        deadline = None if timeout is None else Deadline(timeout)
        while True:
            outcome = self._outcome
            if outcome is not None:
                return outcome
            if deadline is None:
                poll(SERVE_INTERVAL)
            elif deadline.expired:
                raise WaitTimeout(f"no delivery report for the record within {timeout:g}s")
            else:
                poll(deadline.remaining(cap=SERVE_INTERVAL))

    # ------------------------------------------------------------------ resolving
    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery callback for this record (called from poll/flush)."""
        placement = self._placement
        if placement is not None:
            try:
                placement.partitioner.on_delivery(
                    placement.topic, msg.partition() or 0, err, time.monotonic() - placement.sent)
            except Exception:  # a partitioner bug must not lose the delivery report
                log.exception("partitioner.on_delivery failed")
        outcome = msg if err is None else DeliveryError(err, msg.topic() or "", msg.partition())
        deliveries = self._deliveries
        with deliveries.lock:  # callbacks added from now on see the outcome and run at once
            self._outcome = outcome
            callbacks = self._callbacks
            if err is None:
                deliveries.acknowledged += 1
            else:
                deliveries.failed += 1
        if callbacks:
            for fn in callbacks:
                _call(fn, self)
        user = self._on_delivery
        if user is not None:
            if err is None:
                user(None, self.result(0))
            else:
                user(outcome, None)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        outcome = self._outcome
        state = "pending" if outcome is None else "failed" if isinstance(outcome, DeliveryError) else "acknowledged"
        return f"<DeliveryFuture {state}>"


class DoneAndPending(NamedTuple):
    """What :func:`wait` returns, like ``concurrent.futures.wait``."""

    done: set[DeliveryFuture]
    not_done: set[DeliveryFuture]


def wait(futures: Iterable[DeliveryFuture], timeout: float | None = None) -> DoneAndPending:
    """Wait until every future is resolved or ``timeout`` seconds passed, serving the callbacks
    of their producers meanwhile (other threads may poll or flush as well)."""
    pending = set(futures)
    clients = list({id(f._deliveries.client): f._deliveries.client for f in pending}.values())
    deadline = None if timeout is None else Deadline(timeout)
    done: set[DeliveryFuture] = set()
    while True:
        resolved = {f for f in pending if f._outcome is not None}
        done |= resolved
        pending -= resolved
        if not pending or (deadline is not None and deadline.expired):
            return DoneAndPending(done, pending)
        step = SERVE_INTERVAL / len(clients)
        for client in clients:
            client.poll(step if deadline is None else deadline.remaining(cap=step))


def _call(fn: DoneCallback, future: DeliveryFuture) -> None:
    try:
        fn(future)
    except Exception:
        log.exception("done callback %r of a delivery failed", fn)


def _report(msg: Message) -> DeliveryReport:
    return DeliveryReport(msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1])  # type: ignore[arg-type]
