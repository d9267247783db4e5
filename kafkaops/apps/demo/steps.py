"""What every demo area shares: the Step it yields, the cluster it runs on, its failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kafkaops.config import ClusterProfile
from kafkaops.errors import KafkaopsError


@dataclass(frozen=True)
class Step:
    """One demo step's outcome: a title, what happened, and whether it is what was expected."""

    title: str
    detail: str
    ok: bool = True


class DemoFailed(KafkaopsError):
    """A demo step did not reach its expected outcome."""


class DemoCluster(Protocol):
    """What the demo needs of a cluster it may break (a ``LocalCluster``)."""

    @property
    def profile(self) -> ClusterProfile: ...
    @property
    def brokers(self) -> Sequence[Any]: ...

    def kill_broker(self, broker_id: int) -> None: ...
    def start_broker(self, broker_id: int, wait: bool = True, timeout: float = 90.0) -> None: ...


def replication(cluster: DemoCluster) -> int:
    """The demo topics' replication factor: 3, or fewer on a smaller cluster."""
    return min(3, len(cluster.brokers))
