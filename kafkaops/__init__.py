"""kafkaops: typed Kafka clients, ZooKeeper coordination and operations tooling."""

from __future__ import annotations

__version__ = "0.1.0"
