"""ReplicaMonitor: broker and partition health from ZooKeeper watches and Admin API polls.

Two sources feed one model:

- **ZooKeeper** (``zk_connect`` with the brokers' chroot, e.g. ``host:2181/kafka``):
  kazoo watches on ``/brokers/ids`` (children: live brokers), ``/controller``,
  ``/brokers/topics`` and each topic's assignment and partition ``state`` znodes.
  In ZooKeeper mode this is where a change shows first: a SIGKILLed broker's
  ephemeral znode goes when its session times out, and the controller writes the
  shrunk ISRs there before telling any broker.
- **Admin API** (``bootstrap_servers``): metadata polled every ``poll_interval``
  seconds, and topics' ``min.insync.replicas``; works in any cluster mode.

Sources never emit events. They deliver *facts* (a broker's liveness, the
controller, a partition's replicas, its leader and ISR) to one worker thread,
which merges them into the model and diffs the previous and the new
:class:`~kafkaops.ops.health.ClusterHealth` into events
(:func:`~kafkaops.ops.events.diff_health`). Each change therefore yields its
events exactly once, whichever source saw it first. Merge rule: ZooKeeper is
authoritative for the facts it watches while its session is connected (the
brokers themselves learn these facts from ZooKeeper, so Admin metadata can only
lag behind it); Admin facts fill the gaps at once (facts ZooKeeper does not
watch, or everything when ZooKeeper is not configured or disconnected), and
change a known fact only when two polls in a row agree, so brokers whose
metadata caches briefly disagree cannot make the model flap.

Kazoo watch callbacks only enqueue; all reads and watch set-up happen on the
monitor's worker thread. Subscribers get events by callback (called on the
worker thread: keep them short) or by iterator (:meth:`ReplicaMonitor.events`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from kafkaops.admin import admin_client
from kafkaops.errors import KafkaopsError
from kafkaops.ops.events import Event, diff_health
from kafkaops.ops.health import DEFAULT_MIN_ISR, ClusterHealth, build_health, topic_min_isr

log = logging.getLogger(__name__)

ZOOKEEPER = "zookeeper"
ADMIN = "admin"

Key = tuple[Any, ...]
"""A fact's key: ("broker", id) -> bool, ("addr", id) -> (host, port), ("controller",) -> id|None,
("replicas", topic, p) -> tuple, ("state", topic, p) -> (leader, sorted isr), ("min_isr", topic) -> int."""


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""A fact that a source saw disappear (a deleted topic)."""

_MISSING: Any = object()


class MonitorError(KafkaopsError):
    """The monitor could not start (no source configured or reachable)."""


@dataclass
class _Facts:
    source: str
    facts: list[tuple[Key, Any]]
    full_view: bool = False  # an Admin poll: every fact of the cluster, for the confirmation rule


class EventStream:
    """An iterator over a monitor's events from the moment it was opened.

    Iteration blocks until the next event and ends when the stream is closed or
    the monitor stops; :meth:`get` waits at most ``timeout`` seconds.
    """

    _END: Any = object()

    def __init__(self, on_close: Callable[[EventStream], None]) -> None:
        self._q: queue.Queue[Any] = queue.Queue()
        self._on_close = on_close
        self.closed = False

    def _put(self, event: Event) -> None:
        self._q.put(event)

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or when the stream ended."""
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._END:
            self._q.put(item)
            return None
        assert isinstance(item, Event)
        return item

    def __iter__(self) -> Iterator[Event]:
        while True:
            item = self._q.get()
            if item is self._END:
                self._q.put(item)
                return
            yield item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close(self)
            self._q.put(self._END)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplicaMonitor:
    """Watches brokers, controller and partition replication; emits typed events.

    >>> with ReplicaMonitor("127.0.0.1:9092", zk_connect="127.0.0.1:2181/kafka") as mon:
    ...     print(mon.snapshot().counts.under_replicated)
    ...     for event in mon.events():
    ...         print(event.to_json())
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        zk_connect: str | None = None,
        *,
        poll_interval: float = 1.0,
        admin_timeout: float = 10.0,
        zk_timeout: float = 10.0,
        known_brokers: Iterable[int] = (),
        default_min_isr: int = DEFAULT_MIN_ISR,
        history: int = 500,
    ) -> None:
        if not bootstrap_servers and not zk_connect:
            raise MonitorError("the monitor needs bootstrap servers, a ZooKeeper connect string, or both")
        if poll_interval <= 0:
            raise MonitorError(f"the poll interval must be > 0 seconds, not {poll_interval}")
        self.bootstrap_servers = bootstrap_servers
        self.zk_connect = zk_connect
        self.poll_interval = poll_interval
        self.admin_timeout = admin_timeout
        self.zk_timeout = zk_timeout
        self.default_min_isr = default_min_isr
        self._known = set(known_brokers)
        self._q: queue.Queue[Any] = queue.Queue()
        self._facts: dict[Key, Any] = {}
        self._zk_view: dict[Key, Any] = {}
        self._admin_prev: dict[Key, Any] = {}
        self._zk_connected = False
        self._health: ClusterHealth | None = None
        self._cond = threading.Condition()
        self._subscribers: list[Callable[[Event], None]] = []
        self._streams: list[EventStream] = []
        self._history: deque[Event] = deque(maxlen=history)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._zk: Any = None
        self._zk_topics: set[str] = set()
        self._zk_partitions: dict[str, set[int]] = {}
        self._zk_ready = zk_connect is None
        self._admin_ready = bootstrap_servers is None
        self._admin_ok = False
        self._min_isr_cache: dict[str, int] = {}
        self._start_error: str | None = None
        self._start_timeout = 30.0
        self.events_emitted = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30.0) -> ReplicaMonitor:
        """Connect the sources and wait until the first full model is built."""
        self._start_timeout = timeout
        worker = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
        self._threads.append(worker)
        worker.start()
        if self.zk_connect:
            try:
                self._start_zookeeper(min(self.zk_timeout, timeout))
            except MonitorError:
                self.stop()
                raise
        if self.bootstrap_servers:
            poller = threading.Thread(target=self._poll_admin, name="replica-monitor-admin", daemon=True)
            self._threads.append(poller)
            poller.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._health is None:
                left = deadline - time.monotonic()
                if self._start_error is not None:
                    self.stop()
                    raise MonitorError(self._start_error)
                if left <= 0:
                    self.stop()
                    raise MonitorError(
                        f"no cluster view after {timeout:.0f}s from "
                        + " and ".join(s for s in (self.bootstrap_servers, self.zk_connect) if s)
                    )
                self._cond.wait(min(left, 0.2))
        return self

    def stop(self) -> None:
        """Stop sources and worker; open event streams end."""
        self._stop.set()
        self._q.put(None)
        if self._zk is not None:
            try:
                self._zk.stop()
                self._zk.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
        for t in self._threads:  # daemon threads: a poll blocked on a dead broker ends on its own
            if t is not threading.current_thread():
                t.join(timeout=2.0)
        for s in list(self._streams):
            s.close()

    def __enter__(self) -> ReplicaMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> ClusterHealth:
        """The current model (immutable)."""
        with self._cond:
            if self._health is None:
                raise MonitorError("the monitor has not started")
            return self._health

    def recent_events(self, n: int | None = None) -> list[Event]:
        with self._cond:
            items = list(self._history)
        return items if n is None else items[-n:]

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (on the worker thread); returns an unsubscribe."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def events(self) -> EventStream:
        """An iterator over every event from now on (see :class:`EventStream`)."""
        stream = EventStream(self._close_stream)
        with self._cond:
            self._streams.append(stream)
        if self._stop.is_set():
            stream.close()
        return stream

    def _close_stream(self, stream: EventStream) -> None:
        with self._cond:
            if stream in self._streams:
                self._streams.remove(stream)

    def wait_for(self, predicate: Callable[[ClusterHealth], bool], timeout: float) -> ClusterHealth:
        """Block until ``predicate(snapshot)`` holds; raises MonitorError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._health is not None and predicate(self._health):
                    return self._health
                left = deadline - time.monotonic()
                if left <= 0:
                    last = self._health.counts if self._health is not None else None
                    raise MonitorError(f"condition not reached in {timeout:.0f}s; partitions: {last}")
                self._cond.wait(min(left, 0.5))

    @property
    def zookeeper_connected(self) -> bool:
        return self._zk_connected

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._q.get()
            batch = [item]
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            changed: dict[Key, str] = {}
            for it in batch:
                if it is None:
                    continue
                try:
                    if isinstance(it, _Facts):
                        self._merge(it, changed)
                    else:
                        it(changed)  # a ZooKeeper task: runs reads / sets watches here
                except Exception:  # noqa: BLE001 - keep monitoring whatever one item did
                    log.exception("replica monitor: cannot process %r", it)
            if self._q.qsize() and not self._ready():
                continue  # still loading the first view: fold it into one snapshot
            self._publish(changed)

    def _ready(self) -> bool:
        return self._zk_ready and self._admin_ready

    def _merge(self, upd: _Facts, changed: dict[Key, str]) -> None:
        if upd.source == ZOOKEEPER:
            for key, value in upd.facts:
                self._zk_view[key] = value
                if self._zk_connected:
                    self._set(key, value, ZOOKEEPER, changed)
            return
        zk_rules = self.zk_connect is not None and self._zk_connected
        current = dict(upd.facts)
        for key, value in upd.facts:
            if zk_rules and key in self._zk_view:
                continue  # ZooKeeper is authoritative for what it watches
            have = self._facts.get(key, _MISSING)
            if have is _MISSING:
                if value is not ABSENT:
                    self._set(key, value, ADMIN, changed)
            elif have != value and self._admin_prev.get(key, _MISSING) == value:
                self._set(key, value, ADMIN, changed)  # confirmed by two polls in a row
        if upd.full_view:
            self._admin_prev = current

    def _set(self, key: Key, value: Any, source: str, changed: dict[Key, str]) -> None:
        if value is ABSENT:
            if key in self._facts:
                del self._facts[key]
                changed[key] = source
        elif self._facts.get(key, _MISSING) != value:
            self._facts[key] = value
            changed[key] = source

    def _build(self) -> ClusterHealth:
        live: dict[int, tuple[str | None, int | None]] = {}
        known: set[int] = set(self._known)
        controller = None
        rows = []
        mins: dict[str, int] = {}
        addresses: dict[int, tuple[str | None, int | None]] = {}
        for key, value in self._facts.items():
            kind = key[0]
            if kind == "addr":
                addresses[key[1]] = value
            elif kind == "broker":
                known.add(key[1])
                if value:
                    live[key[1]] = self._facts.get(("addr", key[1]), (None, None))
            elif kind == "controller":
                controller = value
            elif kind == "min_isr":
                mins[key[1]] = value
            elif kind == "replicas":
                state = self._facts.get(("state", key[1], key[2]))
                if state is not None:
                    rows.append((key[1], key[2], state[0], value, state[1]))
        for topic in {r[0] for r in rows} - set(mins):
            mins[topic] = self.default_min_isr
        return build_health(live, controller, rows, mins, known, addresses=addresses)

    def _publish(self, changed: dict[Key, str]) -> None:
        if not self._ready():
            return
        with self._cond:
            first = self._health is None
            if not first and not changed:
                return
        new = self._build()
        sources: dict[Key, str] = {}
        for key, src in changed.items():
            if key[0] == "broker":
                sources[("broker", key[1])] = src
            elif key[0] == "controller":
                sources[("controller",)] = src
            elif key[0] in ("replicas", "state"):
                sources.setdefault(("partition", key[1], key[2]), src)
        with self._cond:
            events = diff_health(self._health, new, sources=sources)
            self._health = new
            self._history.extend(events)
            self.events_emitted += len(events)
            subscribers = list(self._subscribers)
            streams = list(self._streams)
            self._cond.notify_all()
        for event in events:
            log.info("%s (%s)", event.describe(), event.source)
            for stream in streams:
                stream._put(event)
            for cb in subscribers:
                try:
                    cb(event)
                except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the monitor
                    log.exception("replica monitor subscriber %r failed on %s", cb, event.type)

    # ------------------------------------------------------------------ ZooKeeper source
    def _start_zookeeper(self, timeout: float) -> None:
        from kazoo.client import KazooClient, KazooState
        from kazoo.handlers.threading import KazooTimeoutError
        from kazoo.recipe.watchers import ChildrenWatch, DataWatch

        zk = KazooClient(hosts=self.zk_connect, timeout=self.zk_timeout)

        def on_state(state: str) -> None:  # kazoo thread: only flag and enqueue
            connected = state == KazooState.CONNECTED
            if connected and not self._zk_connected:
                self._q.put(self._zk_reconnected)
            self._zk_connected = connected
            if not connected and not self._stop.is_set():
                log.warning("replica monitor: ZooKeeper session %s; Admin API polls take over", state)

        zk.add_listener(on_state)
        try:
            zk.start(timeout=timeout)
        except KazooTimeoutError as exc:
            zk.stop()
            zk.close()
            raise MonitorError(f"ZooKeeper at {self.zk_connect} not reachable: {exc}") from None
        self._zk = zk
        self._zk_connected = True

        def on_ids(children: list[str]) -> bool | None:
            if self._stop.is_set():
                return False
            self._q.put(lambda changed: self._zk_brokers(children, changed))
            return None

        def on_controller(data: bytes | None, _stat: Any) -> bool | None:
            if self._stop.is_set():
                return False
            cid = None
            if data:
                try:
                    cid = int(json.loads(data)["brokerid"])
                except (ValueError, KeyError, TypeError):
                    log.warning("replica monitor: unreadable /controller znode %r", data)
            self._q.put(_Facts(ZOOKEEPER, [(("controller",), cid)]))
            return None

        def on_topics(children: list[str]) -> bool | None:
            if self._stop.is_set():
                return False
            self._q.put(lambda changed: self._zk_topics_changed(children, DataWatch))
            return None

        ChildrenWatch(zk, "/brokers/ids", on_ids)
        DataWatch(zk, "/controller", on_controller)
        ChildrenWatch(zk, "/brokers/topics", on_topics)
        # the topic watches are set up on the worker thread; mark ready once that queue drains
        self._q.put(self._zk_initial_done)

    def _zk_initial_done(self, changed: dict[Key, str]) -> None:
        if self._q.qsize():
            self._q.put(self._zk_initial_done)  # state reads of new topics are still queued
        else:
            self._zk_ready = True

    def _zk_reconnected(self, changed: dict[Key, str]) -> None:
        """Re-apply ZooKeeper's view (it is authoritative again after a disconnect)."""
        for key, value in list(self._zk_view.items()):
            self._set(key, value, ZOOKEEPER, changed)

    def _zk_brokers(self, children: list[str], changed: dict[Key, str]) -> None:
        ids = {int(c) for c in children if c.isdigit()}
        facts: list[tuple[Key, Any]] = []
        for bid in ids:
            if ("addr", bid) not in self._zk_view:
                addr = self._zk_broker_addr(bid)
                if addr is not None:
                    facts.append((("addr", bid), addr))
        known = {k[1] for k in self._facts if k[0] == "broker"} | {k[1] for k in self._zk_view if k[0] == "broker"}
        for bid in known | ids:
            facts.append((("broker", bid), bid in ids))
        self._merge(_Facts(ZOOKEEPER, facts), changed)

    def _zk_broker_addr(self, bid: int) -> tuple[str, int] | None:
        from kazoo.exceptions import NoNodeError

        try:
            data, _ = self._zk.get(f"/brokers/ids/{bid}")
            doc = json.loads(data)
            return (str(doc["host"]), int(doc["port"]))
        except (NoNodeError, ValueError, KeyError, TypeError):
            return None

    def _zk_topics_changed(self, children: list[str], data_watch: Any) -> None:
        now = set(children)
        for topic in sorted(now - self._zk_topics):
            self._zk_topics.add(topic)
            self._zk_partitions[topic] = set()
            data_watch(self._zk, f"/brokers/topics/{topic}", self._assignment_callback(topic, data_watch))
        for topic in sorted(self._zk_topics - now):
            self._zk_topics.discard(topic)
            gone = self._zk_partitions.pop(topic, set())
            facts: list[tuple[Key, Any]] = []
            for p in gone:
                facts += [(("replicas", topic, p), ABSENT), (("state", topic, p), ABSENT)]
            self._q.put(_Facts(ZOOKEEPER, facts))

    def _assignment_callback(self, topic: str, data_watch: Any) -> Callable[[bytes | None, Any], bool | None]:
        def on_assignment(data: bytes | None, _stat: Any) -> bool | None:
            if self._stop.is_set() or topic not in self._zk_topics:
                return False
            if data is None:
                return None
            try:
                parts = {int(p): tuple(int(b) for b in r) for p, r in json.loads(data)["partitions"].items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("replica monitor: unreadable assignment of topic %s: %r", topic, data)
                return None
            self._q.put(lambda changed: self._zk_assignment(topic, parts, data_watch, changed))
            return None

        return on_assignment

    def _zk_assignment(self, topic: str, parts: dict[int, tuple[int, ...]], data_watch: Any, changed: dict[Key, str]) -> None:
        known = self._zk_partitions.get(topic)
        if known is None:
            return  # deleted meanwhile
        facts: list[tuple[Key, Any]] = [(("replicas", topic, p), r) for p, r in parts.items()]
        self._merge(_Facts(ZOOKEEPER, facts), changed)
        for p in sorted(set(parts) - known):
            known.add(p)
            data_watch(self._zk, f"/brokers/topics/{topic}/partitions/{p}/state", self._state_callback(topic, p))

    def _state_callback(self, topic: str, partition: int) -> Callable[[bytes | None, Any], bool | None]:
        def on_state(data: bytes | None, _stat: Any) -> bool | None:
            if self._stop.is_set() or topic not in self._zk_topics:
                return False
            if data is None:
                return None  # not created yet: the watch fires when it is
            try:
                doc = json.loads(data)
                value = (int(doc["leader"]), tuple(sorted(int(b) for b in doc["isr"])))
            except (ValueError, KeyError, TypeError):
                log.warning("replica monitor: unreadable state of %s[%d]: %r", topic, partition, data)
                return None
            self._q.put(_Facts(ZOOKEEPER, [(("state", topic, partition), value)]))
            return None

        return on_state

    # ------------------------------------------------------------------ Admin source
    def _poll_admin(self) -> None:
        assert self.bootstrap_servers
        admin = admin_client(self.bootstrap_servers)
        seen_brokers: set[int] = set(self._known)
        seen_parts: set[tuple[str, int]] = set()
        while not self._stop.is_set():
            first = not self._admin_ready
            try:
                md = admin.list_topics(timeout=min(self.admin_timeout, self._start_timeout) if first else self.admin_timeout)
            except KafkaException as exc:
                if first and not self.zk_connect:
                    self._start_error = f"cannot read metadata from {self.bootstrap_servers}: {exc.args[0].str()}"
                    return
                if self._admin_ok or not self._admin_ready:
                    log.warning("replica monitor: metadata from %s failed: %s", self.bootstrap_servers, exc)
                self._admin_ok = False
                if self.zk_connect:
                    self._admin_ready = True  # do not hold start-up hostage: ZooKeeper can carry on
                self._stop.wait(self.poll_interval)
                continue
            self._admin_ok = True
            new_topics = [t for t in md.topics if t not in self._min_isr_cache]
            if new_topics:
                self._min_isr_cache.update(topic_min_isr(admin, new_topics, self.admin_timeout))
            facts: list[tuple[Key, Any]] = []
            live = {b.id for b in md.brokers.values()}
            for b in md.brokers.values():
                facts.append((("addr", b.id), (str(b.host), int(b.port))))
            parts_now: set[tuple[str, int]] = set()
            for name, t in md.topics.items():
                if name in self._min_isr_cache:
                    facts.append((("min_isr", name), self._min_isr_cache[name]))
                for p in t.partitions.values():
                    parts_now.add((name, p.id))
                    seen_brokers.update(p.replicas)
                    facts.append((("replicas", name, p.id), tuple(p.replicas)))
                    facts.append((("state", name, p.id), (int(p.leader), tuple(sorted(p.isrs)))))
            for tp in seen_parts - parts_now:
                facts += [(("replicas", *tp), ABSENT), (("state", *tp), ABSENT)]
            seen_parts = parts_now
            seen_brokers |= live
            facts += [(("broker", b), b in live) for b in sorted(seen_brokers)]
            facts.append((("controller",), md.controller_id if md.controller_id >= 0 else None))
            self._q.put(_Facts(ADMIN, facts, full_view=True))
            self._q.put(self._admin_first_done)
            self._stop.wait(self.poll_interval)

    def _admin_first_done(self, changed: dict[Key, str]) -> None:
        self._admin_ready = True


def format_event_line(event: Event) -> str:
    """One JSON line for an event (what ``kafkaops monitor --events`` prints)."""
    return json.dumps(event.to_json(), sort_keys=False)
