"""`kafkaops checkpoint list|show|restore|prune`: jobs' checkpoints, and where their states live.

Checkpoints are in ZooKeeper; a large state is in the state topic (read with the
profile's Kafka settings: ``--profile``, ``-b``, or the local cluster) or a directory.
With ``-z`` alone, headers, restore and prune work, and states in the topic are out of reach.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kafkaops.audit import audited
from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, coordinator, out

if TYPE_CHECKING:
    from kafkaops.coord.checkpoints import CheckpointInfo, CheckpointStore, PendingState

checkpoint_app = typer.Typer(help="Checkpoints of jobs (ZooKeeper) and their states: list, show, restore, prune.",
                             no_args_is_help=True)

TopicOpt = Annotated[str, typer.Option("--state-topic", help="the state topic (for states kept in Kafka)")]


@contextmanager
def checkpoint_store(target: Target, state_topic: str = "_kafkaops_state") -> Iterator[CheckpointStore]:
    """The checkpoint store on the command's ZooKeeper session, reading states in Kafka
    through the target's cluster when the command has one (not with ``-z`` alone)."""
    from kafkaops.coord.checkpoints import CheckpointStore
    from kafkaops.coord.state_topic import TopicStateBackend

    zookeeper_only = target.is_local and bool(target.zookeeper)
    with ExitStack() as stack, coordinator(target.coordination()) as coord:
        backend = None if zookeeper_only else stack.enter_context(TopicStateBackend(target.cluster(), state_topic))
        yield CheckpointStore(coord, state_backend=backend)


@checkpoint_app.command("list")
@connection()
def checkpoint_list(
    job: Annotated[str | None, typer.Argument(help="job (omit to list jobs)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    *,
    target: Target,
) -> None:
    """The checkpoints of JOB, oldest first (* marks the one the job resumes from), with where
    each state lives (inline in ZooKeeper, topic, directory) and its size."""
    with checkpoint_store(target) as store:
        if job is None:
            jobs = store.jobs()
        else:
            infos = store.list(job)
            owner = store.owner(job)
            pending = store.unreferenced(job)
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
    for col in ("", "id", "created (UTC)", "epoch", "partitions", "sum of offsets", "state", "where"):
        table.add_column(col, no_wrap=col == "id")  # ids are copied into `show` / `restore`
    for i in infos:
        table.add_row("*" if i.latest else "", i.id, _utc(i.created), str(i.epoch), str(len(i.offsets)),
                      str(sum(i.offsets.values())), _state_size(i), _where(i))
    out.print(table)
    if pending:
        out.print(_pending_line(pending), highlight=False)


@checkpoint_app.command("show")
@connection()
def checkpoint_show(
    job: Annotated[str, typer.Argument(help="job")],
    checkpoint_id: Annotated[str | None, typer.Argument(help="checkpoint id (default: the job's current one)")] = None,
    state_file: Annotated[Path | None, typer.Option("--state-to", help="write the state bytes to this file ('-' = stdout)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    state_topic: TopicOpt = "_kafkaops_state",
    *,
    target: Target,
) -> None:
    """One checkpoint: offsets per partition, metadata, where its state lives and its size
    (with --state-to the state is read back and verified by SHA-256)."""
    with checkpoint_store(target, state_topic) as store:
        if state_file is not None:
            ckpt = store.get(job, checkpoint_id) if checkpoint_id else store.latest(job)
            if ckpt is None:
                from kafkaops.coord.checkpoints import CheckpointNotFoundError

                raise CheckpointNotFoundError(f"job {job!r} has no checkpoints")
            info, state = ckpt.info, ckpt.state or b""
        else:
            info, state = store.info(job, checkpoint_id), None
    if state is not None and state_file is not None:
        if str(state_file) == "-":
            sys.stdout.buffer.write(state)
            sys.stdout.flush()
            return
        state_file.write_bytes(state)
    if as_json:
        out.print_json(data=_checkpoint_doc(info))
        return
    out.print(f"[bold]{info.id}[/] of {job}{' (current)' if info.latest else ''}: epoch {info.epoch}, "
              f"created {_utc(info.created)} UTC", highlight=False)
    out.print(f"state: {_state_size(info)}, {_where(info)}"
              + (f", SHA-256 {info.state_sha256}" if info.state_sha256 else ""), highlight=False)
    if info.metadata:
        out.print(f"metadata: {json.dumps(info.metadata, sort_keys=True)}", highlight=False)
    table = Table(title="offsets (next record to process)")
    for col in ("topic", "partition", "offset"):
        table.add_column(col)
    for (t, p), o in sorted(info.offsets.items()):
        table.add_row(t, str(p), str(o))
    out.print(table)


@checkpoint_app.command("restore")
@connection()
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
        info = store.info(job, checkpoint_id)
    out.print(f"job {job} now resumes from {checkpoint_id} (state {_state_size(info)}, {_where(info)}; "
              f"epoch {epoch}; running instances are fenced)", highlight=False)


@checkpoint_app.command("prune")
@connection()
def checkpoint_prune(
    job: Annotated[str, typer.Argument(help="job")],
    keep: Annotated[int, typer.Option("--keep", "-k", help="checkpoints to keep (the current one is always kept)")] = 5,
    state_topic: TopicOpt = "_kafkaops_state",
    *,
    target: Target,
) -> None:
    """Delete all but the newest KEEP checkpoints of JOB with their states, and states no
    checkpoint references (left by saves that crashed before their commit)."""
    audit = audit_log(target)
    with checkpoint_store(target, state_topic) as store, audited(audit, "checkpoint.prune", job, {"keep": keep}):
        before = len(store.unreferenced(job))
        deleted = store.prune(job, keep=keep)
        left = store.unreferenced(job)
    out.print(f"job {job}: deleted {len(deleted)} checkpoint(s)" + (f" ({deleted[0]} .. {deleted[-1]})" if deleted else "")
              + f"; unreferenced states: {before} before, {len(left)} now", highlight=False)
    if left:
        out.print(_pending_line(left), highlight=False)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _state_size(i: CheckpointInfo) -> str:
    if i.state_size is None:
        return "none"
    stored = i.stored_size if i.stored_size is not None else i.state_size
    return _bytes(i.state_size) + (f" ({i.codec}: {_bytes(stored)} stored)" if i.codec != "none" else "")


def _where(i: CheckpointInfo) -> str:
    if i.state_size is None:
        return "-"
    loc = i.location
    if i.where == "topic":
        offsets = loc.get("offsets") or ["?", "?"]
        return (f"topic {loc.get('topic')} partition {loc.get('partition')} "
                f"offsets {offsets[0]}-{offsets[1]} ({loc.get('chunks')} records)")
    if i.where == "directory":
        return f"directory {Path(str(loc.get('path', '')), str(loc.get('file', '')))}"
    if i.where == "znodes":
        return f"{i.chunks} chunk znodes (format 1)"
    return i.where


def _pending_line(pending: list[PendingState]) -> str:
    dropped = sum(p.dropped for p in pending)
    return (f"{len(pending)} unreferenced state(s) in {', '.join(sorted({p.where for p in pending}))} "
            f"({dropped} from pruned checkpoints, {len(pending) - dropped} from saves in flight or abandoned): "
            "`kafkaops checkpoint prune` deletes them")


def _checkpoint_doc(i: CheckpointInfo) -> dict[str, Any]:
    return {
        "job": i.job, "id": i.id, "current": i.latest, "epoch": i.epoch, "created": i.created,
        "offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(i.offsets.items())],
        "metadata": i.metadata, "state_size": i.state_size, "state_sha256": i.state_sha256,
        "codec": i.codec, "stored_size": i.stored_size, "where": i.where if i.state_size is not None else None,
        "location": i.location, "chunks": i.chunks,
    }
