"""The configuration files of a local cluster's nodes, for both Kafka modes.

ZooKeeper mode (Kafka 3.9): brokers with ``zookeeper.connect`` under a chroot. KRaft
(Kafka 4.x): dedicated controllers (or combined broker+controller nodes) forming a
static quorum (``controller.quorum.voters``), brokers registering with it. In both,
the no-loss defaults (:func:`~kafkaops.local.readiness.broker_defaults`) and settings
that make failures show fast on a small machine: a killed broker is dropped after
``BROKER_SESSION_TIMEOUT_MS`` (its ZooKeeper session, or its KRaft broker session).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from kafkaops.local.readiness import BROKER_SESSION_TIMEOUT_MS, broker_defaults

ZK_TICK_MS = 500
ZK_SNAP_SIZE_LIMIT_KB = 64 * 1024
ZK_LARGE_REQUEST_BYTES = 128 * 1024
ZK_LARGE_REQUESTS_IN_FLIGHT = 16 * 1024 * 1024

LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.org.apache.kafka.controller=WARN
"""

_ZK_ONLY = ("zookeeper.session.timeout.ms", "zookeeper.connection.timeout.ms")

SHARE_GROUP_DEFAULTS = {
    # a dead share-group member leaves the group after 10 s (Kafka: 45 s, and 45 s at least)
    "group.share.min.session.timeout.ms": "6000",
    "group.share.session.timeout.ms": "10000",
    "group.share.min.heartbeat.interval.ms": "1000",
    "group.share.heartbeat.interval.ms": "2000",
    # records a dead member had acquired go back to the group after 10 s (Kafka: 30 s);
    # a group may ask for as little as 1 s (share.record.lock.duration.ms, a group config)
    "group.share.record.lock.duration.ms": "10000",
    "group.share.min.record.lock.duration.ms": "1000",
}
"""Share groups (Kafka 4.2+ brokers, on by default: ``share.version`` is a production
feature there) tuned like the rest of the local cluster, for failure tests in seconds."""


def zookeeper_cfg(data_dir: Path, port: int, ensemble: Sequence[tuple[int, int, int]], extra: Sequence[str] = ()) -> str:
    """zoo.cfg of one node; ``ensemble`` lists (id, quorum port, election port) when > 1 node.

    Sized for coordination data only (small znodes; checkpoint states live in a state
    backend, not here): snapshots every 10,000 transactions or 64 MB of transaction log,
    old snapshots purged hourly, at most 3 kept; requests over 128 KB count as large and
    at most 16 MB of them are accepted in flight (a client sending more is disconnected
    instead of the server running out of heap). ZooKeeper 3.8 keeps its last 500 committed
    transactions in heap whatever ``commitLogCount`` says (it refuses less than 500), so
    what really bounds its heap is that no kafkaops znode is large.
    """
    lines = [
        f"tickTime={ZK_TICK_MS}", "initLimit=20", "syncLimit=10",
        f"dataDir={data_dir}", f"clientPort={port}", "clientPortAddress=127.0.0.1",
        "maxClientCnxns=0", "admin.enableServer=false", "4lw.commands.whitelist=*",
        "autopurge.snapRetainCount=3", "autopurge.purgeInterval=1", "snapCount=10000",
        f"snapSizeLimitInKb={ZK_SNAP_SIZE_LIMIT_KB}",
        f"largeRequestThreshold={ZK_LARGE_REQUEST_BYTES}", f"largeRequestMaxBytes={ZK_LARGE_REQUESTS_IN_FLIGHT}",
        *extra,
    ]
    if len(ensemble) > 1:
        lines += [f"server.{i}=127.0.0.1:{q}:{e}" for i, q, e in ensemble]
    return "\n".join(lines) + "\n"


def zk_broker_properties(broker_id: int, port: int, data_dir: Path, zk_connect: str, brokers: int) -> dict[str, str]:
    """server.properties of a ZooKeeper-mode broker (plaintext listener)."""
    return {
        "broker.id": str(broker_id),
        "listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "log.dirs": str(data_dir),
        "zookeeper.connect": zk_connect,
        **broker_defaults(brokers),
    }


def kraft_properties(
    node_id: int,
    roles: Sequence[str],
    data_dir: Path,
    *,
    port: int | None,
    controller_port: int | None,
    voters: Mapping[int, int],
    brokers: int,
) -> dict[str, str]:
    """server.properties of a KRaft node: ``roles`` ⊆ {"broker", "controller"}; ``voters``
    maps controller node ids to their controller ports (a static quorum)."""
    listeners = []
    if "broker" in roles:
        listeners.append(f"PLAINTEXT://127.0.0.1:{port}")
    if "controller" in roles:
        listeners.append(f"CONTROLLER://127.0.0.1:{controller_port}")
    props = {
        "process.roles": ",".join(roles),
        "node.id": str(node_id),
        "listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "controller.quorum.voters": ",".join(f"{i}@127.0.0.1:{p}" for i, p in sorted(voters.items())),
        "log.dirs": str(data_dir),
        # the controllers fence a broker whose heartbeats stop for this long
        "broker.session.timeout.ms": str(BROKER_SESSION_TIMEOUT_MS),
        "broker.heartbeat.interval.ms": "1000",
        # share groups (KIP-932, "queues for Kafka"): their state topic, replicated like the rest
        "share.coordinator.state.topic.replication.factor": str(min(3, brokers)),
        "share.coordinator.state.topic.min.isr": "2" if brokers >= 3 else "1",
        "share.coordinator.state.topic.num.partitions": "10",
        **SHARE_GROUP_DEFAULTS,
    }
    if "broker" in roles:
        props["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{port}"
        props["inter.broker.listener.name"] = "PLAINTEXT"
    props.update({k: v for k, v in broker_defaults(brokers).items() if k not in _ZK_ONLY})
    return props


def write_properties(path: Path, props: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
