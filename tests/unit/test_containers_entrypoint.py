"""The images' entrypoints turn KAFKA_* / ZOOKEEPER_* variables into config files the
way the public images do, and ContainerCluster's encoding round-trips through them.
(The scripts run here with a stand-in ``java``; the container tests run them for real.)"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from kafkaops.testing.containers import to_env

BIN = Path(__file__).resolve().parents[2] / "compose" / "images" / "kafka" / "bin"


def run_entrypoint(name: str, tmp_path: Path, env: dict[str, str]) -> str:
    """Run an entrypoint with a stand-in ``java`` that records its arguments."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    java = fake / "java"
    java.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/java-args\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    base = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([str(BIN / name)], env={**base, **env}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return (tmp_path / "java-args").read_text()


def read_props(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_kafka_entrypoint_maps_env_to_server_properties(tmp_path: Path) -> None:
    props = {
        "broker.id": "2",
        "zookeeper.connect": "zk:2181/kafka",
        "advertised.listeners": "PLAINTEXT://10.0.0.3:9092",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
        "log.dirs": str(tmp_path / "data"),
        "listener.name.internal_x.some-setting": "v",  # "_" and "-" survive the encoding
    }
    env = to_env("KAFKA_", props)
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert env["KAFKA_LISTENER_NAME_INTERNAL__X_SOME___SETTING"] == "v"
    args = run_entrypoint("kafka-entrypoint", tmp_path, {
        **env, "KAFKA_CONFIG_DIR": str(tmp_path / "conf"), "KAFKA_RUN_UID": str(os.getuid()),
        "KAFKA_HEAP_OPTS": "-Xmx100m",
    })
    written = read_props(tmp_path / "conf" / "server.properties")
    # what the cluster asked for, plus listeners derived from the advertised ones; the
    # launcher variables (KAFKA_HEAP_OPTS...) are not properties
    assert written == {**props, "listeners": "PLAINTEXT://0.0.0.0:9092"}
    assert "-Xmx100m" in args.split()
    assert args.split()[-2:] == ["kafka.Kafka", f"{tmp_path}/conf/server.properties"]
    assert (tmp_path / "data").is_dir()


def test_kafka_entrypoint_requires_zookeeper_connect(tmp_path: Path) -> None:
    proc = subprocess.run([str(BIN / "kafka-entrypoint")], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://a:9092"})
    assert proc.returncode != 0 and "KAFKA_ZOOKEEPER_CONNECT" in proc.stderr


def test_zookeeper_entrypoint_maps_env_to_zoo_cfg(tmp_path: Path) -> None:
    data, logs = tmp_path / "zk-data", tmp_path / "zk-log"
    args = run_entrypoint("zookeeper-entrypoint", tmp_path, {
        "ZOOKEEPER_CONFIG_DIR": str(tmp_path / "conf"), "ZOOKEEPER_RUN_UID": str(os.getuid()),
        "ZOOKEEPER_DATA_DIR": str(data), "ZOOKEEPER_DATA_LOG_DIR": str(logs),
        "ZOOKEEPER_CLIENT_PORT": "2181", "ZOOKEEPER_TICK_TIME": "500",
        "ZOOKEEPER_AUTOPURGE_SNAP_RETAIN_COUNT": "3", "ZOOKEEPER_SERVER_ID": "2",
        "ZOOKEEPER_SERVERS": "a:2888:3888;b:2888:3888;c:2888:3888",
    })
    cfg = read_props(tmp_path / "conf" / "zoo.cfg")
    assert cfg["clientPort"] == "2181" and cfg["tickTime"] == "500"
    assert cfg["dataDir"] == str(data) and cfg["dataLogDir"] == str(logs)
    assert cfg["autopurge.snapRetainCount"] == "3"
    assert cfg["4lw.commands.whitelist"] == "srvr,ruok,mntr,stat"
    assert [cfg[f"server.{i}"] for i in (1, 2, 3)] == ["a:2888:3888", "b:2888:3888", "c:2888:3888"]
    assert "serverId" not in cfg and "servers" not in cfg
    assert (data / "myid").read_text().strip() == "2"
    assert args.split()[-2:] == ["org.apache.zookeeper.server.quorum.QuorumPeerMain", f"{tmp_path}/conf/zoo.cfg"]
