"""`kafkaops up / status / broker / topic / down` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kafkaops.config import ClusterProfile
from kafkaops.testing.waits import wait_until
from tests.integration.test_local_cluster import _java_pids_under

KAFKAOPS = [sys.executable, "-m", "kafkaops.cli"]


def run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KAFKAOPS_HOME=str(home))
    proc = subprocess.run([*KAFKAOPS, *args], env=env, capture_output=True, text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"kafkaops {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def status(home: Path) -> dict[str, Any]:
    return json.loads(run(home, "status", "--json").stdout)  # type: ignore[no-any-return]


def test_commands_without_a_cluster_fail_plainly(tmp_path: Path) -> None:
    for args in (("status",), ("down",), ("broker", "kill", "1"), ("demo",), ("topic", "create", "x")):
        proc = run(tmp_path, *args, check=False)
        assert proc.returncode == 1, args
        assert "no local cluster" in proc.stderr and "kafkaops up" in proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.zookeeper_mode  # `kafkaops up` in ZooKeeper mode; KRaft: test_kraft_cli.py
def test_up_status_kill_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        up = run(home, "up", "--brokers", "3")
        assert "bootstrap servers: 127.0.0.1:" in up.stdout
        assert "/kafka" in up.stdout  # ZooKeeper connect string with chroot
        profile = home / "cluster" / "profile.yaml"
        assert f"profile: {profile}" in up.stdout
        written = ClusterProfile.load(profile)
        assert written.bootstrap_servers in up.stdout and written.zookeeper is not None
        assert written.zookeeper.kafka_connect is not None and written.zookeeper.kafka_connect in up.stdout

        st = status(home)
        assert [b["id"] for b in st["brokers"]] == [1, 2, 3]
        assert all(b["alive"] and b["host"] == "127.0.0.1" and b["port"] > 0 for b in st["brokers"])
        assert st["controller_id"] in (1, 2, 3)
        # the profile alone reaches the cluster, from a home that has no local cluster
        elsewhere = json.loads(run(tmp_path / "other-home", "status", "--json", "--profile", str(profile)).stdout)
        assert [(b["id"], b["port"]) for b in elsewhere["brokers"]] == [(b["id"], b["port"]) for b in st["brokers"]]

        run(home, "topic", "create", "orders", "--partitions", "6", "--replication-factor", "3")
        assert status(home)["partitions"]["total"] >= 6

        unknown = run(home, "broker", "kill", "9", check=False)
        assert unknown.returncode == 1 and "no broker 9" in unknown.stderr
        assert "Traceback" not in unknown.stderr
        assert st["mode"] == "zookeeper" and st["quorum"] is None
        no_quorum = run(home, "controller", "kill", "101", check=False)  # a KRaft-only thing, in one line
        assert no_quorum.returncode == 1 and "not a KRaft cluster" in no_quorum.stderr
        assert len(no_quorum.stderr.strip().splitlines()) == 1

        run(home, "broker", "kill", "1")
        st = status(home)
        assert [b["alive"] for b in st["brokers"]] == [False, True, True]
        # ZooKeeper notices after the broker session timeout: its partitions lose an ISR member
        wait_until(lambda: status(home)["partitions"]["under_replicated"] > 0, 30,
                   "under-replicated partitions reported", interval=1)
        assert status(home)["partitions"]["offline"] == 0
    finally:
        run(home, "down", check=False)
    assert _java_pids_under(home) == []
    gone = run(home, "status", check=False)
    assert gone.returncode == 1 and "no local cluster" in gone.stderr
