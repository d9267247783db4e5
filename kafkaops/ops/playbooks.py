"""Playbook runner: validated plan, health gates, ZooKeeper progress, lock and audit trail.

A run goes: load and validate the whole file (:func:`load`), bind variables and
expand ``for_each`` into a flat :class:`Plan` (:func:`make_plan`), then
:class:`PlaybookRunner` executes the plan step by step:

- one run per cluster at a time: a kazoo ``Lock`` at ``<root>/playbooks/lock``. A
  second run fails fast naming the holder (or waits ``lock_timeout`` seconds); a
  holder that died on this host is waited out until its ZooKeeper session expires;
- progress at ``<root>/playbooks/runs/<playbook>`` (the plan, each step's status), so
  ``resume`` continues at the first unfinished step of the stored plan;
- after each step a health gate (``healthy``: nothing under-replicated, under min ISR
  or offline; ``available``: nothing under min ISR or offline; ``none``);
- an audit record per step start and outcome (who, when, what, outcome) as sequential
  znodes under ``<root>/playbooks/audit/<run id>/`` and as JSON lines in a local file.

The library never prints or reads stdin: progress goes to an ``on_event`` callback and
confirmation to the ``confirm`` callback of the ActionContext.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, LockTimeout, NoNodeError
from kazoo.recipe.lock import Lock

from kafkaops.errors import KafkaopsError
from kafkaops.resources import shipped_dir
from kafkaops.ops.actions import ACTIONS, ActionContext, cluster_health, wait_for_health
from kafkaops.ops.playbook_schema import (
    REQUIRED,
    Playbook,
    PlaybookError,
    StepDef,
    load_playbook,
    parse_playbook,
    render,
    whole_template,
)

log = logging.getLogger(__name__)

"""The playbooks shipped with kafkaops (``playbooks/`` at the project root)."""


class StepFailed(KafkaopsError):
    """A step (or the health gate after it) failed; the run stopped there."""

    def __init__(self, message: str, step: PlannedStep | None = None):
        super().__init__(message)
        self.step = step


class PlaybookLocked(KafkaopsError):
    """Another playbook run holds this cluster's playbook lock."""


class RunnerError(KafkaopsError):
    """Progress, lock or audit could not be recorded in ZooKeeper."""


class NothingToResume(KafkaopsError):
    """``--resume`` found no unfinished run of this playbook."""


# --------------------------------------------------------------------------- loading
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


def cluster_facts(bootstrap_servers: str) -> Facts:
    """The built-in variables read from the cluster: ``all_brokers`` (controller last), ``controller``."""

    def facts() -> dict[str, Any]:
        h = cluster_health(bootstrap_servers)
        brokers = sorted(h.live_brokers, key=lambda b: (b == h.controller_id, b))
        return {"all_brokers": brokers, "controller": h.controller_id if h.controller_id is not None else -1}

    return facts


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


def bind_variables(pb: Playbook, overrides: Mapping[str, str], facts: Facts | None = None) -> dict[str, Any]:
    """Variable values: ``--var`` strings parsed to their declared types, else defaults."""
    for name in overrides:
        if name not in pb.variables:
            declared = ", ".join(pb.variables) or "none"
            raise PlaybookError(f"unknown variable {name!r} given with --var (declared: {declared})", pb.file)
    lazy = _LazyFacts(facts)
    values: dict[str, Any] = {}
    for var in pb.variables.values():
        if var.name in overrides:
            try:
                values[var.name] = var.type.parse(overrides[var.name])
            except (ValueError, TypeError) as exc:
                raise PlaybookError(f"variable {var.name!r} must be {var.type.describe()}: {exc}", pb.file) from None
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


# --------------------------------------------------------------------------- runs
@dataclass
class RunEvent:
    """What the runner reports while it works (the CLI renders these)."""

    kind: str  # lock | note | start | skip | progress | gate | done | failed | finished
    message: str
    step: PlannedStep | None = None
    total: int = 0


@dataclass
class RunResult:
    run_id: str
    playbook: str
    executed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    resumed: bool = False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _identity() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return True


class PlaybookRunner:
    """Runs plans on one cluster: locked, resumable, health-gated, audited (see module doc)."""

    def __init__(
        self,
        ctx: ActionContext,
        zk: KazooClient,
        *,
        root: str = "/kafkaops",
        audit_file: Path | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        lock_timeout: float = 0.0,
        stale_lock_wait: float = 45.0,
    ) -> None:
        self.ctx, self.zk = ctx, zk
        self.base = root.rstrip("/") + "/playbooks"
        self.audit_file = audit_file
        self.on_event = on_event or (lambda _e: None)
        self.lock_timeout = lock_timeout
        self.stale_lock_wait = stale_lock_wait
        self.identity = _identity()

    # ---- znodes
    def run_path(self, playbook: str) -> str:
        return f"{self.base}/runs/{playbook}"

    def audit_path(self, run_id: str) -> str:
        return f"{self.base}/audit/{run_id}"

    def progress(self, playbook: str) -> dict[str, Any] | None:
        """The stored progress record of the playbook's last run, or None."""
        try:
            data, _ = self.zk.retry(self.zk.get, self.run_path(playbook))
        except NoNodeError:
            return None
        record: dict[str, Any] = json.loads(data.decode())
        return record

    def audit_trail(self, run_id: str) -> list[dict[str, Any]]:
        """The audit records of one run from ZooKeeper, oldest first."""
        path = self.audit_path(run_id)
        try:
            children = sorted(self.zk.retry(self.zk.get_children, path))
        except NoNodeError:
            return []
        return [json.loads(self.zk.retry(self.zk.get, f"{path}/{c}")[0].decode()) for c in children]

    def _save(self, record: dict[str, Any]) -> None:
        record["updated_at"] = _now()
        path = self.run_path(record["playbook"])
        data = json.dumps(record).encode()
        if self.zk.retry(self.zk.exists, path):
            self.zk.retry(self.zk.set, path, data)
        else:
            self.zk.retry(self.zk.create, path, data, makepath=True)

    def _audit(self, record: dict[str, Any], step: PlannedStep, event: str, **extra: Any) -> None:
        entry = {
            "time": _now(),
            "run_id": record["run_id"],
            "playbook": record["playbook"],
            "index": step.index,
            "step": step.name,
            "action": step.action,
            "args": step.args,
            "event": event,
            **self.identity,
            **extra,
        }
        self.zk.retry(
            self.zk.create, f"{self.audit_path(record['run_id'])}/r-", json.dumps(entry).encode(), sequence=True, makepath=True
        )
        if self.audit_file is not None:
            self.audit_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.audit_file, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())

    # ---- lock
    def _lock(self, playbook: str, run_id: str) -> Lock:
        ident = json.dumps({**self.identity, "playbook": playbook, "run_id": run_id})
        lock = Lock(self.zk, f"{self.base}/lock", identifier=ident)
        if self._acquire(lock, self.lock_timeout):
            return lock
        holder = self._holder(lock)
        if holder and holder.get("host") == self.identity["host"] and not _pid_alive(int(holder.get("pid", 0))):
            self.on_event(RunEvent("lock", f"waiting for the lock of dead process {holder.get('pid')} to expire"))
            if self._acquire(lock, self.stale_lock_wait):
                return lock
            holder = self._holder(lock)
        who = (
            f"{holder.get('playbook')} run {holder.get('run_id')} by {holder.get('user')}@{holder.get('host')} "
            f"(pid {holder.get('pid')})"
            if holder
            else "another run"
        )
        raise PlaybookLocked(
            f"another playbook run holds the lock on this cluster: {who}; wait for it to finish"
            + ("" if self.lock_timeout else " or pass --lock-wait SECONDS")
        )

    @staticmethod
    def _acquire(lock: Lock, timeout: float) -> bool:
        try:
            if timeout <= 0:
                return bool(lock.acquire(blocking=False))
            return bool(lock.acquire(blocking=True, timeout=timeout))
        except LockTimeout:
            lock.cancel()
            return False

    @staticmethod
    def _holder(lock: Lock) -> dict[str, Any] | None:
        try:
            contenders = lock.contenders()
        except Exception:  # noqa: BLE001
            return None
        for c in contenders:
            try:
                holder: dict[str, Any] = json.loads(c)
                return holder
            except ValueError:
                return {"user": c}
        return None

    # ---- resume
    def resume_plan(self, pb: Playbook, overrides: Mapping[str, str] | None = None) -> tuple[Plan, set[int]]:
        """The stored plan of the playbook's unfinished run and the indices already done."""
        record = self.progress(pb.name)
        if record is None:
            raise NothingToResume(f"no earlier run of playbook {pb.name!r} to resume on this cluster")
        if record.get("state") == "succeeded":
            raise NothingToResume(
                f"the last run of {pb.name!r} ({record['run_id']}) finished at {record.get('updated_at')}; nothing to resume"
            )
        if record["plan"]["sha256"] != pb.sha256:
            raise PlaybookError(
                f"the playbook changed since run {record['run_id']} started; resume needs the same file "
                "(or run it afresh without --resume)",
                pb.file,
            )
        plan = Plan.from_json(record["plan"])
        for k, text in (overrides or {}).items():
            var = pb.variables.get(k)
            if var is None:
                raise PlaybookError(f"unknown variable {k!r} given with --var", pb.file)
            try:
                value = var.type.parse(text)
            except (ValueError, TypeError) as exc:
                raise PlaybookError(f"variable {k!r} must be {var.type.describe()}: {exc}", pb.file) from None
            if value != plan.variables.get(k):
                raise PlaybookError(
                    f"--var {k}={text} differs from the interrupted run's {k}={plan.variables.get(k)!r}", pb.file
                )
        done = {int(i) for i, s in record["status"].items() if s == "done"}
        return plan, done

    # ---- running
    def run(self, plan: Plan, *, resume: bool = False, playbook: Playbook | None = None) -> RunResult:
        """Execute ``plan`` (or, with ``resume``, the stored unfinished run of it) under the lock.

        Raises StepFailed naming the step and the reason when a step or its health gate
        fails; the progress record then says where to resume.
        """
        try:
            return self._run(plan, resume, playbook)
        except KazooException as exc:
            raise RunnerError(f"ZooKeeper failed while running {plan.playbook}: {exc!r}; run again with --resume") from None

    def _run(self, plan: Plan, resume: bool, playbook: Playbook | None) -> RunResult:
        run_id = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        if resume:
            run_id = (self.progress(plan.playbook) or {}).get("run_id", run_id)
        lock = self._lock(plan.playbook, run_id)
        try:
            done: set[int] = set()
            if resume:
                if playbook is None:
                    raise ValueError("resume needs the playbook")
                plan, done = self.resume_plan(playbook)
                record = self.progress(plan.playbook) or {}
                record["resumes"] = int(record.get("resumes", 0)) + 1
                record["state"] = "running"
                run_id = record["run_id"]
            else:
                old = self.progress(plan.playbook)
                if old is not None and old.get("state") != "succeeded":
                    left = sorted(int(i) for i, st in old.get("status", {}).items() if st != "done")
                    note = (
                        f"starting afresh: the unfinished run {old.get('run_id')} of {plan.playbook} "
                        f"({old.get('state')}{f' at step {left[0]}' if left else ''}) is discarded; --resume continues one"
                    )
                    log.warning(note)
                    self.on_event(RunEvent("note", note))
                record = {
                    "run_id": run_id,
                    "playbook": plan.playbook,
                    "plan": plan.to_json(),
                    "status": {},
                    "state": "running",
                    "started_at": _now(),
                    "resumes": 0,
                    **self.identity,
                }
            self._save(record)
            result = RunResult(run_id, plan.playbook, resumed=resume)
            total = len(plan.steps)
            for step in plan.steps:
                if step.index in done:
                    result.skipped.append(step.index)
                    self.on_event(RunEvent("skip", "done in an earlier attempt", step, total))
                    continue
                self._run_step(record, plan, step, total)
                result.executed.append(step.index)
            record["state"] = "succeeded"
            self._save(record)
            self.on_event(RunEvent("finished", f"{plan.playbook}: {total} steps done", None, total))
            return result
        finally:
            try:
                lock.release()
            except KazooException as exc:  # the session is gone: so is the ephemeral lock
                log.warning("could not release the playbook lock: %r", exc)

    def _run_step(self, record: dict[str, Any], plan: Plan, step: PlannedStep, total: int) -> None:
        record["status"][str(step.index)] = "running"
        self._save(record)
        self._audit(record, step, "started")
        self.on_event(RunEvent("start", step.name, step, total))
        spec = ACTIONS[step.action]
        saved_progress = self.ctx.progress
        self.ctx.progress = lambda msg: self.on_event(RunEvent("progress", msg, step, total))
        t0 = time.monotonic()
        try:
            detail = spec.func(self.ctx, **step.args)
            if step.gate != "none":
                self.on_event(RunEvent("gate", f"health gate: {step.gate}", step, total))
                try:
                    wait_for_health(self.ctx, plan.gate_timeout, allow_under_replicated=step.gate == "available")
                except KafkaopsError as exc:
                    raise StepFailed(f"health gate ({step.gate}) after the step: {exc}", step) from None
        except KeyboardInterrupt:
            record["status"][str(step.index)] = "interrupted"
            record["state"] = "interrupted"
            self._save(record)
            self._audit(record, step, "interrupted", duration_s=round(time.monotonic() - t0, 3))
            raise
        except Exception as exc:  # noqa: BLE001 - every failure stops the run with the step named
            reason = str(exc) if isinstance(exc, KafkaopsError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, KafkaopsError):
                log.debug("step %d raised", step.index, exc_info=True)
            record["status"][str(step.index)] = "failed"
            record["state"] = "failed"
            self._save(record)
            self._audit(record, step, "failed", error=reason, duration_s=round(time.monotonic() - t0, 3))
            self.on_event(RunEvent("failed", reason, step, total))
            raise StepFailed(
                f"{plan.playbook}: step {step.index}/{total} {step.name!r} ({step.action}) failed: {reason}; "
                "fix the cause and run again with --resume",
                step,
            ) from None
        finally:
            self.ctx.progress = saved_progress
        record["status"][str(step.index)] = "done"
        self._save(record)
        self._audit(record, step, "succeeded", detail=detail, duration_s=round(time.monotonic() - t0, 3))
        self.on_event(RunEvent("done", detail, step, total))

