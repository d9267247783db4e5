"""TypedProducer's partitioner hook: statistics wiring and undoing failed placements.

No broker is needed: both outcomes are decided before a record leaves the process.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError

from kafkaops.clients.partitioners import LeastLoaded
from kafkaops.clients.producer import ProducerError, TypedProducer
from kafkaops.errors import ConfigError
from kafkaops.serde.codec import BytesCodec


class Recording:
    """A partitioner that always picks partition 0 and records releases."""

    def __init__(self) -> None:
        self.released: list[tuple[str, int]] = []

    def bind(self, client: Any) -> None:
        pass

    def partition(self, topic: str, key: bytes | None) -> int | None:
        return 0

    def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
        pass

    def release(self, topic: str, partition: int) -> None:
        self.released.append((topic, partition))


def test_statistics_feed_the_partitioner_unless_the_user_overrides() -> None:
    part = LeastLoaded()
    try:
        p = TypedProducer("127.0.0.1:1", "t", BytesCodec(), partitioner=part)
        assert p.config["statistics.interval.ms"] == 500 and p.config["stats_cb"] == part.on_stats
        p2 = TypedProducer("127.0.0.1:1", "t", BytesCodec(), partitioner=part,
                           config={"statistics.interval.ms": 2000})
        assert p2.config["statistics.interval.ms"] == 2000
    finally:
        part.close()


def test_a_placement_whose_produce_raised_is_released() -> None:
    part = Recording()
    p = TypedProducer("127.0.0.1:1", "t", BytesCodec(), partitioner=part, config={"message.max.bytes": 1000})
    with pytest.raises(ProducerError):
        p.produce(b"x" * 5000)  # too large: librdkafka refuses it in produce()
    assert part.released == [("t", 0)]


def test_a_strategy_by_name_is_built_bound_and_closed_with_the_producer() -> None:
    p = TypedProducer("127.0.0.1:1", "t", BytesCodec(), strategy="least-loaded",
                      config={"sticky.partitioning.linger.ms": 20})
    part = p.partitioner
    assert isinstance(part, LeastLoaded)
    assert part.native_keys and part.sticky_s == 0.02  # bound with the producer's config
    assert p.config["partitioner"] == "murmur2_random"
    p.close(timeout=0.1)
    assert part.metadata._closed.is_set()
    with pytest.raises(ConfigError, match="not both"):
        TypedProducer("127.0.0.1:1", "t", BytesCodec(), strategy="random", partitioner=LeastLoaded())
    with pytest.raises(ConfigError, match="least-loaded"):
        TypedProducer("127.0.0.1:1", "t", BytesCodec(), strategy="least-connections")
