"""Fault injection and lifecycle of one node of a local cluster: kill (SIGKILL), stop
(SIGTERM: controlled shutdown), start, restart, pause (SIGSTOP) and resume (SIGCONT) a
broker, a KRaft controller or a ZooKeeper node, by id.

A node is a JVM (:class:`~kafkaops.local.process.JvmProcess`); :class:`NodeControl` is the
part of :class:`~kafkaops.local.cluster.LocalCluster` that acts on one, and waits for the
outcome a test or a playbook relies on (a restarted broker back in metadata, a restarted
controller caught up with the metadata quorum).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafkaops.errors import ClusterError, UnknownBrokerError
from kafkaops.local.process import JvmProcess
from kafkaops.local.readiness import ClusterReadiness
from kafkaops.waits import wait_until


@dataclass
class Node:
    """A ZooKeeper node, KRaft controller or Kafka broker: id, ports, directory, process."""

    kind: str  # "zookeeper" | "controller" | "broker"
    id: int
    port: int
    dir: Path
    process: JvmProcess
    peer_ports: tuple[int, int] | None = None  # ZooKeeper quorum and election ports
    controller_port: int | None = None  # KRaft controller listener (controllers, combined brokers)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        """Running and not paused."""
        return self.process.is_running() and not self.process.is_paused()

    @property
    def state(self) -> str:
        if not self.process.is_running():
            return "stopped"
        return "paused" if self.process.is_paused() else "running"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "port": self.port,
            "dir": str(self.dir),
            "pid": self.process.pid,
            "peer_ports": list(self.peer_ports) if self.peer_ports else None,
            "controller_port": self.controller_port,
        }


class NodeControl(ClusterReadiness[Node]):
    """Node control by id; the cluster supplies its nodes, ``_spawn`` and ``save_state``."""

    controllers: list[Node]

    def _spawn(self, node: Node) -> None:
        raise NotImplementedError

    def save_state(self) -> None:
        raise NotImplementedError

    def kill_broker(self, broker_id: int) -> None:
        """SIGKILL: the broker vanishes without controlled shutdown."""
        self.broker(broker_id).process.kill()
        self.save_state()

    def stop_broker(self, broker_id: int, timeout: float = 60.0) -> None:
        """SIGTERM: controlled shutdown (leadership moves first), SIGKILL after timeout."""
        self.broker(broker_id).process.terminate(timeout)
        self.save_state()

    def start_broker(self, broker_id: int, wait: bool = True, timeout: float = 90.0) -> None:
        """Start a stopped broker again with the same id, port and data."""
        node = self.broker(broker_id)
        if node.process.is_running():
            raise ClusterError(f"broker {broker_id} is already running (pid {node.process.pid})")
        self._wait_registration_gone(broker_id)
        self._spawn(node)
        self.save_state()
        if wait:
            self.wait_brokers([broker_id], timeout)

    def restart_broker(self, broker_id: int, timeout: float = 90.0) -> None:
        self.stop_broker(broker_id)
        self.start_broker(broker_id, timeout=timeout)

    def pause_broker(self, broker_id: int) -> None:
        """SIGSTOP: the JVM freezes (a stand-in for a long GC pause or a hung disk)."""
        self._signal(self.broker(broker_id), signal.SIGSTOP)

    def resume_broker(self, broker_id: int) -> None:
        self._signal(self.broker(broker_id), signal.SIGCONT)

    def controller(self, node_id: int) -> Node:
        """A KRaft controller by node id (a combined broker's id, or 101, 102, ...)."""
        if self.mode != "kraft":
            raise ClusterError("not a KRaft cluster: in ZooKeeper mode the controller is one of the brokers "
                               "(see `kafkaops status`; control it as a broker)")
        for node in self.controllers:
            if node.id == node_id:
                return node
        known = ", ".join(str(c.id) for c in self.controllers)
        raise UnknownBrokerError(f"no controller {node_id} in this cluster (controllers: {known})")

    def kill_controller(self, node_id: int) -> None:
        """SIGKILL: an active controller's voters elect a new leader after their fetch timeout."""
        self.controller(node_id).process.kill()
        self.save_state()

    def stop_controller(self, node_id: int, timeout: float = 60.0) -> None:
        """SIGTERM: a clean shutdown (an active controller resigns its leadership first)."""
        self.controller(node_id).process.terminate(timeout)
        self.save_state()

    def start_controller(self, node_id: int, wait: bool = True, timeout: float = 90.0) -> None:
        """Start a stopped controller again; with ``wait``, until it has caught up with the
        quorum's high watermark (DescribeQuorum), as a rolling restart needs before the next."""
        node = self.controller(node_id)
        if node.process.is_running():
            raise ClusterError(f"controller {node_id} is already running (pid {node.process.pid})")
        started = time.time()
        self._spawn(node)
        self.save_state()
        if wait:
            self.wait_controller_caught_up(node_id, timeout, since=started)

    def restart_controller(self, node_id: int, timeout: float = 90.0) -> None:
        self.stop_controller(node_id)
        self.start_controller(node_id, timeout=timeout)

    def wait_controller_caught_up(self, node_id: int, timeout: float = 90.0, since: float | None = None) -> None:
        """Wait until controller ``node_id`` has caught up with the metadata quorum (ClusterError if not)."""
        from kafkaops.quorum import QuorumClient, QuorumError, wait_caught_up

        node = self.controller(node_id)
        try:
            with QuorumClient(self.profile) as client:
                wait_caught_up(client, node_id, timeout, since=since)
        except QuorumError as exc:
            self._check_running([node])
            raise ClusterError(f"controller {node_id}: {exc}") from None

    def pause_controller(self, node_id: int) -> None:
        self._signal(self.controller(node_id), signal.SIGSTOP)

    def resume_controller(self, node_id: int) -> None:
        self._signal(self.controller(node_id), signal.SIGCONT)

    def kill_zookeeper(self, node_id: int) -> None:
        self.zookeeper(node_id).process.kill()
        self.save_state()

    def stop_zookeeper(self, node_id: int, timeout: float = 30.0) -> None:
        self.zookeeper(node_id).process.terminate(timeout)
        self.save_state()

    def start_zookeeper(self, node_id: int) -> None:
        node = self.zookeeper(node_id)
        if node.process.is_running():
            raise ClusterError(f"ZooKeeper node {node_id} is already running")
        self._spawn(node)
        self.save_state()

    def pause_zookeeper(self, node_id: int) -> None:
        self._signal(self.zookeeper(node_id), signal.SIGSTOP)

    def resume_zookeeper(self, node_id: int) -> None:
        self._signal(self.zookeeper(node_id), signal.SIGCONT)

    def _signal(self, node: Node, sig: int, timeout: float = 10.0) -> None:
        """SIGSTOP / SIGCONT, returning once the kernel shows the JVM stopped / running."""
        if not node.process.signal(sig):
            raise ClusterError(f"{node.kind} {node.id} is not running")
        want_paused = sig == signal.SIGSTOP
        done = "stop" if want_paused else "continue"
        wait_until(lambda: node.process.is_paused() == want_paused, timeout, f"{node.kind} {node.id} to {done}",
                   interval=0.01, error=lambda _: ClusterError(f"{node.kind} {node.id} did not {done}"))
