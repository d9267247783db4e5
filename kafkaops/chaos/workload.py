"""A chaos workload: writers plus a consumer side, started before the fault and checked after.

Every workload writes through :class:`~kafkaops.chaos.writers.Writers` (TypedProducer,
acks=all, idempotent); what reads differs (a consumer group, a checkpointed aggregate job,
a share group). The runner drives one through start -> flowing -> (fault) -> stop ->
check, then close.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from kafkaops.chaos.checker import Check, check_producer, max_ack_gap
from kafkaops.chaos.history import LogRecord
from kafkaops.chaos.target import ChaosCluster, create_chaos_topic
from kafkaops.chaos.writers import Writers

PARTITIONS = 3


@dataclass
class Outcome:
    """What a workload's check found: the properties and its own figures."""

    checks: list[Check]
    figures: dict[str, Any] = field(default_factory=dict)


class Workload(ABC):
    """Writers on a fresh topic and a consumer side; subclasses supply the consumer side."""

    name = ""
    description = ""

    def __init__(self, cluster: ChaosCluster, *, rate: float = 150.0, workdir: Any = None) -> None:
        self.cluster = cluster
        self.profile = cluster.profile
        self.rate = rate
        self.workdir = workdir
        self.topic = ""
        self.writers: Writers | None = None
        self.errors: list[str] = []

    @classmethod
    def unsupported(cls, cluster: ChaosCluster) -> str | None:
        """Why this workload cannot run on ``cluster`` (None: it can)."""
        return None

    def start(self) -> None:
        """Create the topic, start the consumer side, then the writers."""
        self.topic = create_chaos_topic(self.cluster, f"chaos-{self.name}", PARTITIONS)
        self.start_consumers()
        self.writers = Writers(self.profile, self.topic, rate=self.rate / 2)
        self.writers.start()

    @property
    def partitions(self) -> range:
        return range(PARTITIONS)

    def flowing_since(self, since: float) -> dict[int, float | None]:
        """Per partition, when a record written at or after ``since`` first reached the consumer side."""
        raise NotImplementedError

    def recovered_since(self, since: float) -> float | None:
        """Seconds from ``since`` until every partition flowed end to end again, None if not yet."""
        firsts = self.flowing_since(since)
        if any(t is None for t in firsts.values()):
            return None
        return max(t for t in firsts.values() if t is not None) - since

    def stop_writers(self) -> None:
        assert self.writers is not None
        self.writers.stop()
        self.errors += self.writers.errors

    def check(self, log: list[LogRecord], ends: dict[int, int]) -> Outcome:
        """Producer properties plus the consumer side's (the consumers have drained by now)."""
        assert self.writers is not None
        sent = list(self.writers.sent)
        outcome = self.check_consumers(log, ends)
        checks = [*check_producer(sent, log), *outcome.checks]
        checks.append(Check("no workload errors", len(self.errors), "; ".join(self.errors[:3])))
        figures = {
            "records": sum(1 for s in sent if s.acked),
            "sent": len(sent),
            "in_doubt": sum(1 for s in sent if s.in_doubt),
            "failed": sum(1 for s in sent if not s.acked and not s.in_doubt),
            "acked_without_offset": sum(1 for s in sent if s.acked and s.offset is None),
            "max_ack_gap": round(max_ack_gap(sent), 2),
            **outcome.figures,
        }
        return Outcome(checks, figures)

    def zookeeper_session(self) -> tuple[int, bytes] | None:
        """The consumer side's ZooKeeper session (id, password), if it holds one."""
        return None

    def crash_consumer(self) -> str | None:
        """Crash the consumer side as a process dies (SIGKILL) and start it again; what was done,
        or None when this workload's consumers are not processes of their own."""
        return None

    # ---- the consumer side ----------------------------------------------------------

    @abstractmethod
    def start_consumers(self) -> None: ...

    @abstractmethod
    def drain(self, ends: dict[int, int], timeout: float) -> None:
        """Wait until the consumer side has everything up to ``ends`` (or ``timeout`` passed)."""

    @abstractmethod
    def check_consumers(self, log: list[LogRecord], ends: dict[int, int]) -> Outcome: ...

    @abstractmethod
    def close(self) -> None:
        """Stop the consumer side (and anything the workload started)."""


def now() -> float:
    return time.monotonic()
