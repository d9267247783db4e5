"""`kafkaops checkpoint list|show|restore|prune` (where each state lives and its size) and
`demo aggregate` errors, on real ZooKeeper and Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kafkaops.audit import parse_records, read_file
from kafkaops.cli import app
from kafkaops.cli.common import out
from kafkaops.config import Settings
from kafkaops.coord.checkpoints import CheckpointStore
from kafkaops.coord.session import Coordinator
from kafkaops.coord.state_topic import TopicStateBackend
from kafkaops.local.cluster import LocalCluster


@pytest.fixture
def zk(kafka_cluster: LocalCluster) -> Iterator[tuple[CheckpointStore, list[str]]]:
    """A store under a fresh root, and the CLI options that point at it."""
    root = f"/kafkaops-test-{uuid.uuid4().hex[:8]}"
    with Coordinator(kafka_cluster.zk_hosts, root) as coord:
        yield CheckpointStore(coord), ["-z", kafka_cluster.zk_hosts, "--zk-root", root]
        coord.client.delete(root, recursive=True)


def test_where_states_live_and_their_sizes(zk: tuple[CheckpointStore, list[str]], kafka_cluster: LocalCluster,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, opts = zk
    monkeypatch.setattr(out, "width", 250)  # the table's cells unwrapped
    topic = f"state-{uuid.uuid4().hex[:8]}"
    with TopicStateBackend(kafka_cluster.profile, topic) as backend:
        big = CheckpointStore(store.coordinator, state_backend=backend)
        epoch = big.claim("mixed", "w")
        small = big.save("mixed", {("orders", 0): 1}, b"tiny", epoch=epoch)
        state = os.urandom(3 * 1024 * 1024)
        large = big.save("mixed", {("orders", 0): 2}, state, epoch=epoch)
        with_kafka = [*opts, "-b", kafka_cluster.bootstrap_servers]
        runner = CliRunner()
        res = runner.invoke(app, ["checkpoint", "list", "mixed", *opts, "--json"])
        assert res.exit_code == 0, res.output
        listed = {c["id"]: c for c in json.loads(res.output)}
        assert (listed[small]["where"], listed[small]["state_size"]) == ("inline", 4)
        assert (listed[large]["where"], listed[large]["state_size"]) == ("topic", len(state))
        assert listed[large]["location"]["topic"] == topic and listed[large]["location"]["chunks"] == 4
        res = runner.invoke(app, ["checkpoint", "list", "mixed", *opts])
        assert res.exit_code == 0 and "3.0 MiB" in res.output and f"topic {topic} partition" in res.output
        assert "4 B" in res.output and "inline" in res.output

        # the state is read from the topic (with Kafka) and verified; with -z alone it is out of reach
        res = runner.invoke(app, ["checkpoint", "show", "mixed", large, *with_kafka, "--state-topic", topic,
                                  "--state-to", str(tmp_path / "state")])
        assert res.exit_code == 0, res.output
        assert (tmp_path / "state").read_bytes() == state and "SHA-256" in res.output
        res = _cli("checkpoint", "show", "mixed", large, *opts, "--state-to", str(tmp_path / "x"))
        assert res.returncode == 1 and "lives in Kafka topic" in res.stderr and "Traceback" not in res.stderr

        # prune with Kafka deletes the state of the pruned checkpoint (tombstones), without it waits
        res = runner.invoke(app, ["checkpoint", "restore", "mixed", small, *opts])
        assert res.exit_code == 0 and "inline" in res.output, res.output
        big.save("mixed", {("orders", 0): 3}, b"newer", epoch=big.claim("mixed", "w2"))
        res = runner.invoke(app, ["checkpoint", "prune", "mixed", "--keep", "1", *opts])
        assert res.exit_code == 0 and "unreferenced states: 0 before, 1 now" in res.output, res.output
        assert "checkpoint prune` deletes them" in res.output
        res = runner.invoke(app, ["checkpoint", "prune", "mixed", "--keep", "1", *with_kafka, "--state-topic", topic])
        assert res.exit_code == 0 and "unreferenced states: 1 before, 0 now" in res.output, res.output


def test_list_show_restore_prune(zk: tuple[CheckpointStore, list[str]], tmp_path: Path) -> None:
    store, opts = zk
    epoch = store.claim("orders", "w")
    ids = [store.save("orders", {("orders", 0): 10 * i, ("orders", 1): i}, f"state-{i}".encode(),
                      {"n": i}, epoch=epoch) for i in range(4)]
    runner = CliRunner()

    res = runner.invoke(app, ["checkpoint", "list", *opts, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == ["orders"]
    res = runner.invoke(app, ["checkpoint", "list", "orders", *opts, "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    assert [c["id"] for c in listed] == ids and [c["current"] for c in listed] == [False] * 3 + [True]
    res = runner.invoke(app, ["checkpoint", "list", "orders", *opts])
    assert res.exit_code == 0 and ids[-1] in res.output

    res = runner.invoke(app, ["checkpoint", "show", "orders", ids[1], *opts, "--json", "--state-to", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["offsets"] == [{"topic": "orders", "partition": 0, "offset": 10},
                                {"topic": "orders", "partition": 1, "offset": 1}]
    assert shown["metadata"] == {"n": 1} and (tmp_path / "s").read_bytes() == b"state-1"

    res = runner.invoke(app, ["checkpoint", "restore", "orders", ids[1], *opts])
    assert res.exit_code == 0, res.output
    assert store.latest("orders").id == ids[1]  # type: ignore[union-attr]
    res = runner.invoke(app, ["checkpoint", "prune", "orders", "--keep", "1", *opts])
    assert res.exit_code == 0, res.output
    assert [i.id for i in store.list("orders")] == [ids[1], ids[3]]  # the current one is always kept
    # both changes are in the audit trail, as the ZooKeeper identity of this -z only command
    trail = parse_records(read_file(Settings.from_env().home / "audit" / "audit.jsonl"))
    assert [(r.action, r.target, r.args, r.result, r.principal) for r in trail] == [
        ("checkpoint.restore", "orders", {"checkpoint": ids[1]}, "ok", "zookeeper:anonymous"),
        ("checkpoint.prune", "orders", {"keep": 1}, "ok", "zookeeper:anonymous"),
    ]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafkaops.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "KAFKAOPS_LOG_LEVEL": "ERROR"})


def test_errors_are_one_line(zk: tuple[CheckpointStore, list[str]], kafka_cluster: LocalCluster,
                             tmp_path: Path) -> None:
    _, opts = zk
    res = _cli("checkpoint", "show", "no-such-job", *opts)
    assert res.returncode == 1 and res.stderr.strip().count("\n") == 0
    assert "no-such-job" in res.stderr and "Traceback" not in res.stderr
    res = _cli("checkpoint", "restore", "no-such-job", "ckpt-0000000001", *opts)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    res = _cli("demo", "aggregate", "--topic", f"missing-{uuid.uuid4().hex[:6]}", "--job", "j",
               "--output", str(tmp_path / "out.json"), "-b", kafka_cluster.bootstrap_servers, *opts)
    assert res.returncode == 1 and "does not exist" in res.stderr and "Traceback" not in res.stderr
