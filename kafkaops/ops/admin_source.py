"""The replica monitor's Admin API source: cluster metadata polled from the brokers.

It works in any cluster mode. Every poll is one broker's metadata cache (whichever
broker librdkafka asks), so each view goes out tagged with the broker that answered:
the model compares a broker's views with that broker's earlier ones, never with
another broker's (see :mod:`kafkaops.ops.monitor_facts`). Topics'
``min.insync.replicas`` come from describe-configs, once per topic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaException

from kafkaops.admin import admin_client
from kafkaops.config import ClusterProfile
from kafkaops.ops.health import topic_min_isr
from kafkaops.ops.monitor_facts import ADMIN, FactSink, Facts, Key

log = logging.getLogger(__name__)


def answering_broker(md: Any) -> int | str | None:
    """Which broker's cache a metadata answer came from: its id, or for a bootstrap
    connection (no id yet) the id listed at its address, else the connection's name."""
    if md.orig_broker_id >= 0:
        return int(md.orig_broker_id)
    name = str(md.orig_broker_name or "")
    address = name.rsplit("://", 1)[-1].split("/", 1)[0]
    for b in md.brokers.values():
        if f"{b.host}:{b.port}" == address:
            return int(b.id)
    return name or None


class AdminSource:
    """Polls metadata every ``poll_interval`` seconds on a thread of its own."""

    def __init__(
        self,
        profile: ClusterProfile,
        sink: FactSink,
        *,
        poll_interval: float,
        timeout: float,
        known_brokers: Iterable[int] = (),
        alone: bool = True,
    ) -> None:
        self.profile = profile
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.alone = alone
        """True when no other source can give the first view: then a failed first poll fails the start."""
        self._sink = sink
        self._seen_brokers = set(known_brokers)
        self._min_isr: dict[str, int] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._ok = False

    def start(self, first_timeout: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(first_timeout,), name="replica-monitor-admin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)  # a poll blocked on a dead broker ends on its own (daemon)

    def _run(self, first_timeout: float) -> None:
        admin = admin_client(self.profile)
        ready = False
        while not self._stopped.is_set():
            try:
                md = admin.list_topics(timeout=self.timeout if ready else min(self.timeout, first_timeout))
            except KafkaException as exc:
                if not ready and self.alone:
                    self._sink.fail(f"cannot read metadata from {self.profile.bootstrap_servers}: {exc.args[0].str()}")
                    return
                if self._ok or not ready:
                    log.warning("replica monitor: metadata from %s failed: %s", self.profile.bootstrap_servers, exc)
                self._ok = False
                if not ready:  # do not hold start-up hostage: ZooKeeper can carry on
                    ready = True
                    self._sink.put(Facts(ADMIN, ready=True))
                self._stopped.wait(self.poll_interval)
                continue
            self._ok = True
            if md.brokers:  # a broker that just started answers from an empty cache: no view
                self._sink.put(self._view(md, admin, first=not ready))
                ready = True
            self._stopped.wait(self.poll_interval)

    def _view(self, md: Any, admin: Any, first: bool) -> Facts:
        new_topics = [t for t in md.topics if t not in self._min_isr]
        if new_topics:
            self._min_isr.update(topic_min_isr(admin, new_topics, self.timeout))
        facts: list[tuple[Key, Any]] = []
        live = {b.id for b in md.brokers.values()}
        for b in md.brokers.values():
            facts.append((("addr", b.id), (str(b.host), int(b.port))))
        for name, t in md.topics.items():
            if name in self._min_isr:
                facts.append((("min_isr", name), self._min_isr[name]))
            for p in t.partitions.values():
                self._seen_brokers.update(p.replicas)
                facts.append((("replicas", name, p.id), tuple(p.replicas)))
                facts.append((("state", name, p.id), (int(p.leader), tuple(sorted(p.isrs)))))
        self._seen_brokers |= live
        facts += [(("broker", b), b in live) for b in sorted(self._seen_brokers)]
        facts.append((("controller",), md.controller_id if md.controller_id >= 0 else None))
        return Facts(ADMIN, facts, origin=answering_broker(md), ready=first)
