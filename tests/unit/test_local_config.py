"""Pure logic of the local cluster: broker settings, distribution resolution errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kafkaops.config import Settings
from kafkaops.errors import ClusterError, DistributionError, NoClusterError
from kafkaops.local import distribution
from kafkaops.local.cluster import LocalCluster


def _props(n: int) -> dict[str, str]:
    cluster = LocalCluster("/tmp/not-started", brokers=n)
    cluster.zookeepers = [cluster._zookeeper_node(1, 2181, (0, 0))]
    cluster.brokers = [cluster._broker_node(i + 1, 9092 + i) for i in range(n)]
    return cluster.broker_properties(cluster.brokers[0])


def test_three_brokers_keep_no_loss_defaults() -> None:
    p = _props(3)
    assert p["default.replication.factor"] == "3"
    assert p["min.insync.replicas"] == "2"
    assert p["unclean.leader.election.enable"] == "false"
    assert p["offsets.topic.replication.factor"] == "3"
    assert p["transaction.state.log.min.isr"] == "2"
    assert p["zookeeper.connect"] == "127.0.0.1:2181/kafka"
    assert p["group.initial.rebalance.delay.ms"] == "0"


def test_small_clusters_scale_replication_down() -> None:
    p = _props(1)
    assert p["default.replication.factor"] == "1"
    assert p["min.insync.replicas"] == "1"
    assert _props(5)["default.replication.factor"] == "3"


def test_overrides_win() -> None:
    cluster = LocalCluster("/tmp/x", brokers=3, broker_config={"num.partitions": "12"})
    cluster.zookeepers = [cluster._zookeeper_node(1, 2181, (0, 0))]
    cluster.brokers = [cluster._broker_node(1, 9092)]
    assert cluster.broker_properties(cluster.brokers[0])["num.partitions"] == "12"


@pytest.mark.parametrize("kwargs", [{"brokers": 0}, {"zookeepers": 2}])
def test_bad_shapes_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ClusterError):
        LocalCluster("/tmp/x", **kwargs)


def test_unknown_broker_is_named(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, brokers=3)
    cluster.brokers = [cluster._broker_node(i, 9000 + i) for i in (1, 2, 3)]
    with pytest.raises(ClusterError, match="no broker 7 .*brokers: 1, 2, 3"):
        cluster.kill_broker(7)


def test_attach_without_state_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(NoClusterError, match="kafkaops up"):
        LocalCluster.attach(tmp_path)


def test_attach_with_corrupt_state(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text("{not json")
    with pytest.raises(ClusterError, match="unreadable"):
        LocalCluster.attach(tmp_path)


def _settings(tmp_path: Path, kafka_home: Path | None = None) -> Settings:
    return Settings(home=tmp_path / "h", cache_dir=tmp_path / "c", kafka_version="3.9.2", kafka_home=kafka_home)


def test_kafka_home_without_jars(tmp_path: Path) -> None:
    with pytest.raises(DistributionError, match="no libs/kafka_2"):
        distribution.resolve(_settings(tmp_path, kafka_home=tmp_path))


def test_kafka_home_without_zookeeper(tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "kafka_2.13-4.0.0.jar").write_bytes(b"")
    with pytest.raises(DistributionError, match="ZooKeeper mode"):
        distribution.resolve(_settings(tmp_path, kafka_home=tmp_path))


def test_kafka_home_is_used(tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    for jar in ("kafka_2.13-3.9.2.jar", "zookeeper-3.8.4.jar"):
        (tmp_path / "libs" / jar).write_bytes(b"")
    dist = distribution.resolve(_settings(tmp_path, kafka_home=tmp_path))
    assert dist.version == "3.9.2"
    assert dist.classpath == str(tmp_path / "libs" / "*")


def test_missing_maven_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither mvn nor java here
    with pytest.raises(DistributionError, match="install Apache Maven"):
        distribution.resolve(_settings(tmp_path))


def test_missing_java_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mvn = tmp_path / "mvn"
    fake_mvn.write_text("#!/bin/sh\nexit 1\n")
    fake_mvn.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DistributionError, match="Java 17"):
        distribution.resolve(_settings(tmp_path))


def test_failed_resolution_shows_maven_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = Path(os.popen("command -v java").read().strip())
    fake_mvn = tmp_path / "mvn"
    fake_mvn.write_text("#!/bin/sh\necho 'Could not resolve dependencies: no such version'\nexit 1\n")
    fake_mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{java.parent}")
    with pytest.raises(DistributionError, match="Could not resolve dependencies"):
        distribution.resolve(_settings(tmp_path))
    assert not (tmp_path / "c" / "kafka-3.9.2" / "libs").exists()
