"""Playbook files: YAML loading with line numbers, the schema, and ``{{ name }}`` variables.

A playbook is validated as a whole before any step runs. Every error names the
file, the line and the step, e.g. ``rolling-restart.yaml:23: step 2 'restart':
argument 'broker' must be int, not str 'one'``. Templates are deliberately
small: ``{{ name }}`` and nothing else (no filters, no expressions), so a
playbook reads the same to an operator as it does to the runner.
"""

from __future__ import annotations

import hashlib
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from kafkaops.errors import KafkaopsError


class PlaybookError(KafkaopsError):
    """A playbook that cannot run as written: syntax, schema, types or variables."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, step: str | None = None):
        self.file, self.line, self.step, self.reason = file, line, step, message
        where = file or "<playbook>"
        if line is not None:
            where += f":{line}"
        text = f"{where}: "
        if step:
            text += f"{step}: "
        super().__init__(text + message)


# --------------------------------------------------------------------------- types
@dataclass(frozen=True)
class TypeSpec:
    """A value type the schema knows: str, int, float, bool, list[int], list[str], dict[str,str]."""

    name: str
    choices: tuple[str, ...] = ()
    optional: bool = False

    def check(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.choices:
            return isinstance(value, str) and value in self.choices
        return _CHECKS[self.name](value)

    def describe(self) -> str:
        base = "one of " + "|".join(self.choices) if self.choices else self.name
        return base + (" or null" if self.optional else "")

    def accepts(self, other: TypeSpec) -> bool:
        """Whether a variable of type ``other`` may fill an argument of this type."""
        if self.choices:
            return other.name == "str"
        if self.name == other.name:
            return True
        return self.name == "float" and other.name == "int"

    def parse(self, text: str) -> Any:
        """Parse a ``--var k=v`` string into this type; ValueError when it does not fit."""
        if self.optional and text.strip().lower() in ("", "null", "none"):
            return None
        if self.name == "str":
            value: Any = text
        elif self.name == "int":
            value = int(text)
        elif self.name == "float":
            value = float(text)
        elif self.name == "bool":
            low = text.strip().lower()
            if low not in _BOOLS:
                raise ValueError(f"not a boolean: {text!r}")
            value = _BOOLS[low]
        elif self.name.startswith("list["):
            inner = text.strip()
            items = yaml.safe_load(inner) if inner.startswith("[") else [i for i in inner.split(",") if i.strip()]
            if not isinstance(items, list):
                raise ValueError(f"not a list: {text!r}")
            conv: Callable[[Any], Any] = int if self.name == "list[int]" else str
            value = [conv(i.strip() if isinstance(i, str) else i) for i in items]
        elif self.name == "dict[str,str]":
            value = yaml.safe_load(text)
            if not isinstance(value, dict):
                raise ValueError(f"not a mapping: {text!r}")
            value = {str(k): str(v) for k, v in value.items()}
        else:  # pragma: no cover - the type table is closed
            raise ValueError(self.name)
        if not self.check(value):
            raise ValueError(f"{text!r} is not {self.describe()}")
        return value


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}

_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list[int]": lambda v: isinstance(v, list) and all(_CHECKS["int"](i) for i in v),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "dict[str,str]": lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
}
VARIABLE_TYPES = ("str", "int", "float", "bool", "list[int]", "list[str]", "dict[str,str]")


def type_of_annotation(annotation: Any) -> TypeSpec:
    """The TypeSpec of an action parameter's annotation (int, list[str], Literal[...], X | None)."""
    optional = False
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"unsupported union {annotation!r}")
        annotation, origin = args[0], get_origin(args[0])
    if origin is Literal:
        return TypeSpec("str", tuple(str(a) for a in get_args(annotation)), optional)
    simple = {str: "str", int: "int", float: "float", bool: "bool"}
    if annotation in simple:
        return TypeSpec(simple[annotation], optional=optional)
    if origin is list and get_args(annotation) in ((int,), (str,)):
        return TypeSpec(f"list[{get_args(annotation)[0].__name__}]", optional=optional)
    if origin is dict and get_args(annotation) == (str, str):
        return TypeSpec("dict[str,str]", optional=optional)
    raise TypeError(f"unsupported action argument type {annotation!r}")


# --------------------------------------------------------------------------- action schema
REQUIRED: Any = object()


@dataclass(frozen=True)
class ArgSpec:
    name: str
    type: TypeSpec
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class ActionSpec:
    """A named action: its function, its argument schema (from the signature) and a summary."""

    name: str
    func: Callable[..., str]
    args: Mapping[str, ArgSpec]
    summary: str
    check: Callable[[dict[str, Any]], str | None] | None = None
    """Cross-argument rule (e.g. ``to: timestamp`` needs ``timestamp``); returns an error or None."""

    @classmethod
    def from_function(
        cls, name: str, func: Callable[..., str], check: Callable[[dict[str, Any]], str | None] | None = None
    ) -> ActionSpec:
        import inspect

        hints = typing.get_type_hints(func)
        args: dict[str, ArgSpec] = {}
        for pname, param in inspect.signature(func).parameters.items():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue  # the context comes first, positionally
            default = REQUIRED if param.default is inspect.Parameter.empty else param.default
            args[pname] = ArgSpec(pname, type_of_annotation(hints[pname]), default)
        summary = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else name
        return cls(name, func, args, summary, check)


# --------------------------------------------------------------------------- templates
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_BRACES = re.compile(r"\{\{|\}\}")


def template_names(value: Any) -> list[str]:
    """Variable names referenced by ``{{ name }}`` anywhere in ``value``; ValueError on bad syntax."""
    if isinstance(value, str):
        stripped = _TEMPLATE.sub("", value)
        if _BRACES.search(stripped):
            raise ValueError(f"bad template in {value!r}: only {{{{ name }}}} is supported")
        return _TEMPLATE.findall(value)
    if isinstance(value, list):
        return [n for v in value for n in template_names(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in template_names(v)]
    return []


def whole_template(value: Any) -> str | None:
    """The variable name if ``value`` is exactly one ``{{ name }}`` (then it keeps its type)."""
    if isinstance(value, str):
        m = _TEMPLATE.fullmatch(value.strip())
        if m:
            return m.group(1)
    return None


def render(value: Any, env: Mapping[str, Any]) -> Any:
    """Substitute variables: a whole ``{{ x }}`` keeps x's type, embedded ones become text."""
    if isinstance(value, str):
        name = whole_template(value)
        if name is not None:
            return env[name]
        return _TEMPLATE.sub(lambda m: _text(env[m.group(1)]), value)
    if isinstance(value, list):
        return [render(v, env) for v in value]
    if isinstance(value, dict):
        return {k: render(v, env) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- YAML with lines
Path_ = tuple[str | int, ...]


@dataclass
class Source:
    """A parsed YAML document and the 1-based line of every key or item in it."""

    file: str
    data: Any
    lines: dict[Path_, int]
    text: str

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML with PyYAML's composer so every node keeps its line (start_mark.line)."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            lines: dict[Path_, int] = {}
            if node is not None:
                _walk(node, (), lines, file)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise PlaybookError(f"YAML syntax error: {problem}", file, line) from None
    except yaml.YAMLError as exc:
        raise PlaybookError(f"YAML error: {exc}", file) from None
    return Source(file, data, lines, text)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise PlaybookError(f"duplicate key {key!r}", file, key_node.start_mark.line + 1)
            seen.add(key)
            _walk(value_node, (*path, key), lines, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, file)


# --------------------------------------------------------------------------- the playbook model
PLAYBOOK_KEYS = {"name", "description", "variables", "gate", "gate_timeout", "steps"}
VARIABLE_KEYS = {"type", "default", "description"}
ACTION_STEP_KEYS = {"name", "action", "args", "gate", "for_each", "as"}
GROUP_STEP_KEYS = {"name", "steps", "for_each", "as", "gate"}
GATES = ("healthy", "available", "none")
"""healthy: nothing under-replicated, under min ISR or offline; available: nothing under min
ISR or offline (under-replicated tolerated, e.g. while a broker is meant to be down); none."""

BUILTINS: dict[str, TypeSpec] = {
    "all_brokers": TypeSpec("list[int]"),
    "controller": TypeSpec("int"),
}
"""Facts the runner reads from the cluster when it makes the plan. ``all_brokers``: the live
broker ids, the controller last (as Strimzi rolls it); ``controller``: the controller's id."""


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

    def fail(self, message: str, path: Path_, step: str | None = None) -> PlaybookError:
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
        if not _CHECKS["float"](gate_timeout) or gate_timeout <= 0:
            raise self.fail("'gate_timeout' must be a positive number of seconds", ("gate_timeout",))
        variables = self._variables(data.get("variables") or {})
        steps_raw = data.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            raise self.fail("'steps' must be a non-empty list", ("steps",))
        scope = {**BUILTINS, **{v.name: v.type for v in variables.values()}}
        steps = [self._step(s, ("steps", i), str(i + 1), scope) for i, s in enumerate(steps_raw)]
        return Playbook(name, description, self.src.file, self.src.sha256, variables, gate, float(gate_timeout), steps)

    def _keys(self, obj: dict[str, Any], allowed: set[str], path: Path_, what: str, step: str | None = None) -> None:
        for key in obj:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})", (*path, key), step
                )

    def _gate(self, gate: Any, path: Path_, step: str | None) -> str:
        if gate not in GATES:
            raise self.fail(f"gate must be one of {', '.join(GATES)}, not {gate!r}", path, step)
        return str(gate)

    def _variables(self, raw: Any) -> dict[str, Variable]:
        if not isinstance(raw, dict):
            raise self.fail("'variables' must be a mapping of name -> {type, default, description}", ("variables",))
        result: dict[str, Variable] = {}
        for name, spec in raw.items():
            path: Path_ = ("variables", name)
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

    def _step(self, raw: Any, path: Path_, number: str, scope: dict[str, TypeSpec]) -> StepDef:
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
            import difflib

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

    def _names(self, value: Any, path: Path_, label: str, scope: dict[str, TypeSpec]) -> list[str]:
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

    def _list_type(self, value: Any, path: Path_, label: str, scope: dict[str, TypeSpec]) -> TypeSpec:
        self._names(value, path, label, scope)
        ref = whole_template(value)
        if ref is not None:
            t = scope[ref]
            if not t.name.startswith("list["):
                raise self.fail(f"for_each needs a list, but {{{{ {ref} }}}} is {t.name}", path, label)
            return TypeSpec(t.name[5:-1])
        if isinstance(value, list) and value:
            if all(_CHECKS["int"](v) for v in value):
                return TypeSpec("int")
            if all(isinstance(v, str) and not template_names(v) for v in value):
                return TypeSpec("str")
        raise self.fail("for_each must be {{ a list variable }} or a non-empty list of ints or strings", path, label)

    def _arg(self, spec: ActionSpec, arg: ArgSpec, value: Any, path: Path_, label: str, scope: dict[str, TypeSpec]) -> None:
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


def describe_value(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"
