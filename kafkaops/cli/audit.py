"""`kafkaops audit tail|search|verify`, and the audit log every mutating command writes to.

Records go to ``$KAFKAOPS_HOME/audit/audit.jsonl`` (this machine's hash chain) and, when
the command knows the cluster's brokers, to its ``_kafkaops_audit`` topic (RF 3,
acks=all), where every machine's chain meets. ``verify`` exits 1 naming the first record
whose chain breaks (an edited record, a deleted one).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kafkaops.cli.common import Target, connection, err, out
from kafkaops.config import Settings

if TYPE_CHECKING:
    from kafkaops.audit import AuditLog, AuditRecord

audit_app = typer.Typer(help="The audit trail: every mutating operation, hash-chained (file and topic).",
                        no_args_is_help=True)

FileOpt = Annotated[Path | None, typer.Option("--file", help="an audit file (default $KAFKAOPS_HOME/audit/audit.jsonl)")]
TopicOpt = Annotated[bool, typer.Option("--topic", help="read the cluster's _kafkaops_audit topic instead of the file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON lines")]


def audit_file() -> Path:
    """This machine's audit file: ``$KAFKAOPS_HOME/audit/audit.jsonl``."""
    return Settings.from_env().home / "audit" / "audit.jsonl"


def audit_log(target: Target) -> AuditLog:
    """The audit log of a mutating command: the file, plus the audit topic when the command
    knows the cluster's brokers (a profile, ``-b``, the local cluster); principal: the
    profile's Kafka principal, or the ZooKeeper identity of a ``-z``-only command."""
    from kafkaops.audit import AuditLog

    if not (target.is_local and target.zookeeper):
        return AuditLog(audit_file(), target.cluster())
    zk = target.coordination()
    principal = f"{zk.identity[0]}:{zk.identity[1]}" if zk.identity else "zookeeper:anonymous"
    return AuditLog(audit_file(), principal=principal)


def _lines(target: Target, file: Path | None, topic: bool) -> tuple[str, list[str]]:
    from kafkaops.audit import AUDIT_TOPIC, read_file, read_topic

    if topic and file is not None:
        raise typer.BadParameter("--file or --topic, not both")
    if topic:
        return f"topic {AUDIT_TOPIC}", read_topic(target.cluster())
    path = file or audit_file()
    return str(path), read_file(path)


def _render(records: list[AuditRecord], as_json: bool, title: str) -> None:
    if as_json:
        for r in records:
            print(json.dumps(r.to_json(), sort_keys=True), flush=True)
        return
    table = Table(title=title)
    for col in ("time (UTC)", "who", "action", "target", "result", "args"):
        table.add_column(col, overflow="fold")
    for r in records:
        when = dt.datetime.fromtimestamp(r.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        who = f"{r.principal} ({r.os_user}@{r.host})"
        result = r.result if r.ok else f"[red]{r.result}"
        table.add_row(when, who, r.action, r.target, result, json.dumps(r.args, sort_keys=True))
    out.print(table)


@audit_app.command("tail")
@connection(zookeeper=False)
def audit_tail(
    lines: Annotated[int, typer.Option("-n", "--lines", help="how many of the newest records")] = 20,
    file: FileOpt = None,
    topic: TopicOpt = False,
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """The newest audit records."""
    from kafkaops.audit import parse_records

    where, raw = _lines(target, file, topic)
    records = parse_records(raw)[-lines:] if lines > 0 else []
    _render(records, as_json, f"audit: last {len(records)} of {where}")


@audit_app.command("search")
@connection(zookeeper=False)
def audit_search(
    action: Annotated[str | None, typer.Option(help="action contains this (topic.create, acl., playbook.step ...)")] = None,
    target_: Annotated[str | None, typer.Option("--target", help="target contains this (a topic, User:svc ...)")] = None,
    principal: Annotated[str | None, typer.Option(help="Kafka principal or OS user, exactly")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time (UTC if no zone), e.g. 2026-01-31T12:00")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="only operations that failed")] = False,
    file: FileOpt = None,
    topic: TopicOpt = False,
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """Audit records matching every filter given."""
    from kafkaops.audit import parse_records, search

    start = None
    if since is not None:
        try:
            when = dt.datetime.fromisoformat(since)
        except ValueError:
            raise typer.BadParameter(f"--since {since!r}: give an ISO time such as 2026-01-31T12:00") from None
        start = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    where, raw = _lines(target, file, topic)
    found = search(parse_records(raw), action=action, target=target_, principal=principal, since=start,
                   failed_only=failed)
    _render(found, as_json, f"audit: {len(found)} matching record(s) in {where}")


@audit_app.command("verify")
@connection(zookeeper=False)
def audit_verify(
    file: FileOpt = None,
    topic: TopicOpt = False,
    *,
    target: Target,
) -> None:
    """Check the hash chains: exit 1 naming the first record whose chain breaks (edited or deleted)."""
    from kafkaops.audit import verify

    where, raw = _lines(target, file, topic)
    result = verify(raw)
    if not result.ok:
        err.print(f"[red]audit chain broken[/] in {where}: {result.reason}", highlight=False, soft_wrap=True)
        sys.exit(1)
    chains = ", ".join(f"{c[:8]}: {n}" for c, n in sorted(result.chains.items())) or "none"
    out.print(f"[green]ok[/] {where}: {result.records} record(s) verified; chains {chains}", highlight=False)
