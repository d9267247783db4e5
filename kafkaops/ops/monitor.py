"""ReplicaMonitor: broker and partition health from ZooKeeper watches, the KRaft quorum and
Admin API polls.

The sources feed one model:

- **ZooKeeper** (:mod:`kafkaops.ops.zk_source`): watches on the brokers' znodes under
  their chroot (``/kafka/brokers/ids``, ``/kafka/controller``, partition ``state``
  znodes), read through the process's :class:`~kafkaops.coord.session.Coordinator`
  session. In ZooKeeper mode this is where a change shows first.
- **KRaft quorum** (:mod:`kafkaops.ops.quorum_source`): on a KRaft cluster, the active
  controller (the metadata quorum's leader, from DescribeQuorum), polled.
- **Admin API** (:mod:`kafkaops.ops.admin_source`): metadata polled every
  ``poll_interval`` seconds, and topics' ``min.insync.replicas``; any cluster mode.

The mode decides the sources: a profile whose ZooKeeper names the brokers' chroot (or
``zk_connect`` with one) is ZooKeeper mode (ZooKeeper + Admin); a profile with a
ZooKeeper but no chroot is KRaft (quorum + Admin: the ZooKeeper beside a KRaft cluster
holds no broker znodes); a bare bootstrap string is asked (DescribeQuorum) at start.

Sources deliver facts to one worker thread, which merges them into the model
(:class:`~kafkaops.ops.monitor_facts.FactModel`, where the merge rules live) and
diffs the previous and the new :class:`~kafkaops.ops.health.ClusterHealth` into
events (:func:`~kafkaops.ops.events.diff_health`). Each change therefore yields its
events exactly once, whichever source saw it first. Kazoo watch callbacks only
enqueue; reads and watch set-up happen on the worker thread. Between the model and
publication a settle stage (:mod:`kafkaops.ops.settle`) holds back transient leaderless
states. Subscribers get events by callback (called on the worker thread, or the lag
tracker's: keep them short) or by iterator (:meth:`ReplicaMonitor.events`).
:meth:`ReplicaMonitor.track_lag` adds consumer-group lag judgements
(:mod:`kafkaops.ops.lag_tracker`) to the same event stream.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace

from kafkaops.config import ClusterProfile, ZooKeeperSettings, as_profile
from kafkaops.coord.session import Coordinator, CoordinatorError
from kafkaops.errors import ConfigError, KafkaopsError
from kafkaops.ops.admin_source import AdminSource
from kafkaops.ops.events import Event, diff_health
from kafkaops.ops.health import DEFAULT_MIN_ISR, ClusterHealth
from kafkaops.ops.lag import DEFAULT_WINDOW
from kafkaops.ops.lag_tracker import LagTracker
from kafkaops.ops.settle import DEFAULT_SETTLE, Settler
from kafkaops.ops.monitor_facts import ADMIN, QUORUM, ZOOKEEPER, FactModel, Facts, Key, Task, event_sources
from kafkaops.ops.monitor_stream import EventStream
from kafkaops.ops.quorum_source import QuorumSource
from kafkaops.ops.zk_source import ZooKeeperSource, ZooKeeperSourceError
from kafkaops.quorum import QuorumError, QuorumState, kafka_mode
from kafkaops.waits import Deadline

log = logging.getLogger(__name__)


SETTLE = 3.0
"""Seconds a broker's metadata must keep disagreeing with the model before the model follows it
(see :mod:`kafkaops.ops.monitor_facts`); at least three polls."""


QUORUM_TIMEOUT = 3.0
"""Seconds a DescribeQuorum poll may take (KRaft) before the next one asks again."""
KRAFT_ADMIN_POLL = 0.5
"""On KRaft the Admin API is the only source of broker liveness: it polls at least this often,
so a fenced broker is seen within the broker session timeout + 1 s."""


class MonitorError(KafkaopsError):
    """The monitor could not start (no source configured or reachable)."""


class ReplicaMonitor:
    """Watches brokers, controller and partition replication; emits typed events.

    ``cluster`` (a profile or a bootstrap string) gives the Admin API source; None
    leaves it out. The ZooKeeper source reads the brokers' znodes under
    ``kafka_chroot`` through ``coordinator`` (kept running at :meth:`stop`), or else
    through ``Coordinator.shared(...)`` of the profile's ZooKeeper section or of
    ``zk_connect`` (``host:2181/kafka``: hosts, then the brokers' chroot), released at
    :meth:`stop`. A profile whose ZooKeeper has no ``kafka_chroot`` (KRaft) has no
    ZooKeeper source but a quorum source (the active controller); ``kraft`` forces the
    mode (None: from the profile, else asked at start).

    >>> with ReplicaMonitor(profile) as mon:
    ...     print(mon.snapshot().counts.under_replicated)
    ...     for event in mon.events():
    ...         print(event.to_json())
    """

    def __init__(
        self,
        cluster: ClusterProfile | str | None = None,
        *,
        coordinator: Coordinator | None = None,
        kafka_chroot: str | None = None,
        zk_connect: str | None = None,
        poll_interval: float = 1.0,
        admin_timeout: float = 10.0,
        known_brokers: Iterable[int] = (),
        default_min_isr: int = DEFAULT_MIN_ISR,
        history: int = 500,
        settle: float = DEFAULT_SETTLE,
        kraft: bool | None = None,
    ) -> None:
        try:
            self.profile = None if cluster is None else as_profile(cluster)
        except ConfigError as exc:
            raise MonitorError(str(exc)) from None
        self._zk_settings, self.kafka_chroot = _zookeeper_source(self.profile, coordinator, kafka_chroot, zk_connect)
        if self.profile is None and self.kafka_chroot is None:
            raise MonitorError("the monitor needs bootstrap servers, a ZooKeeper connect string, or both")
        if poll_interval <= 0:
            raise MonitorError(f"the poll interval must be > 0 seconds, not {poll_interval}")
        self.bootstrap_servers = self.profile.bootstrap_servers if self.profile else None
        if kraft is None and self.kafka_chroot is not None:
            kraft = False
        elif kraft is None and self.profile is not None and self.profile.zookeeper is not None:
            kraft = True  # a ZooKeeper without the brokers' chroot: kafkaops' own, beside KRaft
        self.kraft = kraft
        self.poll_interval = poll_interval
        self.admin_timeout = admin_timeout
        self.coordinator = coordinator
        self._own_coordinator = False
        self._known = set(known_brokers)
        self._model = FactModel(zookeeper=self.kafka_chroot is not None, known_brokers=self._known,
                                default_min_isr=default_min_isr, settle=max(SETTLE, 3 * poll_interval))
        self._q: queue.Queue[Facts | Task | None] = queue.Queue()
        self._health: ClusterHealth | None = None
        self._delivered: ClusterHealth | None = None
        """The newest view whose events every subscriber has been handed (what wait_for judges)."""
        self._model_health: ClusterHealth | None = None
        self._settler = Settler(settle)
        self._cond = threading.Condition()
        self._subscribers: list[Callable[[Event], None]] = []
        self._streams: list[EventStream] = []
        self._history: deque[Event] = deque(maxlen=history)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._zk: ZooKeeperSource | None = None
        self._admin: AdminSource | None = None
        self._quorum: QuorumSource | None = None
        self._waiting_for = {s for s, on in ((ZOOKEEPER, self.kafka_chroot), (ADMIN, self.profile)) if on is not None}
        self._start_error: str | None = None
        self.events_emitted = 0
        self.lag: LagTracker | None = None
        """The consumer-lag tracker, once :meth:`track_lag` started one."""

    @property
    def zk_connect(self) -> str | None:
        """The ZooKeeper the source reads, with the brokers' chroot (None: no ZooKeeper source)."""
        if self.kafka_chroot is None:
            return None
        hosts = self.coordinator.hosts if self.coordinator is not None else self._zk_settings.connect if self._zk_settings else ""
        return hosts + ("" if self.kafka_chroot == "/" else self.kafka_chroot)

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30.0) -> ReplicaMonitor:
        """Connect the sources and wait until the first full model is built."""
        self._worker = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
        self._worker.start()
        try:
            if self.kafka_chroot is not None:
                self._start_zookeeper(self.kafka_chroot)
            if self.profile is not None and self._is_kraft(self.profile, timeout):
                self._model.quorum = True
                self._waiting_for.add(QUORUM)
                # a short timeout: a question forwarded to a controller that just died hangs until it
                # expires, and the next poll then reaches the new active controller
                self._quorum = QuorumSource(self.profile, self, poll_interval=self.poll_interval,
                                            timeout=min(self.admin_timeout, QUORUM_TIMEOUT))
                self._quorum.start()
            if self.profile is not None:
                poll = min(self.poll_interval, KRAFT_ADMIN_POLL) if self.kraft else self.poll_interval
                self._admin = AdminSource(self.profile, self, poll_interval=poll, timeout=self.admin_timeout,
                                          known_brokers=self._known, alone=self.kafka_chroot is None)
                self._admin.start(first_timeout=timeout)
            self._wait_started(timeout)
        except MonitorError:
            self.stop()
            raise
        return self

    def _is_kraft(self, profile: ClusterProfile, timeout: float) -> bool:
        if self.kraft is None:
            try:
                self.kraft = kafka_mode(profile, timeout=min(timeout, self.admin_timeout)) == "kraft"
            except QuorumError as exc:  # no broker answers: the Admin source's start says so
                log.debug("replica monitor: Kafka mode unknown: %s", exc)
                return False
        return self.kraft

    def _start_zookeeper(self, chroot: str) -> None:
        if self.coordinator is None:
            assert self._zk_settings is not None
            try:
                self.coordinator = Coordinator.shared(self._zk_settings)
            except CoordinatorError as exc:
                raise MonitorError(str(exc)) from None
            self._own_coordinator = True
        elif not self.coordinator.started:
            raise MonitorError("the coordinator given to the monitor is not started")
        self._zk = ZooKeeperSource(self.coordinator, chroot, self)
        try:
            self._zk.start()
        except ZooKeeperSourceError as exc:
            raise MonitorError(str(exc)) from None

    def track_lag(self, groups: Iterable[str] | None = None, *, interval: float = 5.0, window: int = DEFAULT_WINDOW,
                  allowed_lag: int = 0) -> LagTracker:
        """Also judge consumer groups' lag (``groups``, or every group) on a thread of its own;
        status changes arrive as ConsumerLagStatusChanged events with the others. Needs
        bootstrap servers."""
        if self.profile is None:
            raise MonitorError("consumer lag needs bootstrap servers (the Admin API)")
        if self.lag is not None:
            raise MonitorError("the monitor already tracks consumer lag")
        self.lag = LagTracker(self.profile, groups=groups, interval=interval, window=window, allowed_lag=allowed_lag,
                              timeout=self.admin_timeout, on_events=self.deliver).start()
        return self.lag

    def _wait_started(self, timeout: float) -> None:
        deadline = Deadline(timeout)
        with self._cond:
            while self._health is None:
                if self._start_error is not None:
                    raise MonitorError(self._start_error)
                if deadline.expired:
                    raise MonitorError(
                        f"no cluster view after {timeout:.0f}s from "
                        + " and ".join(s for s in (self.bootstrap_servers, self.zk_connect) if s)
                    )
                self._cond.wait(deadline.remaining(cap=0.2))

    def stop(self) -> None:
        """Stop sources and worker; open event streams end. A shared coordinator the
        monitor took is released; its watches on it end at their next event."""
        self._stop.set()
        self._q.put(None)
        if self.lag is not None:
            self.lag.stop()
        for source in (self._zk, self._quorum, self._admin):
            if source is not None:
                source.stop()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=2.0)
        if self._own_coordinator and self.coordinator is not None:
            self._own_coordinator = False
            self.coordinator.stop()
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
        """Block until ``predicate(snapshot)`` holds; raises MonitorError after ``timeout``.
        The events that led to that snapshot have been handed to every subscriber by then."""
        deadline = Deadline(timeout)
        with self._cond:
            while True:
                if self._delivered is not None and predicate(self._delivered):
                    return self._delivered
                if deadline.expired:
                    last = self._delivered.counts if self._delivered is not None else None
                    raise MonitorError(f"condition not reached in {timeout:.0f}s; partitions: {last}")
                self._cond.wait(deadline.remaining(cap=0.5))

    def quorum(self) -> QuorumState | None:
        """KRaft: the metadata quorum as last polled (active controller, voters and their lag)."""
        return self._quorum.last if self._quorum is not None else None

    @property
    def zookeeper_connected(self) -> bool:
        return self._zk is not None and self._zk.connected

    # ------------------------------------------------------------------ the sources' sink
    def put(self, item: Facts | Task) -> None:
        if not self._stop.is_set():
            self._q.put(item)

    def idle(self) -> bool:
        return self._q.empty()

    def fail(self, message: str) -> None:
        with self._cond:
            self._start_error = message
            self._cond.notify_all()

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch: list[Facts | Task | None] = [self._q.get(timeout=self._settler.due_in())]
            except queue.Empty:
                batch = []  # a held partition is due: publish without new facts
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            changed: dict[Key, str] = {}
            for item in batch:
                if item is None or self._stop.is_set():
                    continue
                try:
                    for facts in [item] if isinstance(item, Facts) else item():
                        self._model.merge(facts, changed)
                        if facts.ready:
                            self._waiting_for.discard(facts.source)
                except Exception:  # noqa: BLE001 - keep monitoring whatever one item did
                    log.exception("replica monitor: cannot process %r", item)
            if self._waiting_for:
                continue  # still loading the first view: fold it into one snapshot
            self._publish(changed, due=not batch)

    def _publish(self, changed: dict[Key, str], due: bool = False) -> None:
        """Build the model, settle it (:mod:`kafkaops.ops.settle`), diff it into events."""
        with self._cond:
            if self._health is not None and not changed and not due:
                return
        if changed or self._model_health is None:
            self._model_health = self._model.build()
        model = self._model_health if changed else replace(self._model_health, timestamp=time.time())
        sources = event_sources(changed)
        with self._cond:
            new = self._settler.view(self._health, model, sources)
            events = diff_health(self._health, new, sources=sources)
            self._health = new
            self._cond.notify_all()
        self.deliver(events)
        with self._cond:
            if self._health is new:  # not overtaken (publication runs on the worker thread alone)
                self._delivered = new
                self._cond.notify_all()

    def deliver(self, events: list[Event]) -> None:
        """Hand events to the history, the streams and the subscribers (the lag tracker's too)."""
        if not events:
            return
        with self._cond:
            self._history.extend(events)
            self.events_emitted += len(events)
            subscribers = list(self._subscribers)
            streams = list(self._streams)
        for event in events:
            log.info("%s (%s)", event.describe(), event.source)
            for stream in streams:
                stream._put(event)
            for cb in subscribers:
                try:
                    cb(event)
                except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the monitor
                    log.exception("replica monitor subscriber %r failed on %s", cb, event.type)


def _zookeeper_source(
    profile: ClusterProfile | None,
    coordinator: Coordinator | None,
    kafka_chroot: str | None,
    zk_connect: str | None,
) -> tuple[ZooKeeperSettings | None, str | None]:
    """The ZooKeeper settings for a shared session (None: a coordinator was given, or no
    ZooKeeper source) and the brokers' chroot (None: no ZooKeeper source)."""
    zookeeper = profile.zookeeper if profile is not None else None
    settings: ZooKeeperSettings | None = None
    chroot: str | None
    if zk_connect is not None:
        if coordinator is not None:
            raise MonitorError("give the monitor a coordinator or zk_connect, not both")
        hosts, _, rest = zk_connect.partition("/")
        chroot = "/" + rest.rstrip("/") if rest.rstrip("/") else "/"
        try:
            settings = replace(zookeeper, connect=hosts) if zookeeper is not None else ZooKeeperSettings(hosts)
        except ConfigError as exc:
            raise MonitorError(f"ZooKeeper connect string {zk_connect!r}: {exc}") from None
    elif coordinator is not None:
        chroot = zookeeper.kafka_chroot if zookeeper is not None else coordinator.settings.kafka_chroot
    elif zookeeper is not None:
        settings, chroot = zookeeper, zookeeper.kafka_chroot
    elif kafka_chroot is not None:
        raise MonitorError("kafka_chroot needs a ZooKeeper: a profile with one, a coordinator, or zk_connect")
    else:
        chroot = None
    if kafka_chroot is not None:
        chroot = kafka_chroot
    if chroot is not None and (not chroot.startswith("/") or (chroot != "/" and chroot.endswith("/"))):
        raise MonitorError(f"the brokers' chroot must be an absolute ZooKeeper path, not {chroot!r}")
    return (settings if chroot is not None else None), chroot


def format_event_line(event: Event) -> str:
    """One JSON line for an event (what ``kafkaops monitor --events`` prints)."""
    return json.dumps(event.to_json(), sort_keys=False)
