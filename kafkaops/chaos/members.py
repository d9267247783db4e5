"""Consumer members on threads of the runner's process, and the workloads built on them
(a consumer group, a share group): each member records every record it is handed."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from abc import abstractmethod
from typing import Any

from kafkaops.chaos.history import Delivery, first_seen_after
from kafkaops.chaos.workload import Workload
from kafkaops.config import ClusterProfile
from kafkaops.errors import KafkaopsError

log = logging.getLogger(__name__)


class Member(threading.Thread):
    """One member: ``consume()`` runs its client until :meth:`stop`, calling :meth:`deliver`."""

    def __init__(self, profile: ClusterProfile, topic: str, group: str, name: str) -> None:
        super().__init__(name=f"chaos-{group}-{name}", daemon=True)
        self.profile, self.topic, self.group, self.member = profile, topic, group, name
        self.deliveries: list[Delivery] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def deliver(self, record: Any, segment: int = 0) -> None:
        """Record a typed record (ConsumerRecord or ShareRecord) of a chaos writer."""
        key = record.key.decode() if isinstance(record.key, bytes) else str(record.key)
        self.deliveries.append(Delivery(self.member, segment, record.partition, record.offset,
                                        int(record.value["w"]), int(record.value["s"]), key, time.monotonic()))

    @abstractmethod
    def consume(self) -> None: ...

    def run(self) -> None:
        try:
            self.consume()
        except (KafkaopsError, KeyError, TypeError, ValueError) as exc:
            self.errors.append(f"{self.member}: {type(exc).__name__}: {exc}")
            log.exception("%s failed", self.name)

    def stop(self) -> None:
        self.stopping.set()


class MemberWorkload(Workload):
    """Writers + ``MEMBERS`` member threads of one new group."""

    MEMBERS = 2
    member_class: type[Member]

    def start_consumers(self) -> None:
        group = f"chaos-{self.name}-{uuid.uuid4().hex[:8]}"
        self.members = [self.member_class(self.profile, self.topic, group, f"member-{i}") for i in range(self.MEMBERS)]
        for m in self.members:
            m.start()

    def deliveries(self) -> list[Delivery]:
        return [d for m in self.members for d in list(m.deliveries)]

    def member_errors(self) -> bool:
        return any(m.errors for m in self.members)

    def flowing_since(self, since: float) -> dict[int, float | None]:
        assert self.writers is not None
        seen = ((d.partition, d.offset, d.at) for d in self.deliveries())
        return first_seen_after(self.writers.sent, seen, since, self.partitions)

    def collect(self) -> tuple[list[Delivery], dict[str, Any]]:
        """The deliveries, with the members' errors moved to the workload's and the redelivery count."""
        deliveries = self.deliveries()
        for m in self.members:
            self.errors += m.errors
        return deliveries, {"redelivered": len(deliveries) - len({(d.partition, d.offset) for d in deliveries})}

    def close(self) -> None:
        for m in getattr(self, "members", []):
            m.stop()
        for m in getattr(self, "members", []):
            m.join(60)
