"""The replica monitor's KRaft source: the active controller, from the metadata quorum.

A KRaft cluster keeps no broker znodes in ZooKeeper, and its Metadata answers name a
random live broker as "controller" (clients never talk to controllers). The active
controller is the leader of the metadata quorum, which DescribeQuorum reports
(:mod:`kafkaops.quorum`); this source polls it every ``poll_interval`` seconds on a
thread of its own and delivers the ``("controller",)`` fact, which it alone sets on a
KRaft cluster. Brokers, partitions and ISRs come from the Admin API source as in any
mode: a killed broker leaves the metadata once the controller fences it, after the
broker session timeout.
"""

from __future__ import annotations

import logging
import threading

from kafkaops.config import ClusterProfile
from kafkaops.ops.monitor_facts import QUORUM, FactSink, Facts
from kafkaops.quorum import NotKRaftError, QuorumClient, QuorumError, QuorumState

log = logging.getLogger(__name__)


class QuorumSource:
    """Polls DescribeQuorum; each new active controller becomes a ``("controller",)`` fact."""

    def __init__(self, profile: ClusterProfile, sink: FactSink, *, poll_interval: float, timeout: float) -> None:
        self.profile = profile
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.last: QuorumState | None = None
        """The last quorum state read (voters and their lag), for callers that show it."""
        self._sink = sink
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="replica-monitor-quorum", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        client: QuorumClient | None = None
        ready = False
        failing = False
        try:
            while not self._stopped.is_set():
                try:
                    client = client or QuorumClient(self.profile, timeout=self.timeout)
                    state = client.describe()
                except NotKRaftError as exc:
                    self._sink.fail(f"the monitor was told {self.profile.bootstrap_servers} is a KRaft cluster: {exc}")
                    return
                except QuorumError as exc:  # no leader during an election, or no broker answering
                    if not failing:
                        log.warning("replica monitor: %s", exc)
                    failing = True
                    if not ready:  # do not hold the start hostage: the Admin source carries on
                        ready = True
                        self._sink.put(Facts(QUORUM, ready=True))
                    self._stopped.wait(self.poll_interval)
                    continue
                failing = False
                if self.last is None or state.leader_id != self.last.leader_id:
                    log.info("replica monitor: active controller %d (epoch %d)", state.leader_id, state.leader_epoch)
                self.last = state
                self._sink.put(Facts(QUORUM, [(("controller",), state.leader_id)], ready=not ready))
                ready = True
                self._stopped.wait(self.poll_interval)
        finally:
            if client is not None:
                client.close()
