"""The short chaos matrix (part of `make test`): every fault at least once against the main
workload (TypedProducer + TypedConsumer group), the session expiry against the checkpointed
aggregate job (whose process is also SIGKILLed mid-run), on one cluster of 3 brokers and 3
ZooKeeper nodes that each cell leaves healthy for the next. Each cell must pass every
property: nothing acknowledged lost or moved, no duplicates, nothing unacknowledged visible,
order kept, every record consumed, counts exact, flow back after the fault.

A canary proves the checker bites on a real cluster: records deleted from the log under a
running workload must fail the cell as lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafkaops.admin import admin_client
from kafkaops.chaos.faults import Fault, FaultContext
from kafkaops.chaos.runner import CellResult, run_cell
from kafkaops.testing.plugin import new_cluster
from kafkaops.waits import wait_until

DURATION = 15.0
"""Seconds of workload around each fault (the fault and its recovery come on top)."""

SHORT_MATRIX = [
    ("group", "leader-kill"),
    ("group", "follower-kill"),
    ("group", "controller-kill"),
    ("group", "leader-pause"),
    ("group", "rolling-restart"),
    ("group", "zookeeper-kill"),
    ("aggregate", "session-expiry"),
]


@pytest.fixture(scope="module")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Any]:
    """3 brokers, a 3-node ZooKeeper ensemble (the ZooKeeper fault needs one); the Kafka mode of the pass."""
    cluster: Any = new_cluster(pytestconfig, tmp_path_factory.mktemp("chaos"), brokers=3, zookeepers=3)
    cluster.start(timeout=300)
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def results_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chaos-results") / "short-matrix.jsonl"


def record(path: Path, result: CellResult) -> None:
    with path.open("a") as f:
        f.write(json.dumps(result.to_json()) + "\n")
    print(f"\n{result.summary()}")


@pytest.mark.parametrize(("workload", "fault"), SHORT_MATRIX, ids=[f"{w}-{f}" for w, f in SHORT_MATRIX])
def test_cell_keeps_every_property(chaos_cluster: Any, results_file: Path, tmp_path: Path, workload: str,
                                   fault: str) -> None:
    result = run_cell(chaos_cluster, workload, fault, duration=DURATION, workdir=tmp_path)
    record(results_file, result)
    assert result.status == "pass", result.summary()
    assert result.injections, "the fault was never injected"
    f = result.figures
    assert f["records"] > 500 and f["records"] == f["sent"] - f["in_doubt"] - f["failed"]
    assert f["recovery"] is not None and f["max_ack_gap"] > 0
    if workload == "aggregate":
        assert f["consumer_kills"] == 1 and f["consumer_recovery"] is not None


def test_cells_that_cannot_run_here_say_so(chaos_cluster: Any) -> None:
    """Never a silent pass: a cell this cluster cannot run is 'unsupported', with the reason."""
    cut = run_cell(chaos_cluster, "group", "network-cut")
    assert cut.status == "unsupported" and "containers backend" in cut.reason
    expiry = run_cell(chaos_cluster, "group", "session-expiry")
    assert expiry.status == "unsupported" and "holds no ZooKeeper session" in expiry.reason
    share = run_cell(chaos_cluster, "share", "leader-kill", duration=DURATION)
    if chaos_cluster.mode == "kraft":  # share groups exist: then the cell must hold like any other
        assert share.status == "pass", share.summary()
    else:
        assert share.status == "unsupported" and "share groups need a KRaft cluster" in share.reason


def delete_first_records(ctx: FaultContext) -> None:
    """Not a fault a cluster should ever cause: acknowledged records removed from partition 0."""
    admin = admin_client(ctx.cluster.profile)
    p0 = TopicPartition(ctx.topic, 0)
    consumer = Consumer(ctx.cluster.profile.librdkafka(**{"group.id": "canary"}))
    try:
        wait_until(lambda: consumer.get_watermark_offsets(p0, timeout=10)[1] >= 50, 60, "50 records in partition 0")
    finally:
        consumer.close()
    ctx.inject(f"delete the first 50 records of {ctx.topic}[0]")
    (fut,) = admin.delete_records([TopicPartition(ctx.topic, 0, 50)], request_timeout=30).values()
    assert fut.result(timeout=60).low_watermark == 50


def test_canary_lost_records_fail_the_cell(chaos_cluster: Any, tmp_path: Path) -> None:
    canary = Fault("canary-data-loss", "records deleted from the log (must be caught)", delete_first_records)
    result = run_cell(chaos_cluster, "group", canary, duration=8.0, workdir=tmp_path)
    assert result.status == "fail", result.summary()
    lost = {c.name: c.violations for c in result.checks}["acknowledged records lost"]
    assert lost == 50, result.summary()
