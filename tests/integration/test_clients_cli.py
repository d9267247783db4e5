"""`kafkaops schema|produce|consume` against the session cluster."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from kafkaops.cli import app
from kafkaops.errors import KafkaopsError
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory

ROOT = Path(__file__).resolve().parents[2]


def test_schema_produce_consume_commands(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    runner = CliRunner()
    conn = ["-b", kafka_cluster.bootstrap_servers, "--zookeeper", kafka_cluster.zk_hosts]
    zk = ["--zookeeper", kafka_cluster.zk_hosts]
    topic = kafka_topic(partitions=2, prefix="cli")
    subject = f"{topic}-value"

    r = runner.invoke(app, ["schema", "register", subject, str(ROOT / "schemas/iot-device-reading-v1.avsc"), *zk])
    assert r.exit_code == 0 and "version 1" in r.stdout, r.output
    r = runner.invoke(app, ["schema", "check", subject, str(ROOT / "schemas/iot-device-reading-v2.avsc"), *zk])
    assert r.exit_code == 0 and "compatible" in r.stdout, r.output
    r = runner.invoke(app, ["schema", "check", subject, str(ROOT / "schemas/order-v1.avsc"), *zk])
    assert isinstance(r.exception, KafkaopsError) and "DeviceReading" in str(r.exception)

    r = runner.invoke(app, ["produce", topic, "--schema", str(ROOT / "schemas/iot-device-reading-v2.avsc"),
                            "--generate", "4", *conn])
    assert r.exit_code == 0 and "produced 4 records" in r.stdout and "version 2" in r.stdout, r.output
    line = {"device_id": "d1", "sensor": "temp", "value": 21.5, "unit": "C", "measured_at": 1700000000000}
    r = runner.invoke(app, ["produce", topic, "--schema", str(ROOT / "schemas/iot-device-reading-v1.avsc"),
                            "--key-field", "device_id", *conn], input=json.dumps(line) + "\n\n")
    assert r.exit_code == 0 and "produced 1 records" in r.stdout, r.output
    r = runner.invoke(app, ["produce", topic, "--schema", str(ROOT / "schemas/iot-device-reading-v1.avsc"), *conn],
                      input="{not json\n")
    assert isinstance(r.exception, KafkaopsError) and "line 1" in str(r.exception)

    r = runner.invoke(app, ["schema", "list", "--json", *zk])
    listed = {row["subject"]: row for row in json.loads(r.stdout)}
    assert listed[subject]["versions"] == [1, 2]
    r = runner.invoke(app, ["schema", "show", subject, "--version", "2", *zk])
    assert json.loads(r.stdout)["version"] == 2

    r = runner.invoke(app, ["consume", topic, "--group", f"g-{uuid.uuid4().hex[:6]}", "--max", "5", *conn])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 5 and all(row["topic"] == topic for row in rows)
    mine = [row for row in rows if row["key"] == "d1"]
    assert len(mine) == 1 and mine[0]["value"]["sensor"] == "temp" and mine[0]["value"]["value"] == 21.5
    assert "measured_at" in mine[0]["value"]

    r = runner.invoke(app, ["consume", f"{topic}-missing", "--group", "g", "--max", "1", *conn])
    assert isinstance(r.exception, KafkaopsError) and "does not exist" in str(r.exception)


def test_commands_reach_the_cluster_through_a_profile(kafka_cluster: LocalCluster, kafka_topic: TopicFactory,
                                                      tmp_path: Path) -> None:
    """--profile alone (no -b, no -z, no local cluster): a shipped schema by name, produce, consume, schemas."""
    profile = str(kafka_cluster.profile.save(tmp_path / "profile.yaml"))
    runner = CliRunner(env={"KAFKAOPS_HOME": str(tmp_path / "no-local-cluster")})
    topic = kafka_topic(partitions=1, prefix="cli-profile")

    r = runner.invoke(app, ["produce", topic, "--schema", "order-v2", "--generate", "3", "--profile", profile])
    assert r.exit_code == 0 and "produced 3 records" in r.stdout, r.output
    r = runner.invoke(app, ["consume", topic, "--group", f"g-{uuid.uuid4().hex[:6]}", "--max", "3", "--profile", profile])
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["offset"] for x in r.stdout.splitlines()] == [0, 1, 2]
    r = runner.invoke(app, ["schema", "show", f"{topic}-value", "--profile", profile])
    assert r.exit_code == 0 and json.loads(r.stdout)["schema"]["name"] == "Order", r.output
