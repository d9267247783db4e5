"""LocalCluster: a real Kafka cluster of JVM processes on this machine, for tests and demos.

Two Kafka modes. ``mode="zookeeper"`` (default): Kafka 3.9 brokers keep their metadata
in ZooKeeper under a chroot (``/kafka``), so ``/kafkaops`` stays free for kafkaops' own
znodes. ``mode="kraft"``: Kafka 4.x with a KRaft quorum of dedicated controllers (or
``combined`` broker+controller nodes), and a standalone ZooKeeper beside it for
kafkaops' coordination. ``secure=True`` (ZooKeeper mode) runs every listener as
SASL_SSL/SCRAM-SHA-512 with an authorizer, and ZooKeeper with SASL and ACLs (see
:mod:`kafkaops.local.security`). The no-loss defaults hold (replication factor
min(3, N), ``min.insync.replicas=2``, unclean leader election off), tuned for fast
failover on a small machine. The state (ports, pids, directories) is a JSON file, so
another process (the CLI) can attach and kill, stop, start, pause or resume any node
(:mod:`kafkaops.local.control`).
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

from kafkaops.config import ClusterProfile, ZooKeeperSettings
from kafkaops.errors import ClusterError, NoClusterError
from kafkaops.local import configs
from kafkaops.local.configs import LOG4J as _LOG4J, ZK_TICK_MS  # noqa: F401 (re-exported)
from kafkaops.local.distribution import KafkaDistribution, find_java, resolve
from kafkaops.local.control import Node, NodeControl  # noqa: F401 (Node re-exported)
from kafkaops.local.process import JvmProcess
from kafkaops.local.readiness import BROKER_SESSION_TIMEOUT_MS, ClusterReadiness, broker_defaults, check_shape  # noqa: F401 (re-exported)
from kafkaops.local.security import LocalSecurity, jaas_jvm_opts

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
MODES = ("zookeeper", "kraft")
CONTROLLER_ID_BASE = 100
"""Dedicated KRaft controllers are nodes 101, 102, ... (brokers keep 1..N)."""


class LocalCluster(NodeControl):
    """ZooKeeper + Kafka (ZooKeeper mode or KRaft) on this machine; see the module docstring.

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
        mode: str = "zookeeper",
        controllers: int = 3,
        combined: bool = False,
        secure: bool = False,
        kafka_version: str | None = None,
        broker_config: dict[str, str] | None = None,
        broker_heap_mb: int = 384,
        zookeeper_heap_mb: int = 256,
        chroot: str = "/kafka",
        detached: bool = False,
        distribution: KafkaDistribution | None = None,
    ) -> None:
        check_shape(brokers, zookeepers)
        if mode not in MODES:
            raise ClusterError(f"Kafka mode {mode!r}: choose one of {', '.join(MODES)}")
        if mode == "kraft" and controllers not in (1, 3, 5):
            raise ClusterError(f"a KRaft quorum has 1, 3 or 5 controllers, not {controllers}")
        if combined and controllers > brokers:
            raise ClusterError(f"combined mode runs the {controllers} controllers on brokers: needs >= {controllers} brokers")
        if secure and mode == "kraft":
            raise ClusterError("secured local clusters run in ZooKeeper mode only (KRaft: plaintext)")
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="kafkaops-"))
        self.mode = mode
        self.secure = secure
        self.combined = combined and mode == "kraft"
        self.kafka_version = kafka_version
        self.chroot = chroot
        self.detached = detached
        self.broker_config = dict(broker_config or {})
        self.broker_heap_mb = broker_heap_mb
        self.zookeeper_heap_mb = zookeeper_heap_mb
        self._distribution = distribution
        self._classpath = ""
        self._zk_classpath = ""
        self._java = ""
        self.zookeepers: list[Node] = []
        self.brokers: list[Node] = []
        self.controllers: list[Node] = []
        self._n_brokers = brokers
        self._n_zookeepers = zookeepers
        self._n_controllers = controllers if mode == "kraft" else 0
        self._atexit_registered = False
        self._security: LocalSecurity | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def state_file(self) -> Path:
        return self.base_dir / STATE_FILE

    @property
    def security(self) -> LocalSecurity | None:
        """The TLS material and passwords of a secured cluster (None when plaintext)."""
        if self.secure and self._security is None:
            self._security = LocalSecurity.create(self.base_dir / "security")
        return self._security

    @property
    def profile(self) -> ClusterProfile:
        """The admin's profile: brokers, security, ZooKeeper (and the brokers' chroot in ZooKeeper mode)."""
        chroot = self.chroot if self.mode == "zookeeper" else None
        if self.security is not None:
            return self.security.profile(self.bootstrap_servers, self.zk_hosts, chroot)
        return ClusterProfile(self.bootstrap_servers, zookeeper=ZooKeeperSettings(self.zk_hosts, kafka_chroot=chroot),
                              name="local")

    def _nodes(self) -> list[Node]:
        """Every node, in start order (ZooKeeper, dedicated controllers, brokers)."""
        dedicated = [c for c in self.controllers if c.kind == "controller"]
        return [*self.zookeepers, *dedicated, *self.brokers]

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 120.0) -> LocalCluster:
        """Start every node and wait until all brokers are registered and in metadata."""
        self._resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._layout()
        self._write_configs()
        if not self.detached and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            for node in self.zookeepers:
                self._spawn(node)
            self.save_state()
            self._wait_zookeeper(timeout)
            if self.security is not None:
                self.security.create_chroot(self.zk_hosts, self.chroot)
                self.security.create_scram_users(self._java, self._classpath, self.zk_connect)
            if self.mode == "kraft":
                self._format_storage(timeout)
            for node in self._nodes()[len(self.zookeepers):]:
                self._spawn(node)
            self.save_state()
            self.wait_brokers([b.id for b in self.brokers], timeout)
            self._create_offsets_topic(timeout)
        except BaseException:
            self.stop(graceful=False)
            raise
        log.info("cluster up (%s%s): bootstrap %s, zookeeper %s", self.mode, ", secure" if self.secure else "",
                 self.bootstrap_servers, self.zk_hosts)
        return self

    def stop(self, graceful: bool = True, timeout: float = 30.0) -> None:
        """Stop brokers (controlled shutdown when graceful), then controllers, then ZooKeeper."""
        self._adopt_restarted()
        dedicated = [c for c in self.controllers if c.kind == "controller"]
        for group in (self.brokers, dedicated, self.zookeepers):
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
        pids = {(kind, raw["id"]): raw.get("pid") for kind in ("zookeepers", "controllers", "brokers")
                for raw in state.get(kind, [])}
        for node in self._nodes():
            pid = pids.get((node.kind + "s", node.id))
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

    def _spawn(self, node: Node) -> None:
        classpath = self._zk_classpath if node.kind == "zookeeper" else self._classpath
        node.process.spawn(self._java, classpath, detached=self.detached)

    # ------------------------------------------------------------------ readiness
    def _zookeeper_serves(self, node: Node) -> bool:
        return _zk_ok(node.port)

    def _logs_hint(self, nodes: Iterable[Node]) -> str:
        node = next(iter(nodes), None)
        return f"; see {node.process.log_file}" if node is not None else ""

    # ------------------------------------------------------------------ configuration
    def _resolve(self) -> None:
        """The jars: Kafka's for brokers and controllers; ZooKeeper's from the 3.9 line
        (KRaft releases no longer ship ZooKeeper)."""
        self._java = find_java()
        if self.mode == "kraft":
            dist = self._distribution or resolve(version=self.kafka_version, kraft=True)
            self._zk_classpath = resolve().classpath
        else:
            dist = self._distribution or resolve(version=self.kafka_version)
            self._zk_classpath = dist.classpath
        self._classpath = dist.classpath
        self.kafka_version = dist.version

    def _layout(self) -> None:
        n_ports = self._n_zookeepers * 3 + self._n_brokers + self._n_controllers
        ports = _free_ports(n_ports)
        self.zookeepers = [self._zookeeper_node(i + 1, ports.pop(0), (ports.pop(0), ports.pop(0)))
                           for i in range(self._n_zookeepers)]
        self.brokers = [self._broker_node(i + 1, ports.pop(0)) for i in range(self._n_brokers)]
        if self.mode == "kraft":
            if self.combined:
                for b in self.brokers[: self._n_controllers]:
                    b.controller_port = ports.pop(0)
                self.controllers = self.brokers[: self._n_controllers]
            else:
                self.controllers = [self._controller_node(CONTROLLER_ID_BASE + i + 1, ports.pop(0))
                                    for i in range(self._n_controllers)]

    def _node(self, kind: str, node_id: int, config: str, log_name: str, heap_mb: int,
              main_class: str = "kafka.Kafka") -> JvmProcess:
        d = self.base_dir / f"{kind}-{node_id}"
        opts = self._jvm_opts(heap_mb, d)
        if self.secure:
            opts += jaas_jvm_opts(self.base_dir / "security", kind)
        return JvmProcess(name=f"{kind}-{node_id}", main_class=main_class, config=d / config,
                          log_file=d / log_name, jvm_opts=opts)

    def _zookeeper_node(self, node_id: int, port: int, peers: tuple[int, int]) -> Node:
        proc = self._node("zookeeper", node_id, "zoo.cfg", "zookeeper.log", self.zookeeper_heap_mb,
                          "org.apache.zookeeper.server.quorum.QuorumPeerMain")
        return Node("zookeeper", node_id, port, proc.config.parent, proc, peers)

    def _broker_node(self, broker_id: int, port: int) -> Node:
        proc = self._node("broker", broker_id, "server.properties", "broker.log", self.broker_heap_mb)
        return Node("broker", broker_id, port, proc.config.parent, proc)

    def _controller_node(self, node_id: int, port: int) -> Node:
        proc = self._node("controller", node_id, "server.properties", "controller.log", 256)
        return Node("controller", node_id, port, proc.config.parent, proc, controller_port=port)

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
        """The server.properties of one broker (or KRaft node): no-loss defaults, fast-test settings."""
        if self.mode == "kraft":
            roles = ["broker"] if node.kind == "broker" else []
            if node in self.controllers:
                roles.append("controller")
            voters = {c.id: c.controller_port or 0 for c in self.controllers}
            props = configs.kraft_properties(node.id, roles, node.dir / "data", port=node.port if node.kind == "broker"
                                             else None, controller_port=node.controller_port, voters=voters,
                                             brokers=len(self.brokers))
        else:
            props = configs.zk_broker_properties(node.id, node.port, node.dir / "data", self.zk_connect, len(self.brokers))
            if self.security is not None:
                props.update(self.security.broker_properties(node.id, node.port))
        props.update(self.broker_config)
        return props

    def _write_configs(self) -> None:
        ensemble = [(z.id, *(z.peer_ports or (0, 0))) for z in self.zookeepers]
        extra = self.security.zookeeper_config_lines() if self.security is not None else []
        for z in self.zookeepers:
            (z.dir / "data").mkdir(parents=True, exist_ok=True)
            if len(ensemble) > 1:
                (z.dir / "data" / "myid").write_text(f"{z.id}\n")
            (z.dir / "zoo.cfg").write_text(configs.zookeeper_cfg(z.dir / "data", z.port, ensemble, extra))
            (z.dir / "log4j.properties").write_text(configs.LOG4J)
        for node in self._nodes()[len(self.zookeepers):]:
            (node.dir / "data").mkdir(parents=True, exist_ok=True)
            configs.write_properties(node.dir / "server.properties", self.broker_properties(node))
            (node.dir / "log4j.properties").write_text(configs.LOG4J)

    def _format_storage(self, timeout: float) -> None:
        """``kafka-storage format`` every KRaft node's log directory with one cluster id (in parallel)."""
        cluster_id = _kraft_cluster_id()
        procs = []
        for node in self._nodes()[len(self.zookeepers):]:
            cmd = [self._java, "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", self._classpath,
                   "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(node.process.config),
                   "--ignore-formatted"]
            procs.append((node, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        for node, proc in procs:
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise ClusterError(f"formatting the storage of {node.kind} {node.id} took over {timeout:.0f}s") from None
            if proc.returncode != 0:
                tail = " | ".join(out.strip().splitlines()[-3:])
                raise ClusterError(f"cannot format the storage of {node.kind} {node.id}: {tail}")

    # ------------------------------------------------------------------ state file
    def save_state(self) -> None:
        state = {
            "version": 2,
            "base_dir": str(self.base_dir),
            "mode": self.mode,
            "secure": self.secure,
            "combined": self.combined,
            "kafka_version": self.kafka_version,
            "chroot": self.chroot,
            "detached": self.detached,
            "java": self._java,
            "classpath": self._classpath,
            "zk_classpath": self._zk_classpath,
            "bootstrap_servers": self.bootstrap_servers,
            "zk_hosts": self.zk_hosts,
            "zookeepers": [z.to_json() for z in self.zookeepers],
            "controllers": [c.to_json() for c in self.controllers if c.kind == "controller"],
            "combined_controllers": [c.id for c in self.controllers if c.kind == "broker"],
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
        mode = state.get("mode", "zookeeper")
        combined_ids = set(state.get("combined_controllers", []))
        c = cls(
            state["base_dir"],
            brokers=len(state["brokers"]),
            zookeepers=len(state["zookeepers"]),
            mode=mode,
            controllers=max(1, len(state.get("controllers", [])) + len(combined_ids)) if mode == "kraft" else 3,
            combined=bool(state.get("combined")),
            secure=bool(state.get("secure")),
            kafka_version=state.get("kafka_version"),
            chroot=state["chroot"],
            detached=state["detached"],
            broker_heap_mb=jvm.get("broker_heap_mb", 384),
            zookeeper_heap_mb=jvm.get("zookeeper_heap_mb", 256),
        )
        c._java, c._classpath = state["java"], state["classpath"]
        c._zk_classpath = state.get("zk_classpath", state["classpath"])
        c.zookeepers = [
            c._zookeeper_node(z["id"], z["port"], tuple(z["peer_ports"]) if z["peer_ports"] else (0, 0))
            for z in state["zookeepers"]
        ]
        c.brokers = [c._broker_node(b["id"], b["port"]) for b in state["brokers"]]
        dedicated = [c._controller_node(raw["id"], raw["port"]) for raw in state.get("controllers", [])]
        for b, raw in zip(c.brokers, state["brokers"], strict=True):
            b.controller_port = raw.get("controller_port")
        c.controllers = dedicated + [b for b in c.brokers if b.id in combined_ids]
        raws = state["zookeepers"] + state.get("controllers", []) + state["brokers"]
        for node, raw in zip(c.zookeepers + dedicated + c.brokers, raws, strict=True):
            node.process.pid = raw["pid"]
        return c


def _kraft_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as StorageTool
    makes), never starting with "-" (the storage tool would read it as an option; Kafka's
    own Uuid.randomUuid avoids those too)."""
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


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
