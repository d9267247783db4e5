"""`kafkaops topic ...` on a real cluster: list, describe, config get/set with the no-loss
guard, delete with confirmation, and the audit records of each change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from kafkaops.admin import create_topic
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.topics import TopicError, describe_topic, set_topic_config, topic_configs


def cli(cluster: LocalCluster, home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafkaops.cli", *args, "-b", cluster.bootstrap_servers],
                          capture_output=True, text=True, timeout=120, input=input,
                          env={**os.environ, "KAFKAOPS_HOME": str(home)})


def js(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_topic_commands(kafka_cluster: LocalCluster, tmp_path: Path) -> None:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    created = cli(kafka_cluster, tmp_path, "topic", "create", name, "--partitions", "4", "-c", "retention.ms=3600000")
    assert created.returncode == 0, created.stderr

    listed = {t["topic"]: t for t in js(cli(kafka_cluster, tmp_path, "topic", "list", "--json"))}
    assert listed[name] == {"topic": name, "partitions": 4, "replication_factor": 3, "under_replicated": 0,
                            "under_min_isr": 0, "offline": 0, "internal": False}
    assert not any(t.startswith("__") for t in listed)
    assert "__consumer_offsets" in {t["topic"] for t in js(cli(kafka_cluster, tmp_path, "topic", "list", "--json",
                                                                  "--internal"))}

    described = js(cli(kafka_cluster, tmp_path, "topic", "describe", name, "--json"))
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2, 3]
    for p in described["partitions"]:
        assert p["leader"] in p["replicas"] and sorted(p["isr"]) == sorted(p["replicas"]) and len(p["replicas"]) == 3
        assert (p["under_replicated"], p["under_min_isr"], p["offline"], p["status"]) == (False, False, False, "ok")
    assert described["configs"] == {"retention.ms": "3600000"}  # only what differs from the broker default

    # the no-loss guard: refused without --force, nothing changed
    for bad, why in (("min.insync.replicas=1", "only one broker holds"),
                     ("min.insync.replicas=4", "exceeds the replication factor 3"),
                     ("unclean.leader.election.enable=true", "out-of-sync replica")):
        refused = cli(kafka_cluster, tmp_path, "topic", "config", "set", name, bad)
        assert refused.returncode == 1 and why in refused.stderr and "--force" in refused.stderr, refused.stderr
    configs = js(cli(kafka_cluster, tmp_path, "topic", "config", "get", name, "min.insync.replicas",
                     "unclean.leader.election.enable", "--json"))
    assert configs["min.insync.replicas"]["value"] == "2" and configs["unclean.leader.election.enable"]["value"] == "false"

    ok = cli(kafka_cluster, tmp_path, "topic", "config", "set", name, "retention.ms=7200000", "cleanup.policy=compact")
    assert ok.returncode == 0, ok.stderr
    forced = cli(kafka_cluster, tmp_path, "topic", "config", "set", name, "min.insync.replicas=1", "--force")
    assert forced.returncode == 0, forced.stderr
    overrides = js(cli(kafka_cluster, tmp_path, "topic", "config", "get", name, "--json"))
    assert {k: v["value"] for k, v in overrides.items()} == {
        "retention.ms": "7200000", "cleanup.policy": "compact", "min.insync.replicas": "1"}
    reset = cli(kafka_cluster, tmp_path, "topic", "config", "set", name, "cleanup.policy=")  # back to the default
    assert reset.returncode == 0, reset.stderr
    assert topic_configs(kafka_cluster.profile, name)["cleanup.policy"].default

    unknown = cli(kafka_cluster, tmp_path, "topic", "config", "set", name, "no.such.config=1")
    assert unknown.returncode == 1 and "no.such.config" in unknown.stderr, unknown.stderr
    missing = cli(kafka_cluster, tmp_path, "topic", "describe", "no-such-topic-here")
    assert missing.returncode == 1 and "topic no-such-topic-here does not exist" in missing.stderr, missing.stderr

    kept = cli(kafka_cluster, tmp_path, "topic", "delete", name, input="n\n")
    assert kept.returncode == 1 and name in {t["topic"] for t in js(cli(kafka_cluster, tmp_path, "topic", "list", "--json"))}
    gone = cli(kafka_cluster, tmp_path, "topic", "delete", name, "--yes")
    assert gone.returncode == 0, gone.stderr
    assert name not in {t["topic"] for t in js(cli(kafka_cluster, tmp_path, "topic", "list", "--json"))}

    audit = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    assert [(a["action"], a["result"].split(":")[0]) for a in audit if a["target"] == name] == [
        ("topic.create", "ok"), ("topic.config.set", "ok"), ("topic.config.set", "ok"), ("topic.config.set", "ok"),
        ("topic.config.set", "error"), ("topic.delete", "ok")]  # refusals changed nothing: no record
    forced_record = [a for a in audit if a["action"] == "topic.config.set"][1]
    assert forced_record["args"] == {"changes": {"min.insync.replicas": "1"}, "force": True}


def test_under_min_isr_marks_and_the_library_guard(kafka_cluster: LocalCluster) -> None:
    name = f"ops-mis-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_cluster.profile, name, 2, 3, {"min.insync.replicas": "4"})  # created outside the guard
    d = describe_topic(kafka_cluster.profile, name)
    assert [(p.under_min_isr, p.under_replicated, p.status) for p in d.partitions] == [(True, False, "under_min_isr")] * 2
    try:
        set_topic_config(kafka_cluster.profile, name, {"unclean.leader.election.enable": "true"})
    except TopicError as exc:
        assert "refused for topic" in str(exc)
    else:
        raise AssertionError("weakening unclean leader election was not refused")
    set_topic_config(kafka_cluster.profile, name, {"min.insync.replicas": "2"})
    assert all(p.status == "ok" for p in describe_topic(kafka_cluster.profile, name).partitions)
