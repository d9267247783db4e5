"""KRaft logic without a cluster: DescribeQuorum answers, voter lag, the mode of a profile,
the monitor's controller rule on KRaft, and controller operations of BrokerControl.
The same behaviour on real Kafka 4.x clusters: tests/integration/test_kraft_*.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from kafkaops.config import ClusterProfile, ZooKeeperSettings
from kafkaops.local.cluster import LocalCluster
from kafkaops.local.configs import kraft_properties
from kafkaops.errors import ClusterError
from kafkaops.ops.brokers import DockerBrokerControl, ShellBrokerControl
from kafkaops.ops.events import diff_health
from kafkaops.ops.monitor_facts import ADMIN, QUORUM, FactModel, Facts
from kafkaops.quorum import QuorumError, kafka_mode, parse_quorum


def answer(leader: int = 102, hw: int = 100, leo: dict[int, int] | None = None, error: str | None = None) -> dict[str, Any]:
    leo = leo or {101: 100, 102: 100, 103: 100, 1: 100}
    member = lambda i: {"replica_id": i, "log_end_offset": leo[i], "last_caught_up_timestamp": 5000, "last_fetch_timestamp": 5000}  # noqa: E731
    return {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{
        "partition_index": 0, "error": error, "leader_id": leader, "leader_epoch": 7, "high_watermark": hw,
        "current_voters": [member(i) for i in (101, 102, 103)], "observers": [member(1)]}]}]}


def test_quorum_answer_parsed_with_lag_and_caught_up() -> None:
    state = parse_quorum(answer(leo={101: 100, 102: 104, 103: 90, 1: 99}))
    assert (state.leader_id, state.leader_epoch, state.high_watermark) == (102, 7, 100)
    assert state.voter_ids == (101, 102, 103)
    assert [state.lag(i) for i in (101, 102, 103, 1, 9)] == [0, 0, 10, 1, None]
    assert state.caught_up(101) and not state.caught_up(103) and not state.caught_up(9)
    assert state.caught_up(101, since_ms=4000) and not state.caught_up(101, since_ms=6000)
    assert state.caught_up(102, since_ms=6000)  # the leader is caught up by definition
    doc = state.to_json()
    assert doc["leader_id"] == 102 and [v["lag"] for v in doc["voters"]] == [0, 0, 10]


def test_quorum_errors_are_one_line() -> None:
    with pytest.raises(QuorumError, match="no leader right now"):
        parse_quorum(answer(leader=-1))
    with pytest.raises(QuorumError, match="describe quorum: NotLeader"):
        parse_quorum(answer(error="NotLeader"))
    with pytest.raises(QuorumError, match="unexpected DescribeQuorum answer"):
        parse_quorum({"topics": []})


def test_kafka_mode_of_a_profile_with_zookeeper_needs_no_cluster() -> None:
    zk_mode = ClusterProfile("h:9092", zookeeper=ZooKeeperSettings("zk:2181", kafka_chroot="/kafka"))
    kraft = ClusterProfile("h:9092", zookeeper=ZooKeeperSettings("zk:2181", kafka_chroot=None))
    assert kafka_mode(zk_mode) == "zookeeper" and kafka_mode(kraft) == "kraft"


def test_on_kraft_only_the_quorum_sets_the_controller() -> None:
    """Metadata's "controller" on KRaft is a random broker: Admin views must not move it,
    or every poll answered by another broker would be a ControllerChanged."""
    model = FactModel(zookeeper=False, quorum=True, settle=0.0)
    changed: dict[Any, str] = {}
    alive = [(("broker", b), True) for b in (1, 2, 3)]
    model.merge(Facts(ADMIN, [*alive, (("controller",), 1)], origin=1), changed)
    model.merge(Facts(QUORUM, [(("controller",), 101)]), changed)
    first = model.build()
    assert first.controller_id == 101
    for origin, random_broker in ((2, 3), (3, 2), (1, 1)):
        model.merge(Facts(ADMIN, [*alive, (("controller",), random_broker)], origin=origin), {})
    assert model.build().controller_id == 101
    changed = {}
    model.merge(Facts(QUORUM, [(("controller",), 103)]), changed)
    events = diff_health(first, model.build())
    assert [(e.type, e.previous, e.controller) for e in events] == [("ControllerChanged", 101, 103)]  # type: ignore[attr-defined]
    assert changed == {("controller",): QUORUM}


def test_kraft_node_properties() -> None:
    props = kraft_properties(101, ["controller"], Path("/d"), port=None, controller_port=9101,
                             voters={101: 9101, 102: 9102, 103: 9103}, brokers=3)
    assert props["process.roles"] == "controller" and props["listeners"] == "CONTROLLER://127.0.0.1:9101"
    assert props["controller.quorum.voters"] == "101@127.0.0.1:9101,102@127.0.0.1:9102,103@127.0.0.1:9103"
    assert "zookeeper.connect" not in props and "zookeeper.session.timeout.ms" not in props
    broker = kraft_properties(1, ["broker"], Path("/d"), port=9092, controller_port=None, voters={101: 9101}, brokers=3)
    assert broker["min.insync.replicas"] == "2" and broker["unclean.leader.election.enable"] == "false"
    assert broker["broker.session.timeout.ms"] == "6000" and "advertised.listeners" in broker


def test_local_cluster_modes_say_what_they_cannot_do(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="1, 3 or 5 controllers"):
        LocalCluster(tmp_path, mode="kraft", controllers=2)
    with pytest.raises(ClusterError, match="needs >= 3 brokers"):
        LocalCluster(tmp_path, mode="kraft", combined=True, brokers=1)
    with pytest.raises(ClusterError, match="not a KRaft cluster"):
        LocalCluster(tmp_path).controller(101)


def test_shell_and_docker_control_controllers(tmp_path: Path) -> None:
    log = tmp_path / "ops.log"
    shell = ShellBrokerControl({"stop": f"sh -c 'echo stop {{id}} {{host}} >> {log}'",
                                "start": f"sh -c 'echo start {{id}} {{host}} >> {log}'",
                                "controller_start": f"sh -c 'echo ctl-start {{id}} {{host}} >> {log}'"},
                               hosts={1: "kafka-a", 101: "ctl-a"})
    shell.stop_controller(101)  # no controller_stop template: the broker's
    shell.start_controller(101)
    assert log.read_text().splitlines() == ["stop 101 ctl-a", "ctl-start 101 ctl-a"]
    docker_log, exe = tmp_path / "docker.log", tmp_path / "docker"
    exe.write_text(f"#!/bin/sh\necho \"$@\" >> {docker_log}\n")
    exe.chmod(0o755)
    DockerBrokerControl(docker=str(exe)).start_controller(102)
    DockerBrokerControl({101: "kraft-controller-1"}, docker=str(exe)).stop_controller(101, timeout=60)
    assert docker_log.read_text().splitlines() == ["start controller-102", "stop -t 50 kraft-controller-1"]


ENTRYPOINT = Path(__file__).resolve().parents[2] / "compose" / "images" / "kafka" / "bin" / "kafka-entrypoint"


def run_kafka_entrypoint(tmp_path: Path, env: dict[str, str]) -> tuple[int, str, list[str]]:
    """The image's entrypoint with a stand-in ``java`` that appends its arguments to a file."""
    fake = tmp_path / "fakebin"
    fake.mkdir(exist_ok=True)
    (fake / "java").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/java-calls\n')
    (fake / "java").chmod(0o755)
    base = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path), "KAFKA_CONFIG_DIR": str(tmp_path / "conf"),
            "KAFKA_LOG_DIRS": str(tmp_path / "data"), "KAFKA_RUN_UID": "0"}
    proc = subprocess.run([str(ENTRYPOINT)], env={**base, **env}, capture_output=True, text=True, timeout=30)
    calls = (tmp_path / "java-calls").read_text().splitlines() if (tmp_path / "java-calls").exists() else []
    return proc.returncode, proc.stderr, calls


def test_kafka_image_entrypoint_formats_kraft_storage_then_starts(tmp_path: Path) -> None:
    env = {"KAFKA_PROCESS_ROLES": "controller", "KAFKA_NODE_ID": "101", "KAFKA_LISTENERS": "CONTROLLER://0.0.0.0:9093",
           "KAFKA_CONTROLLER_QUORUM_VOTERS": "101@c1:9093", "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
           "CLUSTER_ID": "a2Fma2FvcHMta3JhZnQtMQ"}
    rc, err, calls = run_kafka_entrypoint(tmp_path, env)
    assert rc == 0, err
    props = (tmp_path / "conf" / "server.properties").read_text()
    assert "process.roles=controller" in props and "node.id=101" in props and "cluster.id" not in props
    assert len(calls) == 2
    assert "kafka.tools.StorageTool format -t a2Fma2FvcHMta3JhZnQtMQ" in calls[0] and "--ignore-formatted" in calls[0]
    assert calls[1].endswith(f"kafka.Kafka {tmp_path}/conf/server.properties")


def test_kafka_image_entrypoint_names_what_kraft_lacks(tmp_path: Path) -> None:
    rc, err, calls = run_kafka_entrypoint(tmp_path, {"KAFKA_PROCESS_ROLES": "broker", "KAFKA_NODE_ID": "1",
                                                    "KAFKA_CONTROLLER_QUORUM_VOTERS": "101@c1:9093"})
    assert rc != 0 and "CLUSTER_ID" in err and calls == []
    rc, err, _ = run_kafka_entrypoint(tmp_path, {})
    assert rc != 0 and "KAFKA_PROCESS_ROLES for KRaft" in err
