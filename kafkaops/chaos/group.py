"""The main workload: writers plus a consumer group of TypedConsumers (two member threads,
cooperative-sticky), each recording what it got and in which ownership of the partition."""

from __future__ import annotations

import itertools
import time

from kafkaops.chaos.checker import check_group
from kafkaops.chaos.history import LogRecord
from kafkaops.chaos.members import Member, MemberWorkload
from kafkaops.chaos.workload import Outcome
from kafkaops.clients.consumer import TypedConsumer
from kafkaops.serde.codec import JsonCodec
from kafkaops.types import TP
from kafkaops.waits import Deadline

_segments = itertools.count(1)


class GroupMember(Member):
    """A TypedConsumer of the group; every assignment of a partition starts a new segment."""

    segment: dict[int, int]

    def _assigned(self, tps: list[TP]) -> None:
        for _, p in tps:
            self.segment[p] = next(_segments)

    def _revoked(self, tps: list[TP]) -> None:
        for _, p in tps:
            self.segment.pop(p, None)

    def consume(self) -> None:
        self.segment = {}
        with TypedConsumer(self.profile, self.topic, self.group, JsonCodec(), on_assign=self._assigned,
                           on_revoke=self._revoked, dead_letter=False) as consumer:
            while not self.stopping.is_set():
                r = consumer.poll(0.5)
                if r is not None:
                    self.deliver(r, self.segment.get(r.partition, 0))


class GroupWorkload(MemberWorkload):
    """TypedProducer writers + a TypedConsumer group (at least once, ordered per partition)."""

    name = "group"
    description = "TypedProducer (acks=all, idempotent) + a TypedConsumer group of 2"
    member_class = GroupMember

    def drain(self, ends: dict[int, int], timeout: float) -> None:
        deadline = Deadline(timeout)
        while not deadline.expired and not self.member_errors():
            top: dict[int, int] = {}
            for d in self.deliveries():
                top[d.partition] = max(top.get(d.partition, -1), d.offset)
            if all(top.get(p, -1) >= end - 1 for p, end in ends.items()):
                return
            time.sleep(0.2)

    def check_consumers(self, log: list[LogRecord], ends: dict[int, int]) -> Outcome:
        deliveries, figures = self.collect()
        return Outcome(check_group(deliveries, log), figures)
