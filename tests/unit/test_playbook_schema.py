"""Playbook validation and planning: every malformed file is refused whole, with file, line and step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kafkaops.ops import playbooks as pbs
from kafkaops.ops.playbook_schema import PlaybookError, TypeSpec, render, template_names

FACTS = {"all_brokers": [1, 3, 2], "all_controllers": [], "controller": 2}


def facts() -> dict[str, object]:
    return dict(FACTS)


def refuse(text: str) -> PlaybookError:
    with pytest.raises(PlaybookError) as info:
        pbs.parse(text, "pb.yaml")
    return info.value


GOOD = """\
name: demo
variables:
  topic:
    type: str
  partitions:
    type: int
    default: 6
steps:
  - name: create {{ topic }}
    action: create_topic
    args:
      topic: "{{ topic }}"
  - name: grow {{ topic }}
    action: add_partitions
    args:
      topic: "{{ topic }}"
      partitions: "{{ partitions }}"
"""


@pytest.mark.parametrize("path", pbs.shipped(), ids=lambda p: p.stem)
def test_every_shipped_playbook_validates_and_is_documented(path: Path) -> None:
    pb = pbs.load(path)
    assert pb.name == path.stem
    head = path.read_text().splitlines()[0]
    assert head.startswith(f"# {pb.name}"), "each playbook starts with a comment block naming it"
    text = path.read_text()
    for section in ("When:", "Variables:", "Changes:"):
        assert section in text, f"{path.name} documents {section}"
    for var in pb.variables:
        assert var in text.split("\nname:")[0], f"{path.name}: variable {var} documented at the top"


def test_six_playbooks_ship() -> None:
    assert {p.stem for p in pbs.shipped()} == {
        "broker-failover",
        "rolling-restart",
        "rebalance-after-add",
        "reset-consumer-group",
        "restore-from-checkpoint",
        "expand-partitions",
    }


def test_broken_yaml_names_file_and_line() -> None:
    err = refuse("name: x\nsteps:\n  - name: a\n    action: [check_health\n  - name: b\n")
    assert err.file == "pb.yaml"
    assert err.line is not None and err.line >= 4
    assert "YAML syntax error" in str(err)
    assert str(err).startswith(f"pb.yaml:{err.line}: ")


def test_unknown_action_is_refused_before_any_step_with_line_and_step() -> None:
    text = GOOD.replace("action: add_partitions", "action: add_partition")
    err = refuse(text)
    assert err.line == 14  # the 'action:' line of the second step
    assert err.step == "step 2 'grow {{ topic }}'"
    assert "unknown action 'add_partition'" in str(err)
    assert "did you mean 'add_partitions'" in str(err)
    assert str(err).startswith("pb.yaml:14: step 2 'grow {{ topic }}': ")


def test_wrong_argument_type() -> None:
    text = GOOD.replace('partitions: "{{ partitions }}"', "partitions: six")
    err = refuse(text)
    assert err.line == 17
    assert "argument 'partitions' of 'add_partitions' must be int, not str 'six'" in str(err)


def test_variable_of_wrong_type_for_argument() -> None:
    text = GOOD.replace("partitions:\n    type: int\n    default: 6", "partitions:\n    type: str\n    default: six")
    err = refuse(text)
    assert "must be int, but {{ partitions }} is str" in str(err)
    assert err.step is not None and err.step.startswith("step 2")


def test_undefined_variable() -> None:
    text = GOOD.replace('topic: "{{ topic }}"\n      partitions', 'topic: "{{ topik }}"\n      partitions')
    err = refuse(text)
    assert err.line == 16
    assert "undefined variable {{ topik }}" in str(err)
    assert "step 2" in str(err)


def test_missing_variable_value_at_plan_time() -> None:
    pb = pbs.parse(GOOD, "pb.yaml")
    with pytest.raises(PlaybookError, match=r"missing variable 'topic' \(str\); pass --var topic=VALUE"):
        pbs.make_plan(pb, {})


def test_var_of_wrong_type_and_unknown_var() -> None:
    pb = pbs.parse(GOOD, "pb.yaml")
    with pytest.raises(PlaybookError, match="variable 'partitions' must be int"):
        pbs.make_plan(pb, {"topic": "t", "partitions": "many"})
    with pytest.raises(PlaybookError, match=r"unknown variable 'partitionz' given with --var \(declared: topic, partitions\)"):
        pbs.make_plan(pb, {"topic": "t", "partitionz": "3"})


def test_unknown_keys_are_refused() -> None:
    err = refuse(GOOD.replace("    action: create_topic", "    action: create_topic\n    retries: 3"))
    assert "unknown key 'retries' in a step" in str(err) and err.line == 11
    err = refuse(GOOD.replace("      topic: \"{{ topic }}\"\n  - name: grow", "      topik: x\n      topic: \"{{ topic }}\"\n  - name: grow"))
    assert "action 'create_topic' has no argument 'topik'" in str(err)
    err = refuse("name: x\nowner: me\nsteps:\n  - name: a\n    action: check_health\n")
    assert "unknown key 'owner' in playbook" in str(err) and err.line == 2


def test_missing_required_argument_and_cross_argument_rule() -> None:
    err = refuse("name: x\nsteps:\n  - name: grow\n    action: add_partitions\n    args:\n      topic: t\n")
    assert "action 'add_partitions' needs argument 'partitions'" in str(err)
    err = refuse(
        "name: x\nsteps:\n  - name: r\n    action: reset_offsets\n    args: {group: g, topic: t, to: timestamp}\n"
    )
    assert "to: timestamp needs 'timestamp'" in str(err)
    err = refuse("name: x\nsteps:\n  - name: r\n    action: reset_offsets\n    args: {group: g, topic: t, to: yesterday}\n")
    assert "must be one of earliest|latest|timestamp|checkpoint" in str(err)


def test_bad_templates_and_structure() -> None:
    assert "only {{ name }} is supported" in str(refuse(GOOD.replace("create {{ topic }}", "create {{ topic | upper }}")))
    assert "duplicate key 'name'" in str(refuse("name: x\nname: y\nsteps: []\n"))
    assert "'steps' must be a non-empty list" in str(refuse("name: x\nsteps: []\n"))
    assert "every step needs a 'name'" in str(refuse("name: x\nsteps:\n  - action: check_health\n"))
    assert "gate must be one of healthy, available, none" in str(
        refuse("name: x\nsteps:\n  - name: a\n    action: check_health\n    gate: maybe\n")
    )
    err = refuse("name: x\nvariables:\n  n: {type: integer}\nsteps:\n  - name: a\n    action: check_health\n")
    assert "type must be one of" in str(err) and err.line == 3
    err = refuse("name: x\nsteps:\n  - name: a\n    for_each: 3\n    action: check_health\n")
    assert "for_each must be" in str(err)


def test_whole_file_is_validated_even_when_early_steps_are_fine() -> None:
    text = GOOD + "  - name: third\n    action: sleep\n    args:\n      seconds: soon\n"
    err = refuse(text)
    assert err.step == "step 3 'third'" and err.line == 21


def test_plan_expands_for_each_with_builtins_controller_last() -> None:
    pb = pbs.load(pbs.find("rolling-restart"))
    plan = pbs.make_plan(pb, {}, facts)
    restarts = [s.args["broker"] for s in plan.steps if s.action == "broker_restart"]
    assert restarts == [1, 3, 2]
    assert [s.index for s in plan.steps] == list(range(1, len(plan.steps) + 1))
    assert plan.steps[1].name == "restart broker 1 (when no partition would fall below min ISR)"
    assert plan.steps[1].gate == "available" and plan.steps[2].gate == "healthy"
    assert plan.steps[2].action == "wait_healthy" and plan.steps[2].args == {"timeout": 300.0}
    only = pbs.make_plan(pb, {"brokers": "2,1"}, facts)
    assert [s.args["broker"] for s in only.steps if s.action == "broker_restart"] == [2, 1]
    assert pbs.Plan.from_json(plan.to_json()) == plan


def test_rolling_restart_on_kraft_rolls_controllers_first_the_active_one_last() -> None:
    pb = pbs.load(pbs.find("rolling-restart"))
    kraft = {"all_brokers": [1, 2, 3], "all_controllers": [102, 103, 101], "controller": 101}
    plan = pbs.make_plan(pb, {}, lambda: kraft)
    rolled = [(s.action, s.args.get("node", s.args.get("broker"))) for s in plan.steps
              if s.action in ("controller_restart", "broker_restart")]
    assert rolled == [("controller_restart", 102), ("controller_restart", 103), ("controller_restart", 101),
                      ("broker_restart", 1), ("broker_restart", 2), ("broker_restart", 3)]
    assert all(s.gate == "available" for s in plan.steps if s.action == "controller_restart")


def test_plan_types_are_checked_after_substitution() -> None:
    pb = pbs.parse(GOOD, "pb.yaml")
    plan = pbs.make_plan(pb, {"topic": "orders", "partitions": "12"})
    assert plan.steps[1].args == {"topic": "orders", "partitions": 12}
    assert plan.steps[0].name == "create orders"
    pb = pbs.load(pbs.find("reset-consumer-group"))
    with pytest.raises(PlaybookError, match="must be one of earliest"):
        pbs.make_plan(pb, {"group": "g", "topic": "t", "to": "yesterday"})
    with pytest.raises(PlaybookError, match="to: timestamp needs 'timestamp'"):
        pbs.make_plan(pb, {"group": "g", "topic": "t", "to": "timestamp"})
    plan = pbs.make_plan(pb, {"group": "g", "topic": "t", "to": "timestamp", "timestamp": "1700000000000"})
    assert plan.steps[-1].args["timestamp"] == 1700000000000


def test_templates() -> None:
    env = {"n": 3, "b": [1, 2], "s": "x"}
    assert render("{{ n }}", env) == 3
    assert render("{{b}}", env) == [1, 2]
    assert render("broker {{ n }} of {{ b }}", env) == "broker 3 of 1,2"
    assert render({"k": ["{{ s }}", 1]}, env) == {"k": ["x", 1]}
    assert template_names("{{ a }} and {{ b }}") == ["a", "b"]
    with pytest.raises(ValueError):
        template_names("{{ a.b }}")


def test_type_parsing() -> None:
    assert TypeSpec("list[int]").parse("1, 2,3") == [1, 2, 3]
    assert TypeSpec("list[int]").parse("[4, 5]") == [4, 5]
    assert TypeSpec("bool").parse("yes") is True
    assert TypeSpec("int", optional=True).parse("null") is None
    with pytest.raises(ValueError):
        TypeSpec("int").parse("1.5")
    with pytest.raises(ValueError):
        TypeSpec("bool").parse("perhaps")


def test_find_unknown_playbook() -> None:
    with pytest.raises(PlaybookError, match="no playbook named 'nope'.*rolling-restart"):
        pbs.find("nope")


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "kafkaops"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=60, env={"KAFKAOPS_HOME": str(home), "PATH": "/usr/bin:/bin"}
    )


def test_cli_validate_refuses_bad_playbooks_with_one_line(tmp_path: Path) -> None:
    """Through the real `kafkaops` entry point: exit 1, one line on stderr, no traceback
    (wrong argument types and undefined variables take the same path, tested above)."""
    cases = {
        "broken.yaml": ("name: x\nsteps: [\n", "YAML syntax error"),
        "unknown.yaml": ("name: x\nsteps:\n  - name: a\n    action: reboot\n", "pb:4: step 1 'a': unknown action 'reboot'"),
    }
    for name, (text, expected) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        proc = _cli("playbook", "validate", str(f), home=tmp_path)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert lines[0].startswith(f"error: {f}:")
        assert expected.replace("pb:", f"{name}:") in lines[0] or expected in lines[0], lines[0]
    ok = _cli("playbook", "validate", "expand-partitions", home=tmp_path)
    assert ok.returncode == 0 and "required variables: topic, partitions" in ok.stdout
    typed = _cli("playbook", "validate", "expand-partitions", "--var", "topic=t", "--var", "partitions=six", home=tmp_path)
    assert typed.returncode == 1 and "variable 'partitions' must be int" in typed.stderr
    missing = _cli("playbook", "run", "expand-partitions", "--dry-run", "-b", "127.0.0.1:1", "-z", "127.0.0.1:1", home=tmp_path)
    assert missing.returncode == 1
    assert "missing variable 'topic'" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
