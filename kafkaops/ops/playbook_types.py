"""The value types of playbook arguments and variables, action schemas, and ``{{ name }}`` templates.

An action's schema comes from its signature (:meth:`ActionSpec.from_function`): each
keyword-only parameter's annotation maps to a :class:`TypeSpec` (str, int, float, bool,
list[int], list[str], dict[str,str], a Literal's choices, optionally None). Templates are
deliberately small: ``{{ name }}`` and nothing else (no filters, no expressions), so a
playbook reads the same to an operator as it does to the runner.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import yaml


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
        return VALUE_CHECKS[self.name](value)

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

VALUE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list[int]": lambda v: isinstance(v, list) and all(VALUE_CHECKS["int"](i) for i in v),
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
