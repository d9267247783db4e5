"""A ZooKeeper node or Kafka broker of a ContainerCluster: its container, at a fixed
address on the cluster's network, with the liveness/log surface of a local JVM process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafkaops.coord.four_letter import server_mode
from kafkaops.waits import WaitTimeout, wait_until


@dataclass
class ContainerProcess:
    """A node's container, with the liveness/log surface of a local JVM process."""

    name: str
    container: Any = field(default=None, repr=False)
    log_dir: Path | None = None

    def _status(self) -> str:
        if self.container is None:
            return "absent"
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - removed meanwhile
            return "absent"
        return str(self.container.status)

    def is_running(self) -> bool:
        """True while the container runs (a paused one counts as running)."""
        return self._status() in ("running", "paused")

    def is_paused(self) -> bool:
        return self._status() == "paused"

    @property
    def pid(self) -> int | None:
        """The host pid of the container's main process (the JVM), None when stopped."""
        if not self.is_running():
            return None
        pid = int(self.container.attrs["State"]["Pid"])
        return pid or None

    @property
    def log_file(self) -> Path:
        """The container's output so far, written to a file (as LocalCluster's logs are)."""
        assert self.log_dir is not None
        path = self.log_dir / f"{self.name}.log"
        try:
            path.write_bytes(self.container.logs(stdout=True, stderr=True))
        except Exception as exc:  # noqa: BLE001 - container gone: say so in the file
            path.write_text(f"logs of {self.name} unavailable: {exc}\n")
        return path

    def logs_tail(self, lines: int = 30) -> str:
        try:
            return str(self.container.logs(tail=lines).decode(errors="replace"))
        except Exception as exc:  # noqa: BLE001
            return f"(no logs: {exc})"

    def wait_exit(self, timeout: float) -> bool:
        """Wait until the container has stopped; False on timeout."""
        try:
            wait_until(lambda: not self.is_running(), timeout, f"{self.name} to exit", interval=0.1)
        except WaitTimeout:
            return False
        return True


@dataclass
class ContainerNode:
    """A ZooKeeper node or Kafka broker in a container at a fixed address on the network."""

    kind: str  # "zookeeper" | "broker"
    id: int
    ip: str
    port: int
    process: ContainerProcess
    env: dict[str, str]
    connected: bool = True

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def alive(self) -> bool:
        """Running, not paused, and on the network."""
        return self.connected and self.process.is_running() and not self.process.is_paused()

    @property
    def state(self) -> str:
        if not self.process.is_running():
            return "stopped"
        if self.process.is_paused():
            return "paused"
        return "running" if self.connected else "disconnected"


def zookeeper_serves(host: str, port: int) -> bool:
    """ZooKeeper serves once ``srvr`` (the one four-letter word every image allows) reports a mode."""
    return server_mode(host, port) is not None
