"""Pure parts of the playbook actions and BrokerControl: schemas, confirmation, shell templates.

The replica planning the actions use is tested with the other placement rules in
test_ops_failover_rules.py (one planner: ops/placement.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkaops.errors import ConfigError
from kafkaops.ops.actions import ACTIONS, ActionContext, ActionError, checkpoint_id, confirm
from kafkaops.ops.brokers import BrokerControlError, DockerBrokerControl, ShellBrokerControl, load_config


def test_the_issue_actions_are_registered_with_schemas() -> None:
    wanted = {
        "check_health", "wait_healthy", "broker_stop", "broker_start", "broker_restart", "elect_preferred_leaders",
        "reassign_off_broker", "rebalance", "reset_offsets", "restore_checkpoint", "create_topic", "add_partitions",
        "confirm",
    }
    assert wanted <= set(ACTIONS)
    assert ACTIONS["broker_restart"].args["broker"].required
    assert ACTIONS["broker_restart"].args["broker"].type.name == "int"
    assert ACTIONS["broker_restart"].args["safe"].default is True
    assert ACTIONS["reset_offsets"].args["to"].type.choices == ("earliest", "latest", "timestamp", "checkpoint")


def test_confirm_callback_and_yes() -> None:
    asked: list[str] = []
    ctx = ActionContext("unused:1", confirm=lambda m: asked.append(m) or True)
    assert confirm(ctx, message="go?") == "confirmed by the operator" and asked == ["go?"]
    ctx = ActionContext("unused:1", confirm=lambda m: False)
    with pytest.raises(ActionError, match="operator declined: go"):
        confirm(ctx, message="go?")
    assert confirm(ActionContext("unused:1", assume_yes=True), message="go?") == "confirmed by --yes"
    with pytest.raises(ActionError, match="run interactively or with --yes"):
        confirm(ActionContext("unused:1"), message="go?")


def test_context_takes_a_profile_or_a_bootstrap_string() -> None:
    from kafkaops.config import ClusterProfile

    profile = ClusterProfile("h1:9092,h2:9092", name="prod")
    assert ActionContext(profile).profile is profile
    assert ActionContext("h3:9092").profile.bootstrap_servers == "h3:9092"
    with pytest.raises(ActionError, match="no broker control configured"):
        ActionContext("h3:9092").broker_control()
    ctl = DockerBrokerControl()
    assert ActionContext("h3:9092", ctl).broker_control() is ctl


def test_checkpoint_ids() -> None:
    assert checkpoint_id(42) == "ckpt-0000000042"
    assert checkpoint_id("ckpt-0000000007") == "ckpt-0000000007"


def test_shell_broker_control_runs_templates(tmp_path: Path) -> None:
    log = tmp_path / "ops.log"
    ctl = ShellBrokerControl(
        {
            "stop": f"sh -c 'echo stop {{id}} {{host}} >> {log}'",
            "start": f"sh -c 'echo start {{id}} {{host}} >> {log}'",
        },
        hosts={1: "kafka-a", 2: "kafka-b"},
    )
    ctl.restart(2)
    ctl.stop(1)
    assert log.read_text().splitlines() == ["stop 2 kafka-b", "start 2 kafka-b", "stop 1 kafka-a"]
    assert ctl.command("stop", 1)[:2] == ["sh", "-c"]
    with pytest.raises(BrokerControlError, match="no host configured for broker 3"):
        ctl.stop(3)
    failing = ShellBrokerControl({"stop": "sh -c 'echo boom >&2; exit 3'", "start": "true"})
    with pytest.raises(BrokerControlError, match="exited 3: boom"):
        failing.stop(1)
    with pytest.raises(BrokerControlError, match="command not found"):
        ShellBrokerControl({"stop": "no-such-command-kafkaops {id}", "start": "true"}).stop(1)


def test_broker_control_config() -> None:
    with pytest.raises(ConfigError, match="needs a 'start' command"):
        ShellBrokerControl({"stop": "x"})
    with pytest.raises(ConfigError, match="type must be local, docker or shell"):
        load_config('{"type": "k8s"}')
    docker = load_config('{"type": "docker", "containers": {"1": "kafka-1", "2": "kafka-2"}}')
    assert isinstance(docker, DockerBrokerControl) and docker.container(2) == "kafka-2"
    with pytest.raises(BrokerControlError, match="no container configured for broker 3"):
        docker.container(3)
    assert DockerBrokerControl().container(7) == "kafka-7"
    shell = load_config('{"type": "shell", "hosts": {"1": "h1"}, "stop": "ssh {host} sudo systemctl stop kafka", "start": "ssh {host} sudo systemctl start kafka"}')
    assert isinstance(shell, ShellBrokerControl)
    assert shell.command("stop", 1) == ["ssh", "h1", "sudo", "systemctl", "stop", "kafka"]


def test_restart_safety_rule_as_strimzi() -> None:
    from kafkaops.ops.actions import is_healthy, unsafe_to_stop
    from kafkaops.ops.health import build_health

    rows = [
        ("a", 0, 1, [1, 2, 3], [1, 2, 3]),  # full ISR: any one broker may go
        ("a", 1, 2, [2, 3, 1], [2, 3]),  # ISR 2 = min ISR: 2 and 3 may not go, 1 (out of ISR) may
        ("single", 0, 3, [3], [3]),  # RF 1 <= min ISR: ignored, it cannot stay writable anyway
    ]
    h = build_health({1: ("h", 1), 2: ("h", 2), 3: ("h", 3)}, 1, rows, {"a": 2, "single": 1})
    assert [p.tp for p in unsafe_to_stop(h, 2)] == [("a", 1)]
    assert [p.tp for p in unsafe_to_stop(h, 3)] == [("a", 1)]
    assert unsafe_to_stop(h, 1) == []
    assert not is_healthy(h) and is_healthy(h, allow_under_replicated=True)


def test_docker_broker_control_command_lines(tmp_path: Path) -> None:
    """The docker CLI calls, recorded by a stand-in `docker` executable (no engine needed)."""
    log = tmp_path / "docker.log"
    exe = tmp_path / "docker"
    exe.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    exe.chmod(0o755)
    ctl = DockerBrokerControl({1: "kafka-1", 2: "kafka-2"}, docker=str(exe))
    ctl.stop(1, timeout=60)
    ctl.start(1)
    ctl.restart(2, timeout=100)
    ctl.kill(2)
    assert log.read_text().splitlines() == [
        "stop -t 50 kafka-1", "start kafka-1", "restart -t 40 kafka-2", "kill kafka-2"
    ]
