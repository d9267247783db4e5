"""Playbook runner: one run per cluster at a time, health-gated, resumable and audited.

A run goes: load and validate the whole file, bind variables and expand ``for_each``
into a flat plan (``ops/playbook_plan.py``), then :class:`PlaybookRunner` executes the
plan step by step, through the process's Coordinator:

- one run per cluster at a time: a kazoo ``Lock`` at ``<root>/playbooks/lock``. A second
  run fails fast naming the holder (or waits ``lock_timeout`` seconds); a holder that died
  on this host is waited out until its ZooKeeper session expires;
- progress and a record per step start and outcome (``ops/playbook_journal.py``), so
  ``resume`` continues at the first unfinished step of the stored plan; each outcome also
  goes to the audit trail (``audit``: an :class:`~kafkaops.audit.AuditLog`);
- after each step a health gate (``healthy``: nothing under-replicated, under min ISR or
  offline; ``available``: nothing under min ISR or offline; ``none``).

The library never prints or reads stdin: progress goes to an ``on_event`` callback and
confirmation to the ``confirm`` callback of the ActionContext.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kazoo.exceptions import KazooException, LockTimeout
from kazoo.recipe.lock import Lock

from kafkaops.audit import AuditLog
from kafkaops.coord.session import Coordinator
from kafkaops.errors import KafkaopsError
from kafkaops.ops.actions import ACTIONS, ActionContext, wait_for_health
from kafkaops.ops.playbook_journal import RunJournal, identity, now_iso
from kafkaops.ops.playbook_plan import (
    Facts,
    Plan,
    PlannedStep,
    bind_variables,
    cluster_facts,
    find,
    load,
    make_plan,
    parse,
    parse_overrides,
    shipped,
)
from kafkaops.ops.playbook_schema import Playbook, PlaybookError

log = logging.getLogger(__name__)

__all__ = [
    "Facts", "NothingToResume", "Plan", "PlannedStep", "PlaybookError", "PlaybookLocked", "PlaybookRunner",
    "RunEvent", "RunResult", "RunnerError", "StepFailed", "bind_variables", "cluster_facts", "find", "load",
    "make_plan", "parse", "shipped",
]


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
        coordinator: Coordinator,
        *,
        lock_timeout: float = 0.0,
        audit: AuditLog | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        stale_lock_wait: float = 45.0,
    ) -> None:
        self.ctx, self.coordinator = ctx, coordinator
        self.journal = RunJournal(coordinator, audit)
        self.on_event = on_event or (lambda _e: None)
        self.lock_timeout = lock_timeout
        self.stale_lock_wait = stale_lock_wait
        self.identity = identity()

    def progress(self, playbook: str) -> dict[str, Any] | None:
        """The stored progress record of the playbook's last run, or None."""
        return self.journal.progress(playbook)

    def audit_trail(self, run_id: str) -> list[dict[str, Any]]:
        """The audit records of one run from ZooKeeper, oldest first."""
        return self.journal.audit_trail(run_id)

    def _audit(self, record: dict[str, Any], step: PlannedStep, event: str, **extra: Any) -> None:
        self.journal.audit({
            "time": now_iso(), "run_id": record["run_id"], "playbook": record["playbook"], "index": step.index,
            "step": step.name, "action": step.action, "args": step.args, "event": event, **self.identity, **extra,
        })

    # ---- lock
    def _lock(self, playbook: str, run_id: str) -> Lock:
        ident = json.dumps({**self.identity, "playbook": playbook, "run_id": run_id})
        lock = Lock(self.coordinator.client, self.coordinator.path("playbooks", "lock"), identifier=ident)
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
        for k, value in parse_overrides(pb, overrides or {}).items():
            text = (overrides or {})[k]
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
                    "started_at": now_iso(),
                    "resumes": 0,
                    **self.identity,
                }
            self.journal.save(record)
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
            self.journal.save(record)
            self.on_event(RunEvent("finished", f"{plan.playbook}: {total} steps done", None, total))
            return result
        finally:
            try:
                lock.release()
            except KazooException as exc:  # the session is gone: so is the ephemeral lock
                log.warning("could not release the playbook lock: %r", exc)

    def _run_step(self, record: dict[str, Any], plan: Plan, step: PlannedStep, total: int) -> None:
        record["status"][str(step.index)] = "running"
        self.journal.save(record)
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
            self.journal.save(record)
            self._audit(record, step, "interrupted", duration_s=round(time.monotonic() - t0, 3))
            raise
        except Exception as exc:  # noqa: BLE001 - every failure stops the run with the step named
            reason = str(exc) if isinstance(exc, KafkaopsError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, KafkaopsError):
                log.debug("step %d raised", step.index, exc_info=True)
            record["status"][str(step.index)] = "failed"
            record["state"] = "failed"
            self.journal.save(record)
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
        self.journal.save(record)
        self._audit(record, step, "succeeded", detail=detail, duration_s=round(time.monotonic() - t0, 3))
        self.on_event(RunEvent("done", detail, step, total))

