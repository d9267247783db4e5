"""The bench code on tiny N: result structure and counts (no timing assertions), and the CLI wiring."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kafkaops.apps.bench.clients import bench_consume, bench_produce
from kafkaops.cli import app
from kafkaops.local.cluster import LocalCluster

# kafka-python (the peer contestant) still uses importlib.resources' legacy API
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_bench_produce_and_consume_structure(kafka_cluster: LocalCluster) -> None:
    report = bench_produce(kafka_cluster.profile, records=300, rounds=1, peer_records=60)  # registers the schema
    assert [m.name for m in report.measurements] == ["typed", "raw", "kafka-python"]
    assert [m.records for m in report.measurements] == [300, 300, 60]  # every record acknowledged
    assert all(m.seconds > 0 and m.rate > 0 and m.cpu_seconds >= 0 for m in report.measurements)
    assert set(report.ratios) == {"typed/raw", "typed/kafka-python", "typed/raw (cpu)", "typed/kafka-python (cpu)"}
    assert report.ratios["typed/raw"] == report.measurement("typed").rate / report.measurement("raw").rate
    assert report.targets == {"typed/raw": 0.9, "typed/kafka-python": 5.0}
    json.dumps(report.to_json())

    report = bench_consume(kafka_cluster.bootstrap_servers, records=300, rounds=1)  # a bootstrap string still works
    assert [m.name for m in report.measurements] == ["typed", "typed-batch", "raw"]
    assert [m.records for m in report.measurements] == [300, 300, 300]  # each read every record
    assert {"typed/raw", "typed-batch/raw"} <= set(report.ratios)


def test_bench_cli_json(kafka_cluster: LocalCluster) -> None:
    result = CliRunner().invoke(
        app, ["bench", "produce", "-n", "100", "--rounds", "1", "--peer-records", "20", "--json",
              "-b", kafka_cluster.bootstrap_servers, "--zookeeper", kafka_cluster.zk_hosts],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["benchmark"] == "produce" and data["records"] == 100
    assert {m["name"]: m["records"] for m in data["measurements"]} == {"typed": 100, "raw": 100, "kafka-python": 20}
    assert "typed/raw" in data["ratios"]
