"""`kafkaops checkpoint list|show|restore|prune`: jobs' checkpoints in ZooKeeper."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kafkaops.audit import audited
from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, coordinator, out

if TYPE_CHECKING:
    from kafkaops.coord.checkpoints import CheckpointInfo, CheckpointStore

checkpoint_app = typer.Typer(help="ZooKeeper checkpoints of jobs: list, show, restore, prune.", no_args_is_help=True)


@contextmanager
def checkpoint_store(target: Target) -> Iterator[CheckpointStore]:
    """The checkpoint store on the command's ZooKeeper session."""
    from kafkaops.coord.checkpoints import CheckpointStore

    with coordinator(target.coordination()) as coord:
        yield CheckpointStore(coord)


@checkpoint_app.command("list")
@connection(kafka=False)
def checkpoint_list(
    job: Annotated[str | None, typer.Argument(help="job (omit to list jobs)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    *,
    target: Target,
) -> None:
    """The checkpoints of JOB, oldest first (* marks the one the job resumes from)."""
    with checkpoint_store(target) as store:
        if job is None:
            jobs = store.jobs()
        else:
            infos = store.list(job)
            owner = store.owner(job)
    if job is None:
        if as_json:
            out.print_json(data=jobs)
        else:
            for name in jobs:
                out.print(name, highlight=False)
        return
    if as_json:
        out.print_json(data=[_checkpoint_doc(i) for i in infos])
        return
    table = Table(title=f"checkpoints of {job}" + (f" (epoch {owner[0]}, owner {owner[1]})" if owner else ""))
    for col in ("", "id", "created (UTC)", "epoch", "partitions", "sum of offsets", "state"):
        table.add_column(col, no_wrap=col == "id")  # ids are copied into `show` / `restore`
    for i in infos:
        table.add_row("*" if i.latest else "", i.id, _utc(i.created), str(i.epoch), str(len(i.offsets)),
                      str(sum(i.offsets.values())), _state_desc(i))
    out.print(table)


@checkpoint_app.command("show")
@connection(kafka=False)
def checkpoint_show(
    job: Annotated[str, typer.Argument(help="job")],
    checkpoint_id: Annotated[str | None, typer.Argument(help="checkpoint id (default: the job's current one)")] = None,
    state_file: Annotated[Path | None, typer.Option("--state-to", help="write the state bytes to this file ('-' = stdout)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    *,
    target: Target,
) -> None:
    """One checkpoint: offsets per partition, metadata, state size (verified by SHA-256)."""
    from kafkaops.coord.checkpoints import CheckpointNotFoundError

    with checkpoint_store(target) as store:
        ckpt = store.get(job, checkpoint_id) if checkpoint_id else store.latest(job)
    if ckpt is None:
        raise CheckpointNotFoundError(f"job {job!r} has no checkpoints")
    if state_file is not None:
        if str(state_file) == "-":
            sys.stdout.buffer.write(ckpt.state or b"")
            sys.stdout.flush()
            return
        state_file.write_bytes(ckpt.state or b"")
    if as_json:
        out.print_json(data=_checkpoint_doc(ckpt.info))
        return
    i = ckpt.info
    out.print(f"[bold]{i.id}[/] of {job}{' (current)' if i.latest else ''}: epoch {i.epoch}, "
              f"created {_utc(i.created)} UTC, state {_state_desc(i)}", highlight=False)
    if i.metadata:
        out.print(f"metadata: {json.dumps(i.metadata, sort_keys=True)}", highlight=False)
    table = Table(title="offsets (next record to process)")
    for col in ("topic", "partition", "offset"):
        table.add_column(col)
    for (t, p), o in sorted(i.offsets.items()):
        table.add_row(t, str(p), str(o))
    out.print(table)


@checkpoint_app.command("restore")
@connection(kafka=False)
def checkpoint_restore(
    job: Annotated[str, typer.Argument(help="job")],
    checkpoint_id: Annotated[str, typer.Argument(help="the checkpoint the job resumes from")],
    *,
    target: Target,
) -> None:
    """Point JOB at CHECKPOINT_ID; a running instance is fenced and must be restarted."""
    audit = audit_log(target)
    with checkpoint_store(target) as store, audited(audit, "checkpoint.restore", job, {"checkpoint": checkpoint_id}):
        epoch = store.restore(job, checkpoint_id, owner="kafkaops checkpoint restore")
    out.print(f"job {job} now resumes from {checkpoint_id} (epoch {epoch}; running instances are fenced)", highlight=False)


@checkpoint_app.command("prune")
@connection(kafka=False)
def checkpoint_prune(
    job: Annotated[str, typer.Argument(help="job")],
    keep: Annotated[int, typer.Option("--keep", "-k", help="checkpoints to keep (the current one is always kept)")] = 5,
    *,
    target: Target,
) -> None:
    """Delete all but the newest KEEP checkpoints of JOB, and orphaned state chunks."""
    audit = audit_log(target)
    with checkpoint_store(target) as store, audited(audit, "checkpoint.prune", job, {"keep": keep}):
        deleted = store.prune(job, keep=keep)
    out.print(f"job {job}: deleted {len(deleted)} checkpoint(s)" + (f" ({deleted[0]} .. {deleted[-1]})" if deleted else ""),
              highlight=False)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _state_desc(i: CheckpointInfo) -> str:
    if i.state_size is None:
        return "none"
    how = f", {i.codec}" if i.codec != "none" else ""
    how += f", {i.chunks} chunks" if i.chunks else ""
    return f"{i.state_size} B{how}"


def _checkpoint_doc(i: CheckpointInfo) -> dict[str, Any]:
    return {
        "job": i.job, "id": i.id, "current": i.latest, "epoch": i.epoch, "created": i.created,
        "offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(i.offsets.items())],
        "metadata": i.metadata, "state_size": i.state_size, "state_sha256": i.state_sha256,
        "codec": i.codec, "chunks": i.chunks,
    }
