"""From a playbook file to a plan: load and validate it, bind its variables, expand its loops.

:func:`load` / :func:`parse` validate a whole file against the registered actions;
:func:`make_plan` binds variables (``--var`` strings parsed to their declared types,
defaults, and the cluster facts ``all_brokers`` and ``controller``) and expands
``for_each`` loops into the flat :class:`Plan` the runner (``ops/playbooks.py``) executes
and stores, so an interrupted run resumes the very same steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kafkaops.config import ClusterProfile
from kafkaops.ops.actions import ACTIONS
from kafkaops.ops.actions.lifecycle import roll_facts
from kafkaops.ops.playbook_schema import (
    REQUIRED,
    Playbook,
    PlaybookError,
    StepDef,
    Variable,
    load_playbook,
    parse_playbook,
    render,
    whole_template,
)
from kafkaops.resources import shipped_dir


def load(path: Path | str) -> Playbook:
    """Load and validate a playbook file against the registered actions."""
    return load_playbook(path, ACTIONS)


def parse(text: str, file: str = "<playbook>") -> Playbook:
    return parse_playbook(text, file, ACTIONS)


def find(name_or_file: str, directory: Path | None = None) -> Path:
    """A playbook file by path, or by name in the shipped ``playbooks/`` directory."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise PlaybookError("no such playbook file", str(p))
        return p
    base = directory or shipped_dir("playbooks")
    for ext in (".yaml", ".yml"):
        candidate = base / f"{name_or_file}{ext}"
        if candidate.exists():
            return candidate
    known = ", ".join(p.stem for p in shipped(base)) or "none"
    raise PlaybookError(f"no playbook named {name_or_file!r} in {base} (known: {known})")


def shipped(directory: Path | None = None) -> list[Path]:
    """The playbook files in ``directory`` (default: the shipped ones); PlaybookError if none."""
    base = directory or shipped_dir("playbooks")
    found = sorted([*base.glob("*.yaml"), *base.glob("*.yml")])
    if not found:
        raise PlaybookError(f"no playbooks (*.yaml) in {base}")
    return found


# --------------------------------------------------------------------------- plans
@dataclass
class PlannedStep:
    """One concrete step: a registered action with its final arguments."""

    index: int
    name: str
    action: str
    args: dict[str, Any]
    gate: str
    origin: str  # "step 3 'restart brokers' (broker=2)"
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PlannedStep:
        return cls(**{k: raw[k] for k in ("index", "name", "action", "args", "gate", "origin", "line")})


@dataclass
class Plan:
    """A playbook bound to variable values: the flat list of steps a run executes."""

    playbook: str
    file: str
    sha256: str
    variables: dict[str, Any]
    gate_timeout: float
    steps: list[PlannedStep]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["steps"] = [s.to_json() for s in self.steps]
        return d

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Plan:
        return cls(
            raw["playbook"],
            raw["file"],
            raw["sha256"],
            dict(raw["variables"]),
            float(raw["gate_timeout"]),
            [PlannedStep.from_json(s) for s in raw["steps"]],
        )


Facts = Callable[[], dict[str, Any]]


def cluster_facts(cluster: ClusterProfile | str) -> Facts:
    """The built-in variables read from the cluster: ``all_brokers`` (controller last),
    ``all_controllers`` (KRaft), ``controller`` (see :func:`~kafkaops.ops.actions.lifecycle.roll_facts`)."""
    return lambda: roll_facts(cluster)


class _LazyFacts(Mapping[str, Any]):
    def __init__(self, facts: Facts | None) -> None:
        self._facts = facts
        self._values: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._values is None:
            if self._facts is None:
                raise KeyError("cluster facts")
            self._values = self._facts()
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def parse_overrides(pb: Playbook, overrides: Mapping[str, str]) -> dict[str, Any]:
    """``--var name=text`` values parsed to the declared types; PlaybookError naming a bad or unknown one."""
    values: dict[str, Any] = {}
    for name, text in overrides.items():
        var: Variable | None = pb.variables.get(name)
        if var is None:
            declared = ", ".join(pb.variables) or "none"
            raise PlaybookError(f"unknown variable {name!r} given with --var (declared: {declared})", pb.file)
        try:
            values[name] = var.type.parse(text)
        except (ValueError, TypeError) as exc:
            raise PlaybookError(f"variable {name!r} must be {var.type.describe()}: {exc}", pb.file) from None
    return values


def bind_variables(pb: Playbook, overrides: Mapping[str, str], facts: Facts | None = None) -> dict[str, Any]:
    """Variable values: ``--var`` strings parsed to their declared types, else defaults."""
    given = parse_overrides(pb, overrides)
    lazy = _LazyFacts(facts)
    values: dict[str, Any] = {}
    for var in pb.variables.values():
        if var.name in given:
            values[var.name] = given[var.name]
        elif var.default is REQUIRED:
            raise PlaybookError(
                f"missing variable {var.name!r} ({var.type.describe()}"
                + (f": {var.description}" if var.description else "")
                + f"); pass --var {var.name}=VALUE",
                pb.file,
            )
        elif (ref := whole_template(var.default)) is not None:
            try:
                values[var.name] = lazy[ref]
            except KeyError:
                raise PlaybookError(f"variable {var.name!r} defaults to {{{{ {ref} }}}}, which needs the cluster", pb.file) from None
        else:
            values[var.name] = var.default
    return values


def make_plan(pb: Playbook, overrides: Mapping[str, str] | None = None, facts: Facts | None = None) -> Plan:
    """Bind variables and expand ``for_each`` loops into the flat list of steps to run."""
    lazy = _LazyFacts(facts)  # read the cluster at most once per plan
    values = bind_variables(pb, overrides or {}, (lambda: dict(lazy)) if facts is not None else None)

    class _Env(dict[str, Any]):
        def __missing__(self, key: str) -> Any:
            try:
                return lazy[key]
            except KeyError:
                raise PlaybookError(f"{{{{ {key} }}}} needs the cluster", pb.file) from None

    env = _Env(values)
    steps: list[PlannedStep] = []
    for s in pb.steps:
        _expand(pb, s, env, pb.gate, steps, "")
    return Plan(pb.name, pb.file, pb.sha256, values, pb.gate_timeout, steps)


def _expand(pb: Playbook, s: StepDef, env: dict[str, Any], gate: str, out: list[PlannedStep], suffix: str) -> None:
    gate = s.gate or gate
    if s.for_each is not None:
        items = render(s.for_each, env)
        if not isinstance(items, list):
            raise PlaybookError(f"for_each must give a list, not {items!r}", pb.file, s.line, s.label)
        for item in items:
            child = type(env)(env)
            child[s.loop_var] = item
            inner = StepDef(**{**s.__dict__, "for_each": None})
            _expand(pb, inner, child, gate, out, f"{suffix} ({s.loop_var}={item})")
        return
    if s.steps:
        for sub in s.steps:
            _expand(pb, sub, env, gate, out, suffix)
        return
    assert s.action is not None
    spec = ACTIONS[s.action]
    args = {k: render(v, env) for k, v in s.args.items()}
    for key, value in args.items():
        arg = spec.args[key]
        if isinstance(value, int) and not isinstance(value, bool) and arg.type.name == "float":
            args[key] = value = float(value)
        if not arg.type.check(value):
            raise PlaybookError(
                f"argument {key!r} of {s.action!r} must be {arg.type.describe()}, not {type(value).__name__} {value!r}",
                pb.file,
                s.line,
                s.label,
            )
    if spec.check is not None:
        problem = spec.check({**{a.name: a.default for a in spec.args.values() if not a.required}, **args})
        if problem:
            raise PlaybookError(problem, pb.file, s.line, s.label)
    out.append(PlannedStep(len(out) + 1, str(render(s.name, env)), s.action, args, gate, s.label + suffix, s.line))
