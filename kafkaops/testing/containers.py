"""ContainerCluster: the LocalCluster interface, with ZooKeeper and brokers as containers.

The pytest fixtures run on it when the backend is ``containers`` (``--kafka-backend=
containers`` or ``KAFKAOPS_BACKEND=containers``). Nodes run the ``kafkaops/kafka`` and
``kafkaops/zookeeper`` images (``make images``; any image with the same ``KAFKA_*`` /
``ZOOKEEPER_*`` conventions works) through testcontainers, on a private bridge network
with fixed addresses: brokers advertise their network address, which both the test
process (Linux routes to bridge networks) and the other brokers reach, and which a
broker keeps across stop/start and network disconnect/reconnect. Beyond LocalCluster,
``disconnect_broker`` / ``reconnect_broker`` cut a broker off the network (a partition).

Same no-loss defaults as LocalCluster: replication factor min(3, N),
``min.insync.replicas=2``, unclean leader election off. The engine, images and
leftovers are :mod:`kafkaops.testing.containers_engine`; a node and its container,
:mod:`kafkaops.testing.containers_node`.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kafkaops.errors import ClusterError
from kafkaops.local.configs import ZK_TICK_MS
from kafkaops.local.readiness import ClusterReadiness, broker_defaults, check_shape
from kafkaops.testing.containers_engine import (
    DEFAULT_KAFKA_IMAGE,
    DEFAULT_ZOOKEEPER_IMAGE,
    KAFKA_IMAGE_ENV,
    ZOOKEEPER_IMAGE_ENV,
    docker_client,
    owner_labels,
    remove_leftovers,
    require_image,
    to_env,
)
from kafkaops.testing.containers_node import ContainerNode, ContainerProcess, zookeeper_serves

__all__ = [
    "DEFAULT_KAFKA_IMAGE", "DEFAULT_ZOOKEEPER_IMAGE", "KAFKA_IMAGE_ENV", "ZOOKEEPER_IMAGE_ENV",
    "ContainerCluster", "ContainerNode", "ContainerProcess", "remove_leftovers", "to_env",
]

log = logging.getLogger(__name__)

BROKER_PORT = 9092
ZOOKEEPER_PORT = 2181
_SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
_docker = docker_client  # the name tests/containers use


class ContainerCluster(ClusterReadiness[ContainerNode]):
    """ZooKeeper + Kafka brokers as containers; the interface of LocalCluster.

    Accepts LocalCluster's keyword arguments (``base_dir`` holds container logs;
    ``detached`` is ignored: containers die with the cluster object's owner, or are
    removed as leftovers by the next cluster that starts).
    """

    def __init__(
        self,
        base_dir: Path | str | None = None,
        *,
        brokers: int = 3,
        zookeepers: int = 1,
        broker_config: dict[str, str] | None = None,
        broker_heap_mb: int = 384,
        zookeeper_heap_mb: int = 128,
        chroot: str = "/kafka",
        detached: bool = False,
        kafka_image: str | None = None,
        zookeeper_image: str | None = None,
    ) -> None:
        check_shape(brokers, zookeepers)
        del detached
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="kafkaops-containers-"))
        self.chroot = chroot
        self.broker_config = dict(broker_config or {})
        self.broker_heap_mb = broker_heap_mb
        self.zookeeper_heap_mb = zookeeper_heap_mb
        self.kafka_image = kafka_image or os.environ.get(KAFKA_IMAGE_ENV, DEFAULT_KAFKA_IMAGE)
        self.zookeeper_image = zookeeper_image or os.environ.get(ZOOKEEPER_IMAGE_ENV, DEFAULT_ZOOKEEPER_IMAGE)
        self.cluster_id = f"{os.getpid()}-{random.getrandbits(32):08x}"
        self.zookeepers: list[ContainerNode] = []
        self.brokers: list[ContainerNode] = []
        self._n_brokers = brokers
        self._n_zookeepers = zookeepers
        self._network: Any = None  # testcontainers Network
        self._client: Any = None
        self._atexit_registered = False

    # ------------------------------------------------------------------ addresses
    @property
    def network_name(self) -> str | None:
        return self._network.name if self._network is not None else None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 300.0) -> ContainerCluster:
        """Create the network and containers; wait until every broker serves metadata."""
        from docker.types import IPAMConfig, IPAMPool  # type: ignore[import-untyped]
        from testcontainers.core.network import Network

        self._client = docker_client()
        remove_leftovers(self._client)
        for image in (self.zookeeper_image, self.kafka_image):
            require_image(self._client, image)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self._atexit_registered:
            atexit.register(self.destroy)
            self._atexit_registered = True
        began = time.monotonic()
        try:
            subnet = self._create_network(Network, IPAMConfig, IPAMPool)
            hosts = subnet.hosts()
            next(hosts)  # the gateway (the host side of the bridge)
            zk_ips = [str(next(hosts)) for _ in range(self._n_zookeepers)]
            broker_ips = [str(next(hosts)) for _ in range(self._n_brokers)]
            self.zookeepers = [self._zookeeper_node(i + 1, ip, zk_ips) for i, ip in enumerate(zk_ips)]
            self.brokers = [self._broker_node(i + 1, ip) for i, ip in enumerate(broker_ips)]
            for node in self.zookeepers:
                self._create(node)
            self._wait_zookeeper(timeout)
            for node in self.brokers:
                self._create(node)
            self.wait_brokers([b.id for b in self.brokers], timeout)
            self._create_offsets_topic(timeout)
        except BaseException:
            self.destroy()
            raise
        log.info(
            "container cluster %s up in %.1fs: bootstrap %s, zookeeper %s",
            self.cluster_id, time.monotonic() - began, self.bootstrap_servers, self.zk_connect,
        )
        return self

    def stop(self, graceful: bool = True, timeout: float = 30.0) -> None:
        """Stop brokers (controlled shutdown when graceful), then ZooKeeper; keep the containers."""
        for group in (self.brokers, self.zookeepers):
            threads = [
                threading.Thread(target=self._stop_node, args=(n, graceful, timeout), daemon=True) for n in group
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout + 30)

    def destroy(self) -> None:
        """Remove every container, the network and the log directory."""
        for node in self.brokers + self.zookeepers:
            c = node.process.container
            if c is None:
                continue
            try:
                c.remove(force=True, v=True)
            except Exception as exc:  # noqa: BLE001 - already gone
                log.debug("removing %s: %s", node.name, exc)
            node.process.container = None
        if self._network is not None:
            try:
                self._network.remove()
            except Exception as exc:  # noqa: BLE001
                log.warning("could not remove network %s: %s", self._network.name, exc)
            self._network = None
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> ContainerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # ------------------------------------------------------------------ node control
    def kill_broker(self, broker_id: int) -> None:
        """SIGKILL: the broker vanishes without controlled shutdown."""
        self._kill(self.broker(broker_id))

    def stop_broker(self, broker_id: int, timeout: float = 60.0) -> None:
        """SIGTERM: controlled shutdown (leadership moves first), SIGKILL after timeout."""
        self._stop_node(self.broker(broker_id), True, timeout)

    def start_broker(self, broker_id: int, wait: bool = True, timeout: float = 90.0) -> None:
        """Start a stopped broker again: same id, address and data."""
        node = self.broker(broker_id)
        if node.process.is_running():
            raise ClusterError(f"broker {broker_id} is already running ({node.name})")
        self._wait_registration_gone(broker_id)
        node.process.container.start()
        log.info("started %s", node.name)
        if wait:
            self.wait_brokers([broker_id], timeout)

    def restart_broker(self, broker_id: int, timeout: float = 90.0) -> None:
        self.stop_broker(broker_id)
        self.start_broker(broker_id, timeout=timeout)

    def pause_broker(self, broker_id: int) -> None:
        """Freeze the container (cgroup freezer): a long GC pause or a hung disk."""
        self._pause(self.broker(broker_id))

    def resume_broker(self, broker_id: int) -> None:
        self._resume(self.broker(broker_id))

    def disconnect_broker(self, broker_id: int) -> None:
        """Cut the broker off the network: ZooKeeper, the other brokers and clients lose it."""
        self._disconnect(self.broker(broker_id))

    def reconnect_broker(self, broker_id: int) -> None:
        """Put the broker back on the network at its old address."""
        self._reconnect(self.broker(broker_id))

    def kill_zookeeper(self, node_id: int) -> None:
        self._kill(self.zookeeper(node_id))

    def stop_zookeeper(self, node_id: int, timeout: float = 30.0) -> None:
        self._stop_node(self.zookeeper(node_id), True, timeout)

    def start_zookeeper(self, node_id: int) -> None:
        node = self.zookeeper(node_id)
        if node.process.is_running():
            raise ClusterError(f"ZooKeeper node {node_id} is already running")
        node.process.container.start()

    def pause_zookeeper(self, node_id: int) -> None:
        self._pause(self.zookeeper(node_id))

    def resume_zookeeper(self, node_id: int) -> None:
        self._resume(self.zookeeper(node_id))

    def disconnect_zookeeper(self, node_id: int) -> None:
        self._disconnect(self.zookeeper(node_id))

    def reconnect_zookeeper(self, node_id: int) -> None:
        self._reconnect(self.zookeeper(node_id))

    def _kill(self, node: ContainerNode) -> None:
        if node.process.is_running():
            node.process.container.kill()
            node.process.wait_exit(30)
        log.info("killed %s", node.name)

    def _stop_node(self, node: ContainerNode, graceful: bool, timeout: float) -> None:
        if not node.process.is_running():
            return
        if node.process.is_paused():
            node.process.container.unpause()
        if graceful:
            node.process.container.stop(timeout=int(timeout))
        else:
            node.process.container.kill()
        node.process.wait_exit(30)
        log.info("stopped %s", node.name)

    def _pause(self, node: ContainerNode) -> None:
        if not node.process.is_running():
            raise ClusterError(f"{node.kind} {node.id} is not running")
        if not node.process.is_paused():
            node.process.container.pause()

    def _resume(self, node: ContainerNode) -> None:
        if not node.process.is_running():
            raise ClusterError(f"{node.kind} {node.id} is not running")
        if node.process.is_paused():
            node.process.container.unpause()

    def _disconnect(self, node: ContainerNode) -> None:
        if node.connected:
            self._network._unwrap_network.disconnect(node.process.container, force=True)
            node.connected = False
            log.info("disconnected %s from %s", node.name, self._network.name)

    def _reconnect(self, node: ContainerNode) -> None:
        if not node.connected:
            self._network._unwrap_network.connect(
                node.process.container, ipv4_address=node.ip, aliases=[node.name]
            )
            node.connected = True
            log.info("reconnected %s at %s", node.name, node.ip)

    # ------------------------------------------------------------------ readiness
    def _zookeeper_serves(self, node: ContainerNode) -> bool:
        return zookeeper_serves(node.ip, node.port)

    def _logs_hint(self, nodes: Iterable[ContainerNode]) -> str:
        node = next(iter(nodes), None)
        if node is None:
            return ""
        return f"; last lines of {node.name}:\n{node.process.logs_tail()}"

    # ------------------------------------------------------------------ configuration
    def broker_properties(self, node: ContainerNode) -> dict[str, str]:
        """The server.properties of one broker (LocalCluster's, at the container's address)."""
        props = {
            "broker.id": str(node.id),
            "listeners": f"PLAINTEXT://0.0.0.0:{node.port}",
            "advertised.listeners": f"PLAINTEXT://{node.ip}:{node.port}",
            "log.dirs": "/var/lib/kafka/data",
            "zookeeper.connect": self.zk_connect,
            **broker_defaults(self._n_brokers),
        }
        props.update(self.broker_config)
        return props

    def _name(self, kind: str, node_id: int) -> str:
        return f"kafkaops-{self.cluster_id}-{kind}-{node_id}"

    def _zookeeper_node(self, node_id: int, ip: str, ensemble: list[str]) -> ContainerNode:
        env = {
            "ZOOKEEPER_CLIENT_PORT": str(ZOOKEEPER_PORT),
            "ZOOKEEPER_TICK_TIME": str(ZK_TICK_MS),
            "ZOOKEEPER_INIT_LIMIT": "20",
            "ZOOKEEPER_SYNC_LIMIT": "10",
            "ZOOKEEPER_MAX_CLIENT_CNXNS": "0",
            "ZOOKEEPER_4LW_COMMANDS_WHITELIST": "*",
            "KAFKA_HEAP_OPTS": f"-Xmx{self.zookeeper_heap_mb}m -Xms{min(self.zookeeper_heap_mb, 64)}m",
        }
        if len(ensemble) > 1:
            env["ZOOKEEPER_SERVER_ID"] = str(node_id)
            env["ZOOKEEPER_SERVERS"] = ";".join(f"{peer}:2888:3888" for peer in ensemble)
        proc = ContainerProcess(self._name("zookeeper", node_id), log_dir=self.base_dir)
        return ContainerNode("zookeeper", node_id, ip, ZOOKEEPER_PORT, proc, env)

    def _broker_node(self, broker_id: int, ip: str) -> ContainerNode:
        proc = ContainerProcess(self._name("broker", broker_id), log_dir=self.base_dir)
        node = ContainerNode("broker", broker_id, ip, BROKER_PORT, proc, {})
        node.env = to_env("KAFKA_", self.broker_properties(node))
        node.env["KAFKA_HEAP_OPTS"] = f"-Xmx{self.broker_heap_mb}m -Xms{min(self.broker_heap_mb, 128)}m"
        return node

    def _create_network(self, network_cls: Any, ipam_cls: Any, pool_cls: Any) -> ipaddress.IPv4Network:
        """A bridge network on a free /24 of 10.213.0.0/16 (fixed addresses need a subnet)."""
        subnets: list[ipaddress.IPv4Network] = list(_SUBNETS.subnets(new_prefix=24))
        random.shuffle(subnets)
        last: Exception | None = None
        for subnet in subnets[:20]:
            gateway = str(next(subnet.hosts()))
            network = network_cls(
                docker_network_kw={
                    "driver": "bridge",
                    "ipam": ipam_cls(pool_configs=[pool_cls(subnet=str(subnet), gateway=gateway)]),
                    "labels": owner_labels(self.cluster_id),
                }
            )
            try:
                network.create()
            except Exception as exc:  # noqa: BLE001 - subnet taken: try another
                last = exc
                continue
            self._network = network
            return subnet
        raise ClusterError(f"could not create a docker network: {last}")

    def _create(self, node: ContainerNode) -> None:
        from docker.types import EndpointConfig
        from testcontainers.core.container import DockerContainer

        image = self.zookeeper_image if node.kind == "zookeeper" else self.kafka_image
        tc = (
            DockerContainer(image)
            .with_name(node.name)
            .with_envs(**node.env)
            .with_kwargs(
                network=self._network.name,
                networking_config={
                    self._network.name: EndpointConfig(
                        self._client.api._version, ipv4_address=node.ip, aliases=[node.name]
                    )
                },
                labels=owner_labels(self.cluster_id),
                hostname=f"{node.kind}-{node.id}",
            )
        )
        tc.start()
        node.process.container = tc.get_wrapped_container()
        log.info("created %s at %s (%s)", node.name, node.address, image)

