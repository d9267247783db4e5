"""The writers of every workload: TypedProducers (acks=all, idempotent: the library's
defaults) on threads of their own, each writing ``{"w": writer, "s": sequence}`` at a
steady rate under keys ``w<writer>-k<n>``, and recording each record's outcome."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from kafkaops.chaos.history import Sent
from kafkaops.clients.delivery import DeliveryCallback, DeliveryError, DeliveryReport
from kafkaops.clients.producer import ProducerError, TypedProducer
from kafkaops.config import ClusterProfile
from kafkaops.serde.codec import JsonCodec

log = logging.getLogger(__name__)

FLUSH_TIMEOUT = 150.0
"""Longer than the producer's ``delivery.timeout.ms`` (120 s): every record has an outcome after it."""


class Writer(threading.Thread):
    """One writer: a TypedProducer on its own thread, ``rate`` records a second."""

    def __init__(self, profile: ClusterProfile, topic: str, writer: int, rate: float, keys: int) -> None:
        super().__init__(name=f"chaos-writer-{writer}", daemon=True)
        self.profile, self.topic, self.writer = profile, topic, writer
        self.interval = 1.0 / rate
        self.keys = keys
        self.sent: list[Sent] = []
        self.errors: list[str] = []
        self.left = 0
        self._halt = threading.Event()

    def key(self, seq: int) -> str:
        return f"w{self.writer}-k{seq % self.keys}"

    def stop(self) -> None:
        """Stop sending; the thread then waits for every outcome (flush) and ends."""
        self._halt.set()

    def run(self) -> None:
        try:
            producer: TypedProducer[dict[str, int]] = TypedProducer(self.profile, self.topic, JsonCodec())
        except ProducerError as exc:
            self.errors.append(str(exc))
            return
        next_at = time.monotonic()
        try:
            while not self._halt.is_set():
                seq = len(self.sent)
                s = Sent(self.writer, seq, self.key(seq), time.monotonic())
                self.sent.append(s)
                producer.produce({"w": self.writer, "s": seq}, key=s.key, on_delivery=_outcome(s))
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    producer.poll(delay)
                else:
                    next_at = time.monotonic()  # behind (a stall): no burst to catch up
        except ProducerError as exc:  # the local queue stayed full: brokers gone too long
            self.errors.append(str(exc))
        finally:
            self.left = producer.flush(FLUSH_TIMEOUT)
            if self.left:
                self.errors.append(f"writer {self.writer}: {self.left} records without a delivery report "
                                   f"after {FLUSH_TIMEOUT:.0f}s")


def _outcome(s: Sent) -> DeliveryCallback:
    def report(error: DeliveryError | None, dr: DeliveryReport | None) -> None:
        if dr is not None:
            s.acked_at, s.partition, s.offset = time.monotonic(), dr.partition, dr.offset
        elif error is not None:
            s.error, s.partition = error.error.name(), error.partition
            log.warning("writer %d record %d failed: %s", s.writer, s.seq, error)

    return report


class Writers:
    """A workload's writers: started together, stopped together, their records as one history."""

    def __init__(self, profile: ClusterProfile, topic: str, *, writers: int = 2, rate: float = 150.0,
                 keys: int = 8) -> None:
        self.threads = [Writer(profile, topic, w, rate, keys) for w in range(writers)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        """Stop sending and wait until every record has its outcome (at most FLUSH_TIMEOUT)."""
        for t in self.threads:
            t.stop()
        for t in self.threads:
            t.join(FLUSH_TIMEOUT + 30)

    @property
    def sent(self) -> Iterator[Sent]:
        for t in self.threads:
            yield from list(t.sent)

    @property
    def errors(self) -> list[str]:
        return [e for t in self.threads for e in t.errors]

    def acked(self) -> int:
        return sum(1 for s in self.sent if s.acked)
