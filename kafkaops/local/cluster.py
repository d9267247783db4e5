"""LocalCluster: ZooKeeper (1 or 3 nodes) and N Kafka brokers as JVM processes.

A real cluster on one machine for tests and demos, in ZooKeeper mode under a
chroot (``/kafka``) so ``/kafkaops`` stays free for kafkaops' own znodes. It keeps
the no-loss defaults (replication factor min(3, N), ``min.insync.replicas=2``,
unclean leader election off) with settings tuned for fast failover on a small
machine. Its state (ports, pids, directories) is a JSON file, so another process
(the CLI) can attach to it and kill, stop, start, pause or resume any node.
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from kafkaops.errors import ClusterError, NoClusterError
from kafkaops.local.distribution import KafkaDistribution, find_java, resolve
from kafkaops.local.process import JvmProcess
from kafkaops.local.readiness import BROKER_SESSION_TIMEOUT_MS, ClusterReadiness, broker_defaults, check_shape  # noqa: F401 (re-exported)
from kafkaops.waits import wait_until

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
ZK_TICK_MS = 500

_LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
"""


@dataclass
class Node:
    """A ZooKeeper node or Kafka broker: its id, ports, directory and process."""

    kind: str  # "zookeeper" | "broker"
    id: int
    port: int
    dir: Path
    process: JvmProcess
    peer_ports: tuple[int, int] | None = None  # ZooKeeper quorum and election ports

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
        }


class LocalCluster(ClusterReadiness[Node]):
    """ZooKeeper + Kafka brokers on this machine; see the module docstring.

    ``detached`` clusters outlive the Python process that started them (``kafkaops
    up``); otherwise every JVM dies with it, even on SIGKILL (Linux PDEATHSIG), and
    :meth:`stop` runs at interpreter exit.
    """

    def __init__(
        self,
        base_dir: Path | str | None = None,
        *,
        brokers: int = 3,
        zookeepers: int = 1,
        broker_config: dict[str, str] | None = None,
        broker_heap_mb: int = 384,
        zookeeper_heap_mb: int = 256,
        chroot: str = "/kafka",
        detached: bool = False,
        distribution: KafkaDistribution | None = None,
    ) -> None:
        check_shape(brokers, zookeepers)
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="kafkaops-"))
        self.chroot = chroot
        self.detached = detached
        self.broker_config = dict(broker_config or {})
        self.broker_heap_mb = broker_heap_mb
        self.zookeeper_heap_mb = zookeeper_heap_mb
        self._distribution = distribution
        self._classpath = ""
        self._java = ""
        self.zookeepers: list[Node] = []
        self.brokers: list[Node] = []
        self._n_brokers = brokers
        self._n_zookeepers = zookeepers
        self._atexit_registered = False

    # ------------------------------------------------------------------ addresses
    @property
    def state_file(self) -> Path:
        return self.base_dir / STATE_FILE

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 120.0) -> LocalCluster:
        """Start every node and wait until all brokers are registered and in metadata."""
        dist = self._distribution or resolve()
        self._classpath, self._java = dist.classpath, find_java()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        ports = _free_ports(self._n_zookeepers * 3 + self._n_brokers)
        self.zookeepers = [
            self._zookeeper_node(i + 1, ports[3 * i], (ports[3 * i + 1], ports[3 * i + 2]))
            for i in range(self._n_zookeepers)
        ]
        offset = 3 * self._n_zookeepers
        self.brokers = [
            self._broker_node(i + 1, ports[offset + i]) for i in range(self._n_brokers)
        ]
        self._write_configs()
        if not self.detached and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            for node in self.zookeepers:
                node.process.spawn(self._java, self._classpath, detached=self.detached)
            self.save_state()
            self._wait_zookeeper(timeout)
            for node in self.brokers:
                node.process.spawn(self._java, self._classpath, detached=self.detached)
            self.save_state()
            self.wait_brokers([b.id for b in self.brokers], timeout)
            self._create_offsets_topic(timeout)
        except BaseException:
            self.stop(graceful=False)
            raise
        log.info("cluster up: bootstrap %s, zookeeper %s", self.bootstrap_servers, self.zk_connect)
        return self

    def stop(self, graceful: bool = True, timeout: float = 30.0) -> None:
        """Stop brokers (controlled shutdown when graceful), then ZooKeeper."""
        self._adopt_restarted()
        for group in (self.brokers, self.zookeepers):
            for node in group:
                node.process.signal(signal.SIGCONT)
                node.process.signal(signal.SIGTERM if graceful else signal.SIGKILL)
            for node in group:
                if not node.process.wait_exit(timeout if graceful else 10):
                    node.process.kill()
        if self.state_file.exists():
            self.save_state()

    def _adopt_restarted(self) -> None:
        """Take over nodes that another process (the CLI, a playbook) restarted: their
        new pids are in the state file, and stop() must not leave them behind."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return
        for node, raw in zip(self.zookeepers + self.brokers, state.get("zookeepers", []) + state.get("brokers", [])):
            pid = raw.get("pid")
            if pid and pid != node.process.pid and not node.process.is_running():
                candidate = JvmProcess(node.process.name, node.process.main_class, node.process.config,
                                       node.process.log_file, node.process.jvm_opts, pid=pid)
                if candidate.is_running():
                    node.process = candidate

    def destroy(self) -> None:
        """Stop everything and delete the cluster's directory."""
        self.stop(graceful=False)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # ------------------------------------------------------------------ node control
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
        node.process.spawn(self._java, self._classpath, detached=self.detached)
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
        node.process.spawn(self._java, self._classpath, detached=self.detached)
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

    # ------------------------------------------------------------------ readiness
    def _zookeeper_serves(self, node: Node) -> bool:
        return _zk_ok(node.port)

    def _logs_hint(self, nodes: Iterable[Node]) -> str:
        node = next(iter(nodes), None)
        return f"; see {node.process.log_file}" if node is not None else ""

    # ------------------------------------------------------------------ configuration
    def _zookeeper_node(self, node_id: int, port: int, peers: tuple[int, int]) -> Node:
        d = self.base_dir / f"zookeeper-{node_id}"
        proc = JvmProcess(
            name=f"zookeeper-{node_id}",
            main_class="org.apache.zookeeper.server.quorum.QuorumPeerMain",
            config=d / "zoo.cfg",
            log_file=d / "zookeeper.log",
            jvm_opts=self._jvm_opts(self.zookeeper_heap_mb, d),
        )
        return Node("zookeeper", node_id, port, d, proc, peers)

    def _broker_node(self, broker_id: int, port: int) -> Node:
        d = self.base_dir / f"broker-{broker_id}"
        proc = JvmProcess(
            name=f"broker-{broker_id}",
            main_class="kafka.Kafka",
            config=d / "server.properties",
            log_file=d / "broker.log",
            jvm_opts=self._jvm_opts(self.broker_heap_mb, d),
        )
        return Node("broker", broker_id, port, d, proc)

    @staticmethod
    def _jvm_opts(heap_mb: int, d: Path) -> list[str]:
        return [
            f"-Xmx{heap_mb}m",
            f"-Xms{min(heap_mb, 128)}m",
            "-XX:+UseSerialGC",
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            "-Dzookeeper.admin.enableServer=false",
            f"-Dlog4j.configuration=file:{d / 'log4j.properties'}",
            f"-Dkafka.logs.dir={d / 'logs'}",
        ]

    def broker_properties(self, node: Node) -> dict[str, str]:
        """The server.properties of one broker: no-loss defaults, fast-test settings."""
        props = {
            "broker.id": str(node.id),
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "log.dirs": str(node.dir / "data"),
            "zookeeper.connect": self.zk_connect,
            **broker_defaults(len(self.brokers)),
        }
        props.update(self.broker_config)
        return props

    def _write_configs(self) -> None:
        ensemble = len(self.zookeepers) > 1
        for z in self.zookeepers:
            (z.dir / "data").mkdir(parents=True, exist_ok=True)
            lines = [
                f"tickTime={ZK_TICK_MS}",
                "initLimit=20",
                "syncLimit=10",
                f"dataDir={z.dir / 'data'}",
                f"clientPort={z.port}",
                "clientPortAddress=127.0.0.1",
                "maxClientCnxns=0",
                "admin.enableServer=false",
                "4lw.commands.whitelist=*",
                "autopurge.snapRetainCount=3",
                "autopurge.purgeInterval=1",
            ]
            if ensemble:
                for peer in self.zookeepers:
                    assert peer.peer_ports is not None
                    q, e = peer.peer_ports
                    lines.append(f"server.{peer.id}=127.0.0.1:{q}:{e}")
                (z.dir / "data" / "myid").write_text(f"{z.id}\n")
            (z.dir / "zoo.cfg").write_text("\n".join(lines) + "\n")
            (z.dir / "log4j.properties").write_text(_LOG4J)
        for b in self.brokers:
            (b.dir / "data").mkdir(parents=True, exist_ok=True)
            props = self.broker_properties(b)
            (b.dir / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
            (b.dir / "log4j.properties").write_text(_LOG4J)

    # ------------------------------------------------------------------ state file
    def save_state(self) -> None:
        state = {
            "version": 1,
            "base_dir": str(self.base_dir),
            "chroot": self.chroot,
            "detached": self.detached,
            "java": self._java,
            "classpath": self._classpath,
            "bootstrap_servers": self.bootstrap_servers,
            "zk_connect": self.zk_connect,
            "zookeepers": [z.to_json() for z in self.zookeepers],
            "brokers": [b.to_json() for b in self.brokers],
            "jvm": {"broker_heap_mb": self.broker_heap_mb, "zookeeper_heap_mb": self.zookeeper_heap_mb},
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    @classmethod
    def attach(cls, base_dir: Path | str) -> LocalCluster:
        """A handle on a cluster another process started, from its state file."""
        path = Path(base_dir) / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise NoClusterError(f"no local cluster found (no {path}); start one with `kafkaops up`") from None
        except (OSError, ValueError) as exc:
            raise ClusterError(f"cluster state file {path} is unreadable: {exc}") from exc
        jvm = state.get("jvm", {})
        c = cls(
            state["base_dir"],
            brokers=len(state["brokers"]),
            zookeepers=len(state["zookeepers"]),
            chroot=state["chroot"],
            detached=state["detached"],
            broker_heap_mb=jvm.get("broker_heap_mb", 384),
            zookeeper_heap_mb=jvm.get("zookeeper_heap_mb", 256),
        )
        c._java, c._classpath = state["java"], state["classpath"]
        c.zookeepers = [
            c._zookeeper_node(z["id"], z["port"], tuple(z["peer_ports"]) if z["peer_ports"] else (0, 0))
            for z in state["zookeepers"]
        ]
        c.brokers = [c._broker_node(b["id"], b["port"]) for b in state["brokers"]]
        for node, raw in zip(c.zookeepers + c.brokers, state["zookeepers"] + state["brokers"], strict=True):
            node.process.pid = raw["pid"]
        return c


def _zk_ok(port: int) -> bool:
    """ZooKeeper's ``ruok`` four-letter command answers ``imok`` once the node serves."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"ruok")
            return s.recv(4) == b"imok"
    except OSError:
        return False


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
