"""compose/docker-compose.yml runs as it is: ZooKeeper + 3 brokers become healthy, and
records produced with acks=all to an RF-3 topic are consumed back.

Images: $KAFKA_IMAGE / $ZOOKEEPER_IMAGE when set (e.g. the public Confluent images the
compose file defaults to), else the locally built kafkaops images (CI has no registry).
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

import pytest
from confluent_kafka.admin import ConfigResource

from kafkaops.admin import admin_client, create_topic
from kafkaops.testing.containers import DEFAULT_KAFKA_IMAGE, DEFAULT_ZOOKEEPER_IMAGE, _docker
from tests.kafka_io import consume_all, produce, replicas_and_isr

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"
SERVICES = ("zookeeper", "kafka-1", "kafka-2", "kafka-3")


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
    def __init__(self) -> None:
        self.project = f"kafkaops-compose-{uuid.uuid4().hex[:8]}"
        ports = free_ports(4)
        self.env = {
            **os.environ,
            "KAFKA_IMAGE": os.environ.get("KAFKA_IMAGE", DEFAULT_KAFKA_IMAGE),
            "ZOOKEEPER_IMAGE": os.environ.get("ZOOKEEPER_IMAGE", DEFAULT_ZOOKEEPER_IMAGE),
            "KAFKA_1_PORT": str(ports[0]), "KAFKA_2_PORT": str(ports[1]), "KAFKA_3_PORT": str(ports[2]),
            "ZOOKEEPER_PORT": str(ports[3]),
        }
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports[:3])
        self.cmd = [*compose_command(), "-p", self.project, "-f", str(COMPOSE_FILE)]

    def run(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run([*self.cmd, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def health(self) -> dict[str, str]:
        client = _docker()
        out = {}
        for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"}):
            service = c.labels.get("com.docker.compose.service", c.name)
            out[service] = c.attrs["State"].get("Health", {}).get("Status", c.status)
        return out


@pytest.fixture
def compose() -> Iterator[Compose]:
    c = Compose()
    try:
        yield c
    finally:
        subprocess.run([*c.cmd, "down", "-v", "--remove-orphans", "-t", "20"], env=c.env,
                       capture_output=True, timeout=300)


def test_compose_cluster_becomes_healthy_and_round_trips(compose: Compose) -> None:
    compose.run("config", "-q")
    compose.run("up", "-d")
    deadline = time.monotonic() + 300
    while (health := compose.health()) != {s: "healthy" for s in SERVICES}:
        assert "unhealthy" not in health.values(), f"unhealthy service: {health}\n{compose.run('logs', '--tail', '40')}"
        assert time.monotonic() < deadline, f"not healthy after 300s: {health}\n{compose.run('logs', '--tail', '40')}"
        time.sleep(2)

    md = admin_client(compose.bootstrap).list_topics(timeout=30)  # published ports, advertised 127.0.0.1
    assert sorted(md.brokers) == [1, 2, 3]
    topic = f"compose-{uuid.uuid4().hex[:8]}"
    create_topic(compose.bootstrap, topic, 3, 3)
    assert all(replicas == [1, 2, 3] for replicas, _ in replicas_and_isr(compose.bootstrap, topic).values())
    # the compose file's no-loss defaults reach the brokers
    admin = admin_client(compose.bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(timeout=30)
    assert configs["min.insync.replicas"].value == "2"
    assert configs["unclean.leader.election.enable"].value == "false"

    values = [f"compose-{i}".encode() for i in range(500)]
    assert sorted(produce(compose.bootstrap, topic, values)) == sorted(values)
    assert sorted(consume_all(compose.bootstrap, topic, len(values))) == sorted(values)
