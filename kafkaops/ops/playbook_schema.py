"""Playbook files: the model (variables, steps, gates) and the validator that checks a file whole.

A playbook is validated as a whole before any step runs. Every error names the file,
the line and the step, e.g. ``rolling-restart.yaml:23: step 2 'restart': argument
'broker' must be int, not str 'one'``. The YAML with line numbers is
``ops/playbook_yaml.py``; value types, action schemas and ``{{ name }}`` templates are
``ops/playbook_types.py``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafkaops.ops.playbook_types import (
    REQUIRED,
    VALUE_CHECKS,
    VARIABLE_TYPES,
    ActionSpec,
    ArgSpec,
    TypeSpec,
    render,
    template_names,
    whole_template,
)
from kafkaops.ops.playbook_yaml import PlaybookError, Source, YamlPath, parse_yaml

__all__ = [
    "GATES", "REQUIRED", "ActionSpec", "ArgSpec", "Playbook", "PlaybookError", "StepDef", "TypeSpec", "Variable",
    "load_playbook", "parse_playbook", "render", "template_names", "whole_template",
]

PLAYBOOK_KEYS = {"name", "description", "variables", "gate", "gate_timeout", "steps"}
VARIABLE_KEYS = {"type", "default", "description"}
ACTION_STEP_KEYS = {"name", "action", "args", "gate", "for_each", "as"}
GROUP_STEP_KEYS = {"name", "steps", "for_each", "as", "gate"}
GATES = ("healthy", "available", "none")
"""healthy: nothing under-replicated, under min ISR or offline; available: nothing under min
ISR or offline (under-replicated tolerated, e.g. while a broker is meant to be down); none."""

BUILTINS: dict[str, TypeSpec] = {
    "all_brokers": TypeSpec("list[int]"),
    "all_controllers": TypeSpec("list[int]"),
    "controller": TypeSpec("int"),
}
"""Facts the runner reads from the cluster when it makes the plan. ``all_brokers``: the live
broker ids, the controller last (as Strimzi rolls it); ``all_controllers``: KRaft's dedicated
controllers, the active one last ([] in ZooKeeper mode); ``controller``: the controller's id
(KRaft: the active controller)."""


@dataclass(frozen=True)
class Variable:
    name: str
    type: TypeSpec
    default: Any = REQUIRED
    description: str = ""


@dataclass
class StepDef:
    """One step as written: an action with args, or a group of steps, optionally per item."""

    name: str
    line: int | None
    action: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    gate: str | None = None
    for_each: Any = None
    loop_var: str = "item"
    steps: list[StepDef] = field(default_factory=list)
    label: str = ""  # "step 3 'restart brokers'" (for messages)


@dataclass
class Playbook:
    """A validated playbook file (variables not yet bound)."""

    name: str
    description: str
    file: str
    sha256: str
    variables: dict[str, Variable]
    gate: str
    gate_timeout: float
    steps: list[StepDef]


def load_playbook(path: Path | str, actions: Mapping[str, ActionSpec]) -> Playbook:
    """Read and validate a playbook file (structure, actions, argument types, variable names)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise PlaybookError(f"cannot read playbook: {exc.strerror or exc}", str(p)) from None
    return parse_playbook(text, str(p), actions)


def parse_playbook(text: str, file: str, actions: Mapping[str, ActionSpec]) -> Playbook:
    src = parse_yaml(text, file)
    return _Validator(src, actions).playbook()


class _Validator:
    def __init__(self, src: Source, actions: Mapping[str, ActionSpec]):
        self.src, self.actions = src, actions

    def fail(self, message: str, path: YamlPath, step: str | None = None) -> PlaybookError:
        return PlaybookError(message, self.src.file, self.src.line(path), step)

    def playbook(self) -> Playbook:
        data = self.src.data
        if not isinstance(data, dict):
            raise self.fail("a playbook is a mapping with 'name' and 'steps'", ())
        self._keys(data, PLAYBOOK_KEYS, (), "playbook")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail("'name' must be a non-empty string", ("name",))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("'description' must be a string", ("description",))
        gate = self._gate(data.get("gate", "healthy"), ("gate",), None)
        gate_timeout = data.get("gate_timeout", 300)
        if not VALUE_CHECKS["float"](gate_timeout) or gate_timeout <= 0:
            raise self.fail("'gate_timeout' must be a positive number of seconds", ("gate_timeout",))
        variables = self._variables(data.get("variables") or {})
        steps_raw = data.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            raise self.fail("'steps' must be a non-empty list", ("steps",))
        scope = {**BUILTINS, **{v.name: v.type for v in variables.values()}}
        steps = [self._step(s, ("steps", i), str(i + 1), scope) for i, s in enumerate(steps_raw)]
        return Playbook(name, description, self.src.file, self.src.sha256, variables, gate, float(gate_timeout), steps)

    def _keys(self, obj: dict[str, Any], allowed: set[str], path: YamlPath, what: str, step: str | None = None) -> None:
        for key in obj:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})", (*path, key), step
                )

    def _gate(self, gate: Any, path: YamlPath, step: str | None) -> str:
        if gate not in GATES:
            raise self.fail(f"gate must be one of {', '.join(GATES)}, not {gate!r}", path, step)
        return str(gate)

    def _variables(self, raw: Any) -> dict[str, Variable]:
        if not isinstance(raw, dict):
            raise self.fail("'variables' must be a mapping of name -> {type, default, description}", ("variables",))
        result: dict[str, Variable] = {}
        for name, spec in raw.items():
            path: YamlPath = ("variables", name)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
                raise self.fail(f"bad variable name {name!r}", path)
            if name in BUILTINS:
                raise self.fail(f"variable {name!r} shadows a built-in ({', '.join(BUILTINS)})", path)
            if not isinstance(spec, dict):
                raise self.fail(f"variable {name!r} must be a mapping with 'type'", path)
            self._keys(spec, VARIABLE_KEYS, path, f"variable {name!r}")
            tname = spec.get("type")
            if tname not in VARIABLE_TYPES:
                raise self.fail(
                    f"variable {name!r}: type must be one of {', '.join(VARIABLE_TYPES)}, not {tname!r}", (*path, "type")
                )
            vtype = TypeSpec(str(tname), optional="default" in spec and spec["default"] is None)
            default = spec.get("default", REQUIRED)
            if default is not REQUIRED and default is not None:
                ref = whole_template(default)
                if ref is not None:
                    if ref not in BUILTINS:
                        raise self.fail(
                            f"variable {name!r}: a default may only refer to a built-in ({', '.join(BUILTINS)})",
                            (*path, "default"),
                        )
                    if not vtype.accepts(BUILTINS[ref]):
                        raise self.fail(
                            f"variable {name!r}: default {{{{ {ref} }}}} is {BUILTINS[ref].name}, not {vtype.name}",
                            (*path, "default"),
                        )
                elif not vtype.check(default):
                    raise self.fail(
                        f"variable {name!r}: default {default!r} is not {vtype.describe()}", (*path, "default")
                    )
            result[str(name)] = Variable(str(name), vtype, default, str(spec.get("description", "")))
        return result

    def _step(self, raw: Any, path: YamlPath, number: str, scope: dict[str, TypeSpec]) -> StepDef:
        label = f"step {number}"
        if not isinstance(raw, dict):
            raise self.fail("a step must be a mapping with 'name' and 'action' (or 'steps')", path, label)
        name = raw.get("name")
        if isinstance(name, str) and name:
            label = f"{label} {name!r}"
        else:
            raise self.fail("every step needs a 'name' (a non-empty string)", path, label)
        line = self.src.line(path)
        step = StepDef(name=name, line=line, label=label)
        if "gate" in raw:
            step.gate = self._gate(raw["gate"], (*path, "gate"), label)
        inner_scope = scope
        if "for_each" in raw:
            loop_var = raw.get("as", "item")
            if not isinstance(loop_var, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", loop_var):
                raise self.fail(f"'as' must be a variable name, not {loop_var!r}", (*path, "as"), label)
            step.for_each, step.loop_var = raw["for_each"], loop_var
            item_type = self._list_type(raw["for_each"], (*path, "for_each"), label, scope)
            inner_scope = {**scope, loop_var: item_type}
        elif "as" in raw:
            raise self.fail("'as' only makes sense with 'for_each'", (*path, "as"), label)
        self._names(name, (*path, "name"), label, inner_scope)
        if "steps" in raw:
            self._keys(raw, GROUP_STEP_KEYS, path, "a step group", label)
            subs = raw["steps"]
            if not isinstance(subs, list) or not subs:
                raise self.fail("'steps' of a group must be a non-empty list", (*path, "steps"), label)
            step.steps = [
                self._step(s, (*path, "steps", j), f"{number}.{j + 1}", inner_scope) for j, s in enumerate(subs)
            ]
            return step
        self._keys(raw, ACTION_STEP_KEYS, path, "a step", label)
        action = raw.get("action")
        if action not in self.actions:
            close = difflib.get_close_matches(str(action), list(self.actions), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(self.actions))
            raise self.fail(f"unknown action {action!r} ({hint}known: {known})", (*path, "action"), label)
        spec = self.actions[str(action)]
        args = raw.get("args") or {}
        if not isinstance(args, dict):
            raise self.fail("'args' must be a mapping of argument -> value", (*path, "args"), label)
        for key in args:
            if key not in spec.args:
                allowed = ", ".join(spec.args) or "none"
                raise self.fail(
                    f"action {action!r} has no argument {key!r} (arguments: {allowed})", (*path, "args", key), label
                )
        for arg in spec.args.values():
            if arg.required and arg.name not in args:
                raise self.fail(f"action {action!r} needs argument {arg.name!r}", (*path, "args"), label)
        for key, value in args.items():
            self._arg(spec, spec.args[key], value, (*path, "args", key), label, inner_scope)
        if spec.check is not None and not any(template_names(v) for v in args.values()):
            problem = spec.check({**{a.name: a.default for a in spec.args.values() if not a.required}, **args})
            if problem:
                raise self.fail(problem, (*path, "args"), label)
        step.action, step.args = str(action), dict(args)
        return step

    def _names(self, value: Any, path: YamlPath, label: str, scope: dict[str, TypeSpec]) -> list[str]:
        try:
            names = template_names(value)
        except ValueError as exc:
            raise self.fail(str(exc), path, label) from None
        for n in names:
            if n not in scope:
                raise self.fail(
                    f"undefined variable {{{{ {n} }}}} (declare it under 'variables'; known: "
                    f"{', '.join(sorted(scope)) or 'none'})",
                    path,
                    label,
                )
        return names

    def _list_type(self, value: Any, path: YamlPath, label: str, scope: dict[str, TypeSpec]) -> TypeSpec:
        self._names(value, path, label, scope)
        ref = whole_template(value)
        if ref is not None:
            t = scope[ref]
            if not t.name.startswith("list["):
                raise self.fail(f"for_each needs a list, but {{{{ {ref} }}}} is {t.name}", path, label)
            return TypeSpec(t.name[5:-1])
        if isinstance(value, list) and value:
            if all(VALUE_CHECKS["int"](v) for v in value):
                return TypeSpec("int")
            if all(isinstance(v, str) and not template_names(v) for v in value):
                return TypeSpec("str")
        raise self.fail("for_each must be {{ a list variable }} or a non-empty list of ints or strings", path, label)

    def _arg(self, spec: ActionSpec, arg: ArgSpec, value: Any, path: YamlPath, label: str, scope: dict[str, TypeSpec]) -> None:
        names = self._names(value, path, label, scope)
        ref = whole_template(value)
        if ref is not None:
            if not arg.type.accepts(scope[ref]):
                raise self.fail(
                    f"argument {arg.name!r} of {spec.name!r} must be {arg.type.describe()}, "
                    f"but {{{{ {ref} }}}} is {scope[ref].name}",
                    path,
                    label,
                )
            return
        if names and isinstance(value, str):
            if arg.type.name != "str":
                raise self.fail(
                    f"argument {arg.name!r} of {spec.name!r} must be {arg.type.describe()}; text with "
                    f"{{{{ }}}} inside makes a string",
                    path,
                    label,
                )
            return
        if names:
            return  # templates inside lists/dicts are checked again after substitution
        if not arg.type.check(value):
            raise self.fail(
                f"argument {arg.name!r} of {spec.name!r} must be {arg.type.describe()}, "
                f"not {type(value).__name__} {value!r}",
                path,
                label,
            )
