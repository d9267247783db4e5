"""The compose files run as they are: compose/docker-compose.yml (ZooKeeper + 3 brokers,
Kafka 3.9) and compose/docker-compose.kraft.yml (3 KRaft controllers + 3 brokers, Kafka
4.x, and kafkaops' ZooKeeper) become healthy, and records produced with acks=all to an
RF-3 topic are consumed back; on KRaft the metadata quorum elects a new active controller
when the active one's container is killed, and the cluster keeps taking writes.

Images: $KAFKA_IMAGE / $ZOOKEEPER_IMAGE when set (e.g. the public images the compose
files default to; $KRAFT_KAFKA_IMAGE for the KRaft file), else the locally built kafkaops
images (CI has no registry).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import ConfigResource

from kafkaops.admin import admin_client, create_topic
from kafkaops.quorum import describe_quorum
from kafkaops.testing.containers import DEFAULT_KAFKA_IMAGE, DEFAULT_ZOOKEEPER_IMAGE, _docker
from kafkaops.testing.waits import wait_until
from tests.kafka_io import consume_all, produce, replicas_and_isr

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
KRAFT_COMPOSE_FILE = COMPOSE_DIR / "docker-compose.kraft.yml"
SERVICES = ("zookeeper", "kafka-1", "kafka-2", "kafka-3")
KRAFT_SERVICES = (*SERVICES, "controller-1", "controller-2", "controller-3")
DEFAULT_KRAFT_KAFKA_IMAGE = "kafkaops/kafka:4.4.0"


def compose_command() -> list[str]:
    """``docker compose`` (v2 plugin) if it works, else ``docker-compose`` (v1)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Compose:
    def __init__(self, file: Path = COMPOSE_FILE, kafka_image: str | None = None) -> None:
        self.project = f"kafkaops-compose-{uuid.uuid4().hex[:8]}"
        ports = free_ports(4)
        self.env = {
            **os.environ,
            "KAFKA_IMAGE": kafka_image or os.environ.get("KAFKA_IMAGE", DEFAULT_KAFKA_IMAGE),
            "ZOOKEEPER_IMAGE": os.environ.get("ZOOKEEPER_IMAGE", DEFAULT_ZOOKEEPER_IMAGE),
            "KAFKA_1_PORT": str(ports[0]), "KAFKA_2_PORT": str(ports[1]), "KAFKA_3_PORT": str(ports[2]),
            "ZOOKEEPER_PORT": str(ports[3]),
        }
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports[:3])
        self.cmd = [*compose_command(), "-p", self.project, "-f", str(file)]

    def run(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run([*self.cmd, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def containers(self) -> dict[str, Any]:
        client = _docker()
        found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"})
        return {c.labels.get("com.docker.compose.service", c.name): c for c in found}

    def health(self) -> dict[str, str]:
        return {service: c.attrs["State"].get("Health", {}).get("Status", c.status)
                for service, c in self.containers().items()}

    def up_healthy(self, services: tuple[str, ...], timeout: float = 300) -> None:
        self.run("config", "-q")
        self.run("up", "-d")
        deadline = time.monotonic() + timeout
        while (health := self.health()) != {s: "healthy" for s in services}:
            assert "unhealthy" not in health.values(), f"unhealthy service: {health}\n{self.run('logs', '--tail', '40')}"
            assert time.monotonic() < deadline, f"not healthy after {timeout:.0f}s: {health}\n{self.run('logs', '--tail', '40')}"
            time.sleep(2)

    def down(self) -> None:
        subprocess.run([*self.cmd, "down", "-v", "--remove-orphans", "-t", "20"], env=self.env,
                       capture_output=True, timeout=300)


@pytest.fixture
def compose() -> Iterator[Compose]:
    c = Compose()
    try:
        yield c
    finally:
        c.down()


@pytest.fixture
def kraft_compose() -> Iterator[Compose]:
    c = Compose(KRAFT_COMPOSE_FILE, os.environ.get("KRAFT_KAFKA_IMAGE", DEFAULT_KRAFT_KAFKA_IMAGE))
    try:
        yield c
    finally:
        c.down()


def assert_no_loss_round_trip(bootstrap: str) -> str:
    """An RF-3 topic with the compose file's no-loss defaults; 500 records produced (acks=all) and consumed back."""
    md = admin_client(bootstrap).list_topics(timeout=30)  # published ports, advertised 127.0.0.1
    assert sorted(md.brokers) == [1, 2, 3]
    topic = f"compose-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 3, 3)
    assert all(replicas == [1, 2, 3] for replicas, _ in replicas_and_isr(bootstrap, topic).values())
    admin = admin_client(bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(timeout=30)
    assert configs["min.insync.replicas"].value == "2"
    assert configs["unclean.leader.election.enable"].value == "false"
    values = [f"compose-{i}".encode() for i in range(500)]
    assert sorted(produce(bootstrap, topic, values)) == sorted(values)
    assert sorted(consume_all(bootstrap, topic, len(values))) == sorted(values)
    return topic


def test_kraft_compose_cluster_round_trips_and_survives_the_active_controller(kraft_compose: Compose) -> None:
    kraft_compose.up_healthy(KRAFT_SERVICES)
    assert_no_loss_round_trip(kraft_compose.bootstrap)
    quorum = describe_quorum(kraft_compose.bootstrap)
    assert quorum.voter_ids == (101, 102, 103) and quorum.leader_id in quorum.voter_ids
    assert sorted(m.node_id for m in quorum.observers) == [1, 2, 3]

    # the active controller's container dies: the other two voters elect a new leader
    kraft_compose.containers()[f"controller-{quorum.leader_id - 100}"].kill()
    new = wait_until(lambda: _leader_other_than(kraft_compose.bootstrap, quorum.leader_id), 60,
                     "a new active controller")
    assert new in (101, 102, 103) and new != quorum.leader_id
    topic = f"after-{uuid.uuid4().hex[:8]}"
    create_topic(kraft_compose.bootstrap, topic, 3, 3)  # topic creation goes through the new controller
    values = [f"after-{i}".encode() for i in range(200)]
    assert sorted(produce(kraft_compose.bootstrap, topic, values)) == sorted(values)


def _leader_other_than(bootstrap: str, old: int) -> int | None:
    try:
        leader = describe_quorum(bootstrap, timeout=5).leader_id
    except Exception:  # noqa: BLE001 - no leader while the election runs
        return None
    return leader if leader != old else None


def test_compose_cluster_becomes_healthy_and_round_trips(compose: Compose) -> None:
    compose.up_healthy(SERVICES)
    assert_no_loss_round_trip(compose.bootstrap)
