"""The share-group workload: writers plus a share group of two TypedShareConsumer members
(threads) accepting every record. KRaft clusters of Kafka 4.x only; elsewhere the cell says
"not supported on this cluster" (never a silent pass)."""

from __future__ import annotations

import importlib.util
import time

from kafkaops.chaos.checker import check_share
from kafkaops.chaos.history import LogRecord
from kafkaops.chaos.members import Member, MemberWorkload
from kafkaops.chaos.target import ChaosCluster
from kafkaops.chaos.workload import Outcome
from kafkaops.serde.codec import JsonCodec
from kafkaops.waits import Deadline


class ShareMember(Member):
    """A TypedShareConsumer of the group (asking for the next record accepts the last)."""

    def consume(self) -> None:
        from kafkaops.clients.share_consumer import TypedShareConsumer

        with TypedShareConsumer(self.profile, self.topic, self.group, JsonCodec(), auto_offset_reset="earliest",
                                dead_letter=False) as consumer:
            while not self.stopping.is_set():
                r = consumer.poll(0.5)
                if r is not None:
                    self.deliver(r)


class ShareWorkload(MemberWorkload):
    """TypedProducer writers + a share group of 2 (at least once, per-record acknowledgement)."""

    name = "share"
    description = "TypedProducer + a share group of 2 TypedShareConsumers (KRaft, Kafka 4.x)"
    member_class = ShareMember

    @classmethod
    def unsupported(cls, cluster: ChaosCluster) -> str | None:
        if importlib.util.find_spec("kafkaops.clients.share_consumer") is None:
            return "not supported on this cluster: this kafkaops has no share consumer"
        if cluster.mode != "kraft":
            return "not supported on this cluster: share groups need a KRaft cluster (Kafka 4.x)"
        return None

    def drain(self, ends: dict[int, int], timeout: float) -> None:
        wanted = {(p, o) for p, end in ends.items() for o in range(end)}
        deadline = Deadline(timeout)
        while not deadline.expired and not self.member_errors():
            if wanted <= {(d.partition, d.offset) for d in self.deliveries()}:
                return
            time.sleep(0.5)

    def check_consumers(self, log: list[LogRecord], ends: dict[int, int]) -> Outcome:
        deliveries, figures = self.collect()
        return Outcome(check_share(deliveries, log), figures)
