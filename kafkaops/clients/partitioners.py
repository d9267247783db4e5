"""Partitioners the producer applies itself (confluent-kafka takes no Python callback).

A Partitioner picks the partition for each record; the producer passes it as
``partition=`` to ``Producer.produce``. ``None`` leaves the choice to librdkafka.
"""

from __future__ import annotations

from typing import Any, Protocol

from confluent_kafka import KafkaError


class Partitioner(Protocol):
    """Chooses a partition per record and learns from delivery reports."""

    def bind(self, client: Any) -> None:
        """Called once with the underlying ``confluent_kafka.Producer`` (for metadata)."""

    def partition(self, topic: str, key: bytes | None) -> int | None:
        """The partition for a record, or None for librdkafka's own choice."""

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        """Called from the delivery callback of every record this partitioner placed."""
