"""The replica monitor's ZooKeeper source: Kafka's own znodes, watched through a Coordinator.

In ZooKeeper mode this is where a change shows first: a SIGKILLed broker's ephemeral
``/brokers/ids/<id>`` goes when its session times out, and the controller writes shrunk
ISRs to the partitions' ``state`` znodes before telling any broker. Watches (kazoo's
ChildrenWatch and DataWatch) on ``<kafka_chroot>/brokers/ids``, ``/controller``,
``/brokers/topics`` and each topic's assignment and partition states run on the
Coordinator's session, which other parts of the process share: the watch callbacks
only queue work, and once the source is stopped they return False, which ends them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kazoo.exceptions import KazooException, NoNodeError
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from kafkaops.coord.session import Coordinator, CoordinatorError
from kafkaops.errors import KafkaopsError
from kafkaops.ops.monitor_facts import ABSENT, ZOOKEEPER, FactSink, Facts, Key

log = logging.getLogger(__name__)

RESYNC_RETRY = 1.0
"""Seconds between attempts to re-read the znodes after a reconnect, while reads fail."""


class ZooKeeperSourceError(KafkaopsError):
    """The brokers' znodes cannot be read (wrong chroot, no access, ZooKeeper down)."""


def parse_controller(data: bytes | None) -> int | None:
    """The broker id in ``/controller`` (None: no controller)."""
    if not data:
        return None
    try:
        return int(json.loads(data)["brokerid"])
    except (ValueError, KeyError, TypeError):
        log.warning("replica monitor: unreadable /controller znode %r", data)
        return None


def parse_assignment(data: bytes) -> dict[int, tuple[int, ...]] | None:
    """Replicas per partition from a ``/brokers/topics/<topic>`` znode."""
    try:
        return {int(p): tuple(int(b) for b in r) for p, r in json.loads(data)["partitions"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def parse_state(data: bytes) -> tuple[int, tuple[int, ...]] | None:
    """(leader, sorted ISR) from a partition's ``state`` znode."""
    try:
        doc = json.loads(data)
        return (int(doc["leader"]), tuple(sorted(int(b) for b in doc["isr"])))
    except (ValueError, KeyError, TypeError):
        return None


class ZooKeeperSource:
    """Brokers, controller and partition states from the znodes under ``kafka_chroot``."""

    def __init__(self, coordinator: Coordinator, kafka_chroot: str, sink: FactSink) -> None:
        self.coordinator = coordinator
        self.kafka_chroot = kafka_chroot
        self._prefix = "" if kafka_chroot == "/" else kafka_chroot
        self._sink = sink
        self._stopped = threading.Event()
        self._disconnected = False
        self._live: set[int] = set()
        self._topics: set[str] = set()
        self._partitions: dict[str, set[int]] = {}

    @property
    def connected(self) -> bool:
        return not self._disconnected and not self._stopped.is_set()

    def _path(self, *parts: str) -> str:
        return "/".join([self._prefix, *parts])

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Set the watches (their first reads queue the initial view); raises
        ZooKeeperSourceError when the brokers' znodes are not there."""
        ids = self._path("brokers", "ids")
        try:
            client = self.coordinator.client
            if self.coordinator.retry(client.exists, ids) is None:
                raise ZooKeeperSourceError(
                    f"no {ids} in ZooKeeper at {self.coordinator.hosts}: is {self.kafka_chroot!r} the brokers' chroot? "
                    "(a KRaft cluster keeps no brokers in ZooKeeper: give no chroot, kafka_chroot: null)"
                )
            self.coordinator.add_listener(self._on_state)
            if not self.coordinator.writable:  # the shared session is suspended right now
                self._on_state("SUSPENDED")
            ChildrenWatch(client, ids, self._children_callback(self._brokers))
            DataWatch(client, self._path("controller"), self._on_controller)
            ChildrenWatch(client, self._path("brokers", "topics"), self._children_callback(self._topics_changed))
        except (KazooException, CoordinatorError) as exc:
            raise ZooKeeperSourceError(f"cannot read {ids} in ZooKeeper at {self.coordinator.hosts}: {exc!r}") from None
        # the topic watches are set up on the worker thread; ready once that work is done
        self._sink.put(self._initial_done)

    def stop(self) -> None:
        """Stop delivering; the watches end at their next event (the session is shared)."""
        self._stopped.set()
        self.coordinator.remove_listener(self._on_state)

    def _initial_done(self) -> list[Facts]:
        if not self._sink.idle():
            self._sink.put(self._initial_done)  # state reads of new topics are still queued
            return []
        return [Facts(ZOOKEEPER, ready=True)]

    # ------------------------------------------------------------------ connection state
    def _on_state(self, state: str) -> None:  # kazoo's connection thread: flag and queue only
        if self._stopped.is_set():
            return
        if state == "CONNECTED":
            if self._disconnected:
                self._disconnected = False
                self._sink.put(self._resync)
        elif not self._disconnected:
            self._disconnected = True
            log.warning("replica monitor: ZooKeeper session %s; Admin API polls take over", state)
            self._sink.put(Facts(ZOOKEEPER, connected=False))

    def _resync(self) -> list[Facts]:
        """After a reconnect: read every watched znode afresh (ZooKeeper is authoritative again)."""
        if self._stopped.is_set() or self._disconnected:
            return []
        client = self.coordinator.client
        facts: list[tuple[Key, Any]] = []
        try:
            ids = self._read_ids(self.coordinator.retry(client.get_children, self._path("brokers", "ids")))
            facts += self._addresses(ids - self._live)
            facts.append((("controller",), parse_controller(self._get(self._path("controller")))))
            for topic in sorted(self._topics):
                data = self._get(self._path("brokers", "topics", topic))
                parts = parse_assignment(data) if data else None
                known = self._partitions.get(topic, set())
                facts += [(("replicas", topic, p), r) for p, r in (parts or {}).items() if p in known]
                for p in sorted(known):
                    data = self._get(self._path("brokers", "topics", topic, "partitions", str(p), "state"))
                    state = parse_state(data) if data else None
                    if state is not None:
                        facts.append((("state", topic, p), state))
        except (KazooException, CoordinatorError) as exc:
            log.warning("replica monitor: cannot re-read ZooKeeper after reconnecting (%r); retrying", exc)
            timer = threading.Timer(RESYNC_RETRY, self._requeue_resync)
            timer.daemon = True
            timer.start()
            return []
        self._live = ids
        log.info("replica monitor: ZooKeeper session back; view re-read")
        return [Facts(ZOOKEEPER, facts, live_brokers=frozenset(ids), connected=True)]

    def _requeue_resync(self) -> None:
        if not self._stopped.is_set():
            self._sink.put(self._resync)

    def _get(self, path: str) -> bytes | None:
        try:
            data, _ = self.coordinator.retry(self.coordinator.client.get, path)
            return bytes(data)
        except NoNodeError:
            return None

    # ------------------------------------------------------------------ brokers and controller
    def _children_callback(self, task: Callable[[list[str]], list[Facts]]) -> Callable[[list[str]], bool | None]:
        """A ChildrenWatch callback (kazoo's thread) that queues ``task(children)`` for the worker."""
        def on_children(children: list[str]) -> bool | None:
            if self._stopped.is_set():
                return False
            self._sink.put(lambda: task(children))
            return None

        return on_children

    def _brokers(self, children: list[str]) -> list[Facts]:
        ids = self._read_ids(children)
        facts = self._addresses(ids - self._live)  # (re)registered brokers: read their endpoints
        self._live = ids
        return [Facts(ZOOKEEPER, facts, live_brokers=frozenset(ids))]

    @staticmethod
    def _read_ids(children: list[str]) -> set[int]:
        return {int(c) for c in children if c.isdigit()}

    def _addresses(self, ids: set[int]) -> list[tuple[Key, Any]]:
        facts: list[tuple[Key, Any]] = []
        for bid in sorted(ids):
            data = self._get(self._path("brokers", "ids", str(bid)))
            try:
                doc = json.loads(data or b"")
                facts.append((("addr", bid), (str(doc["host"]), int(doc["port"]))))
            except (ValueError, KeyError, TypeError):
                log.debug("replica monitor: no endpoint for broker %d", bid)
        return facts

    def _on_controller(self, data: bytes | None, _stat: Any) -> bool | None:
        if self._stopped.is_set():
            return False
        self._sink.put(Facts(ZOOKEEPER, [(("controller",), parse_controller(data))]))
        return None

    # ------------------------------------------------------------------ topics and partitions
    def _topics_changed(self, children: list[str]) -> list[Facts]:
        now = set(children)
        for topic in sorted(now - self._topics):
            self._topics.add(topic)
            self._partitions[topic] = set()
            DataWatch(self.coordinator.client, self._path("brokers", "topics", topic), self._assignment_callback(topic))
        facts: list[tuple[Key, Any]] = []
        for topic in sorted(self._topics - now):
            self._topics.discard(topic)
            for p in self._partitions.pop(topic, set()):
                facts += [(("replicas", topic, p), ABSENT), (("state", topic, p), ABSENT)]
        return [Facts(ZOOKEEPER, facts)] if facts else []

    def _assignment_callback(self, topic: str) -> Callable[[bytes | None, Any], bool | None]:
        def on_assignment(data: bytes | None, _stat: Any) -> bool | None:
            if self._stopped.is_set() or topic not in self._topics:
                return False
            if data is None:
                return None
            parts = parse_assignment(data)
            if parts is None:
                log.warning("replica monitor: unreadable assignment of topic %s: %r", topic, data)
                return None
            self._sink.put(lambda: self._assignment(topic, parts))
            return None

        return on_assignment

    def _assignment(self, topic: str, parts: dict[int, tuple[int, ...]]) -> list[Facts]:
        known = self._partitions.get(topic)
        if known is None:
            return []  # deleted meanwhile
        for p in sorted(set(parts) - known):
            known.add(p)
            path = self._path("brokers", "topics", topic, "partitions", str(p), "state")
            DataWatch(self.coordinator.client, path, self._state_callback(topic, p))
        return [Facts(ZOOKEEPER, [(("replicas", topic, p), r) for p, r in parts.items()])]

    def _state_callback(self, topic: str, partition: int) -> Callable[[bytes | None, Any], bool | None]:
        def on_state(data: bytes | None, _stat: Any) -> bool | None:
            if self._stopped.is_set() or topic not in self._topics:
                return False
            if data is None:
                return None  # not created yet: the watch fires when it is
            state = parse_state(data)
            if state is None:
                log.warning("replica monitor: unreadable state of %s[%d]: %r", topic, partition, data)
                return None
            self._sink.put(Facts(ZOOKEEPER, [(("state", topic, partition), state)]))
            return None

        return on_state
