"""`kafkaops up --mode kraft`, `status` with the metadata quorum, `controller kill|start`,
`down`, as a user runs them (a KRaft cluster of the CLI's own)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafkaops.config import ClusterProfile
from kafkaops.testing.waits import wait_until
from tests.integration.test_cli_cluster import run, status
from tests.integration.test_local_cluster import _java_pids_under

pytestmark = pytest.mark.kraft_mode


def active_other_than(home: Path, old: int) -> int | None:
    leader = status(home)["controller_id"]
    return leader if leader not in (None, old) else None


def test_up_kraft_status_quorum_controller_kill_start_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        up = run(home, "up", "--mode", "kraft", "--brokers", "3")
        assert "kraft mode, Kafka 4." in up.stdout
        assert "controllers: 101, 102, 103" in up.stdout
        assert "kafkaops' coordination only" in up.stdout
        written = ClusterProfile.load(home / "cluster" / "profile.yaml")
        assert written.zookeeper is not None and written.zookeeper.kafka_chroot is None  # KRaft: no brokers' chroot

        st = status(home)
        assert st["mode"] == "kraft" and [b["id"] for b in st["brokers"]] == [1, 2, 3]
        active = st["controller_id"]
        assert active in (101, 102, 103) and st["quorum"]["leader_id"] == active
        assert [v["id"] for v in st["quorum"]["voters"]] == [101, 102, 103]
        assert sorted(o["id"] for o in st["quorum"]["observers"]) == [1, 2, 3]
        # the profile alone says KRaft, from a home with no local cluster
        elsewhere = status_with_profile(tmp_path, home)
        assert elsewhere["mode"] == "kraft" and elsewhere["controller_id"] == active

        unknown = run(home, "controller", "kill", "7", check=False)
        assert unknown.returncode == 1 and "no controller 7" in unknown.stderr and "Traceback" not in unknown.stderr
        run(home, "controller", "kill", str(active))
        new = wait_until(lambda: active_other_than(home, active), 60, "a new active controller", interval=1)
        human = " ".join(run(home, "status").stdout.split())  # rich wraps the title at the terminal's width
        assert "mode: kraft" in human and f"active controller: {new}" in human and "metadata quorum" in human
        assert "stopped" in human  # the killed controller's process, in the quorum table
        start = run(home, "controller", "start", str(active))  # returns once it has caught up
        assert f"controller {active}: start done" in start.stdout
        voters = {v["id"]: v["lag"] for v in status(home)["quorum"]["voters"]}
        assert set(voters) == {101, 102, 103} and voters[active] <= 10, voters  # caught up (a few no-ops behind at most)
    finally:
        run(home, "down", check=False)
    assert _java_pids_under(home) == []


def status_with_profile(tmp_path: Path, home: Path) -> dict[str, Any]:
    proc = run(tmp_path / "other-home", "status", "--json", "--profile", str(home / "cluster" / "profile.yaml"))
    return json.loads(proc.stdout)  # type: ignore[no-any-return]
