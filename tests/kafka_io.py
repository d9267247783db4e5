"""Small produce/consume/wait helpers shared by the container tests."""

from __future__ import annotations

import logging
import threading
import uuid

from confluent_kafka import Consumer, KafkaError, Producer

from kafkaops.admin import admin_client
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


def produce(bootstrap: str, topic: str, values: list[bytes], flush_timeout: float = 180) -> list[bytes]:
    """Produce with acks=all + idempotence; return the acknowledged values (in ack order)."""
    acked: list[bytes] = []
    errors: list[KafkaError] = []

    def report(err: KafkaError | None, msg: object) -> None:
        if err is None:
            acked.append(msg.value())  # type: ignore[attr-defined]
        else:
            errors.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 120000, "logger": log})
    for v in values:
        p.produce(topic, value=v, on_delivery=report)
        p.poll(0)
    left = p.flush(flush_timeout)
    assert left == 0, f"{left} records not delivered within {flush_timeout}s"
    assert not errors, f"delivery errors: {errors[:3]}"
    return acked


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 120) -> list[bytes]:
    """Read a topic from the start until ``expected`` records (plus 2 s for duplicates)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "logger": log})
    c.subscribe([topic])
    got: list[bytes] = []
    deadline = Deadline(timeout)
    try:
        while len(got) < expected and not deadline.expired:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        linger = Deadline(2)
        while not linger.expired:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
    finally:
        c.close()
    return got


def replicas_and_isr(bootstrap: str, topic: str) -> dict[int, tuple[list[int], list[int]]]:
    """partition -> (sorted replicas, sorted ISR)."""
    md = admin_client(bootstrap).list_topics(topic=topic, timeout=15)
    return {p.id: (sorted(p.replicas), sorted(p.isrs)) for p in md.topics[topic].partitions.values()}


def full_isr(bootstrap: str, topic: str, size: int = 3) -> bool:
    try:
        parts = replicas_and_isr(bootstrap, topic)
    except Exception:  # noqa: BLE001 - metadata briefly unavailable
        return False
    return bool(parts) and all(len(isr) == size for _, isr in parts.values())


class Writer(threading.Thread):
    """Produces 0, 1, 2, ... with acks=all + idempotence; remembers what was acknowledged.

    With those settings and a delivery timeout longer than any outage a test causes, no
    delivery may fail: ``finish`` asserts that none did (a failed delivery is a bug)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.acked: list[int] = []
        self.errors: list[KafkaError] = []
        self.stop = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "message.timeout.ms": 300000, "linger.ms": 5, "logger": log})

    def _report(self, err: KafkaError | None, msg: object) -> None:
        if err is None:
            self.acked.append(int(msg.value()))  # type: ignore[attr-defined]
        else:
            self.errors.append(err)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce(self.topic, value=str(i).encode(), on_delivery=self._report)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.005)

    def finish(self, timeout: float = 300) -> None:
        self.stop.set()
        self.join(30)
        left = self.producer.flush(timeout)
        assert left == 0, f"{left} records still unacknowledged after {timeout}s"
        assert not self.errors, (
            f"{len(self.errors)} deliveries failed with acks=all and idempotence "
            f"(a bug to report): {sorted({str(e) for e in self.errors})[:3]}"
        )
