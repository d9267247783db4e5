"""`kafkaops chaos`: bad input is one clear line and exit 1, before any cluster starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def kafkaops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafkaops.cli", *args], capture_output=True, text=True, timeout=60)


def test_an_unknown_fault_or_workload_is_refused_naming_the_choices() -> None:
    r = kafkaops("chaos", "run", "--fault", "meteor")
    assert r.returncode == 1
    assert "unknown fault meteor: choose from none, leader-kill" in r.stderr and "network-cut" in r.stderr
    r = kafkaops("chaos", "run", "-w", "batch")
    assert r.returncode == 1 and "unknown workload batch: choose from group, aggregate, share" in r.stderr


def test_list_names_every_workload_and_fault() -> None:
    r = kafkaops("chaos", "list")
    assert r.returncode == 0
    for name in ("group", "aggregate", "share", "leader-kill", "follower-kill", "controller-kill", "leader-pause",
                 "rolling-restart", "zookeeper-kill", "session-expiry", "network-cut"):
        assert name in r.stdout


def test_table_of_a_file_that_is_not_a_run_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "run.json"
    bad.write_text('{"cells": "no"}')
    r = kafkaops("chaos", "table", str(bad))
    assert r.returncode == 1 and f"{bad} is not a chaos run's JSON" in r.stderr


def test_table_renders_a_saved_run(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    run.write_text('{"cluster": "KRaft cluster", "kafka_version": "4.4.0", "duration": 45, "hold": 10, '
                   '"started": "2026-12-02 15:40:24", "cells": [{"workload": "group", "fault": "leader-kill", '
                   '"status": "pass", "reason": "", "checks": [], "figures": {"records": 12000, "max_ack_gap": 5.5, '
                   '"recovery": 7.25}}]}')
    r = kafkaops("chaos", "table", str(run))
    assert r.returncode == 0, r.stderr
    assert "KRaft cluster, Kafka 4.4.0: 45 s cells, 10 s holds, 2026-12-02 15:40:24" in r.stdout
    assert "| leader-kill | **pass** · 12,000 acked · gap 5.5 s · recovery 7.2 s |" in r.stdout
