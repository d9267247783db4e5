"""MonitorLeadership: which replica monitor instance acts (runs the FailoverPolicy).

Instances compete for one ``coord.election.Leadership`` on the process's Coordinator;
the winner acts, the others stand by and one takes over when the leader's session ends.
Its epoch fences the acting instance's ZooKeeper writes (``ops/failover_state.py``).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from kafkaops.coord.election import Leadership, epoch_path
from kafkaops.coord.session import Coordinator
from kafkaops.waits import WaitTimeout, wait_until

log = logging.getLogger(__name__)

LEADERSHIP_NAME = "replica-monitor"
"""The Leadership name monitor instances compete for (``/kafkaops/leaders/replica-monitor``)."""


class LeaderLike(Protocol):
    @property
    def is_leader(self) -> bool: ...


class MonitorLeadership:
    """Leadership of the replica monitor among instances, sought in the background.

    Wraps ``coord.election.Leadership`` (``name`` under the coordinator's root) on the
    given Coordinator: :meth:`start` returns at once; ``is_leader`` turns True when this
    instance wins, and a standby takes over when the leader's session ends.
    """

    def __init__(self, coordinator: Coordinator, identifier: str, name: str = LEADERSHIP_NAME) -> None:
        self.coordinator = coordinator
        self.identifier = identifier
        self.name = name
        self._leadership = Leadership(coordinator, name, identifier, rejoin=True)
        self._thread: threading.Thread | None = None

    def start(self) -> MonitorLeadership:
        self._thread = threading.Thread(target=self._acquire, name="monitor-leadership", daemon=True)
        self._thread.start()
        return self

    def _acquire(self) -> None:
        try:
            epoch = self._leadership.acquire()
            log.info("%s leads the replica monitor (epoch %s)", self.identifier, epoch)
        except Exception as exc:  # noqa: BLE001 - stopped while waiting, or session gone
            log.info("%s stopped seeking monitor leadership: %s", self.identifier, exc)

    @property
    def is_leader(self) -> bool:
        return self._leadership.is_leader

    def fence(self) -> tuple[str, int] | None:
        """(epoch znode, epoch of this instance's current or last term): fences its ZooKeeper writes."""
        epoch = self._leadership.epoch
        return None if epoch is None else (epoch_path(self.coordinator, self.name), epoch)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for leadership; True if this instance leads."""
        try:
            return wait_until(lambda: self.is_leader, timeout, "monitor leadership", interval=0.1)
        except WaitTimeout:
            return False

    def stop(self) -> None:
        """Give up leadership (or stop seeking it); the Coordinator stays with its owner."""
        self._leadership.release()
        if self._thread is not None:
            self._thread.join(timeout=10)
