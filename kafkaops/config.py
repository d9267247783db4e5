"""Typed settings read from the environment, with the defaults kafkaops documents.

Each setting names the variable that overrides it, so an operator can see at a
glance what to export.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "3.9.2"
"""Newest release of the last Apache Kafka line that still runs in ZooKeeper mode."""


@dataclass(frozen=True)
class Settings:
    """Where kafkaops keeps state and caches, and which Kafka it runs."""

    home: Path
    """``$KAFKAOPS_HOME`` (default ``~/.kafkaops``): state of the cluster `kafkaops up` started."""
    cache_dir: Path
    """``$KAFKAOPS_CACHE`` (default ``~/.cache/kafkaops``): fetched Kafka jars."""
    kafka_version: str
    """``$KAFKAOPS_KAFKA_VERSION`` (default 3.9.2)."""
    kafka_home: Path | None
    """``$KAFKA_HOME``: an existing Apache Kafka install whose ``libs/`` to use instead."""

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        home = Path(env.get("KAFKAOPS_HOME") or Path.home() / ".kafkaops")
        cache = Path(env.get("KAFKAOPS_CACHE") or Path.home() / ".cache" / "kafkaops")
        kafka_home = env.get("KAFKA_HOME")
        return cls(
            home=home.expanduser(),
            cache_dir=cache.expanduser(),
            kafka_version=env.get("KAFKAOPS_KAFKA_VERSION") or KAFKA_VERSION,
            kafka_home=Path(kafka_home).expanduser() if kafka_home else None,
        )
