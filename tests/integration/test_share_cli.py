"""`kafkaops consume --share-group` and `kafkaops demo queues` on a real Kafka 4.x cluster."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

from typer.testing import CliRunner

from kafkaops.cli import app
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory


def test_consume_from_a_share_group(kraft_kafka_cluster: LocalCluster,
                                    fresh_topic_factory: Callable[[LocalCluster], TopicFactory]) -> None:
    """Avro records through the schema registry (ZooKeeper beside KRaft): JSON lines with delivery_count;
    a second member of the same share group gets nothing more (each record went to one member)."""
    runner = CliRunner()
    conn = ["-b", kraft_kafka_cluster.bootstrap_servers, "--zookeeper", kraft_kafka_cluster.zk_hosts]
    topic = fresh_topic_factory(kraft_kafka_cluster)(partitions=2, prefix="cli-share")
    r = runner.invoke(app, ["produce", topic, "--schema", "order-v2", "--generate", "6", *conn])
    assert r.exit_code == 0 and "produced 6 records" in r.stdout, r.output

    group = f"sg-{uuid.uuid4().hex[:6]}"
    r = runner.invoke(app, ["consume", topic, "--share-group", group, "--max", "6", *conn])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len({(row["partition"], row["offset"]) for row in rows}) == 6
    assert all(row["delivery_count"] == 1 and row["topic"] == topic and "order_id" in row["value"] for row in rows)
    assert "6 accepted" in r.stderr, r.stderr

    r = runner.invoke(app, ["consume", topic, "--share-group", group, "--idle-timeout", "2", *conn])
    assert r.exit_code == 0 and r.stdout == "", r.output

    r = runner.invoke(app, ["consume", topic, *conn])
    assert r.exit_code == 2 and "--share-group" in r.output


def test_demo_queues(kraft_kafka_cluster: LocalCluster) -> None:
    """The demo's steps all succeed, and it prints its figures."""
    r = CliRunner().invoke(app, ["demo", "queues", "-b", kraft_kafka_cluster.bootstrap_servers,
                                 "--records", "800", "--bench-records", "5000", "--rounds", "1"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    for title in ("publish-subscribe: 2 consumer groups", "point-to-point: a share group of 4",
                  "a member dies mid-batch", "a member freezes mid-batch", "throughput: share group vs consumer group"):
        assert f"ok {title}" in out, out
    assert "FAILED" not in out
    assert re.search(r"member-1 \d+, member-2 \d+, member-3 \d+, member-4 \d+; processed exactly once: yes, lost 0",
                     out), out
    assert re.search(r"share group [\d,]+ records/s: ratio \d+\.\d+x", out), out
