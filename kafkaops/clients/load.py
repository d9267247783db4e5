"""Per-broker load as LeastLoaded sees it: records in flight and how long each broker has been silent.

The partitioners place records in *runs* (see :mod:`kafkaops.clients.partitioners`), and
LeastLoaded asks for a delivery report of each run's first record only (its *probe*). A
run's records travel together, so when its probe is acknowledged the run counts as done.
Per leader broker that gives:

- *silence*: how long the broker has owed us an answer: since its last acknowledgement,
  or since its oldest unacknowledged probe was sent if that is later (the oldest record in
  flight, bounded by progress). A frozen broker (GC pause, hung disk, SIGSTOP) answers
  nothing, so its silence grows while a broker that is merely slow, even seconds slow on an
  overloaded machine, keeps acknowledging runs one after the other. A
  leader is *stalled* once its silence passes ``stall_min_s`` and ``stall_factor`` times the
  median silence of the other leaders that owe answers (or, when none does, times the
  typical probe latency): the role of the Java producer's
  ``partitioner.availability.timeout.ms`` (KIP-794), but relative to how the rest of the
  cluster answers right now, so a slow machine does not make every broker stalled. A
  stalled leader gets no runs while another leader does not stall.
- *records in flight*: the records of runs whose probe is not acknowledged yet (by
  Little's law, send rate times latency): among leaders that do not stall, the next run
  goes to the one with the fewest.

Only run switches and probe reports touch this (a few hundred times a second at most),
so one lock around them costs nothing per record. librdkafka's statistics
(``outbuf_msg_cnt``, ``waitresp_msg_cnt``, ``int_latency``) say the same things per broker
but ``statistics.interval.ms`` late and at the cost of a JSON document per interval, so
they only feed broker connection states (:mod:`kafkaops.clients.metadata`).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LATENCY_ALPHA = 0.2
"""Weight of a new probe latency in a broker's moving average."""


@dataclass(slots=True)
class Probe:
    """The first record of a run, sent at ``sent``; ``records`` grows while the run goes on."""

    broker: int
    sent: float
    records: int = 1


@dataclass(slots=True)
class _Broker:
    outstanding: dict[int, Probe] = field(default_factory=dict)  # id -> probe, oldest first
    inflight: int = 0
    latency: float | None = None
    last_ack: float = float("-inf")

    def silence(self, now: float) -> float:
        """Seconds this broker has owed us an answer: since its last acknowledgement or, if
        later, since its oldest unacknowledged probe was sent (0 with nothing in flight)."""
        if not self.outstanding:
            return 0.0
        return now - max(self.last_ack, next(iter(self.outstanding.values())).sent)


class LoadTracker:
    """Records in flight and the oldest unacknowledged probe per leader; stall detection.

    ``stall_min_s`` and ``stall_factor`` set when a leader counts as stalled (see the
    module docstring); ``stall_min_s=None`` turns stall detection off.
    """

    def __init__(
        self,
        stall_min_s: float | None = 0.05,
        stall_factor: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_min_s = stall_min_s
        self.stall_factor = stall_factor
        self.clock = clock
        self.lock = threading.Lock()
        self._brokers: dict[int, _Broker] = {}
        self._pending: dict[tuple[str, int], deque[Probe]] = {}

    # ------------------------------------------------------------------ updates
    def sent(self, topic: str, partition: int, broker: int) -> Probe:
        """A run's first record (its probe) was handed to the producer for ``partition`` led by ``broker``."""
        probe = Probe(broker, self.clock())
        with self.lock:
            b = self._brokers.get(broker)
            if b is None:
                b = self._brokers[broker] = _Broker()
            b.outstanding[id(probe)] = probe
            b.inflight += 1
            self._pending.setdefault((topic, partition), deque()).append(probe)
        return probe

    def grew(self, probe: Probe, records: int) -> None:
        """``records`` more records of the probe's run were handed to the producer."""
        with self.lock:
            if id(probe) in self._broker(probe.broker).outstanding:
                probe.records += records
                self._broker(probe.broker).inflight += records

    def acked(self, topic: str, partition: int) -> None:
        """The oldest unacknowledged probe of this partition was acknowledged (or failed)."""
        now = self.clock()
        with self.lock:
            queue = self._pending.get((topic, partition))
            if not queue:
                return  # a report this tracker did not ask for
            probe = queue.popleft()
            b = self._broker(probe.broker)
            if b.outstanding.pop(id(probe), None) is None:
                return
            b.inflight = max(0, b.inflight - probe.records)
            b.last_ack = now
            latency = now - probe.sent
            b.latency = latency if b.latency is None else b.latency + LATENCY_ALPHA * (latency - b.latency)

    def release(self, topic: str, partition: int) -> None:
        """Forget the newest probe of this partition: its ``produce()`` raised, no report will come."""
        with self.lock:
            queue = self._pending.get((topic, partition))
            if not queue:
                return
            probe = queue.pop()
            b = self._broker(probe.broker)
            if b.outstanding.pop(id(probe), None) is not None:
                b.inflight = max(0, b.inflight - probe.records)

    # ------------------------------------------------------------------ reads
    def choose(self, leaders: Sequence[int], tick: int) -> int:
        """The leader to send the next run to: not stalled, fewest records in flight, ties in
        rotation (``tick``); if every leader is stalled, the one silent the shortest."""
        now = self.clock()
        with self.lock:
            stalled = self._stalled_locked(now)
            n = len(leaders)
            best, best_key = leaders[tick % n], (2, 0.0)
            for i in range(n):
                broker = leaders[(tick + i) % n]
                b = self._brokers.get(broker)
                if b is None or not b.outstanding:
                    key: tuple[int, float] = (0, 0.0)
                elif broker in stalled:
                    key = (1, b.silence(now))
                else:
                    key = (0, float(b.inflight))
                if key < best_key:
                    best, best_key = broker, key
            return best

    def stall_threshold(self) -> float | None:
        """Seconds of silence after which a leader counts as stalled when the others are idle."""
        with self.lock:
            return self._threshold_locked()

    def stalled(self) -> set[int]:
        """Leaders silent for far longer than the others (see the module docstring)."""
        with self.lock:
            return self._stalled_locked(self.clock())

    def inflight(self, broker: int) -> int:
        """Records of unacknowledged runs on ``broker``."""
        b = self._brokers.get(broker)
        return b.inflight if b is not None else 0

    def oldest_age(self, broker: int) -> float:
        """Seconds since the oldest unacknowledged probe on ``broker`` was sent (0: none)."""
        with self.lock:
            b = self._brokers.get(broker)
            if b is None or not b.outstanding:
                return 0.0
            return self.clock() - next(iter(b.outstanding.values())).sent

    def silence(self, broker: int) -> float:
        """Seconds ``broker`` has owed an answer (see the module docstring; 0: nothing in flight)."""
        with self.lock:
            b = self._brokers.get(broker)
            return b.silence(self.clock()) if b is not None else 0.0

    def latency(self, broker: int) -> float | None:
        """Moving average of the broker's probe latency (produce to acknowledgement), seconds."""
        b = self._brokers.get(broker)
        return b.latency if b is not None else None

    # ------------------------------------------------------------------ internals
    def _broker(self, broker: int) -> _Broker:
        b = self._brokers.get(broker)
        if b is None:
            b = self._brokers[broker] = _Broker()
        return b

    def _threshold_locked(self) -> float | None:
        if self.stall_min_s is None:
            return None
        latencies = [b.latency for b in self._brokers.values() if b.latency is not None]
        typical = statistics.median(latencies) if latencies else 0.0
        return max(self.stall_min_s, self.stall_factor * typical)

    def _stalled_locked(self, now: float) -> set[int]:
        """A leader is stalled when silent longer than ``stall_min_s`` and ``stall_factor`` times
        the median silence of the other leaders that owe answers (they answer, however slowly);
        when no other leader owes one, ``stall_factor`` times the typical latency."""
        if self.stall_min_s is None:
            return set()
        silences = {broker: b.silence(now) for broker, b in self._brokers.items() if b.outstanding}
        stalled = set()
        fallback = None
        for broker, quiet in silences.items():
            if quiet <= self.stall_min_s:
                continue
            others = [q for other, q in silences.items() if other != broker]
            if others:
                limit = max(self.stall_min_s, self.stall_factor * statistics.median(others))
            else:
                if fallback is None:
                    fallback = max(self.stall_min_s, self._threshold_locked() or 0.0)
                limit = fallback
            if quiet > limit:
                stalled.add(broker)
        return stalled
