"""`kafkaops group list | describe | lag | delete`: consumer groups, their offsets and lag."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, out

if TYPE_CHECKING:
    from kafkaops.ops.groups import GroupLag
    from kafkaops.ops.lag import GroupLagStatus

group_app = typer.Typer(help="Consumer groups: members, offsets, lag.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON document")]


def _print_json(doc: Any) -> None:
    print(json.dumps(doc), flush=True)


@group_app.command("list")
@connection(zookeeper=False)
def group_list(as_json: JsonOpt = False, *, target: Target) -> None:
    """Every consumer group with its state."""
    from kafkaops.ops.groups import list_groups

    groups = list_groups(target.cluster())
    if as_json:
        _print_json([g.to_json() for g in groups])
        return
    table = Table(title=f"{len(groups)} consumer groups")
    for col in ("group", "state", "type"):
        table.add_column(col)
    for g in groups:
        table.add_row(g.group, g.state, g.type + (" (simple)" if g.simple else ""))
    out.print(table)


@group_app.command("describe")
@connection(zookeeper=False)
def group_describe(group: str, as_json: JsonOpt = False, *, target: Target) -> None:
    """Members, their assignment, and each partition's committed offset, log end and lag."""
    from kafkaops.ops.groups import describe_group, group_lag

    cluster = target.cluster()
    desc = describe_group(cluster, group)
    lag = group_lag(cluster, group, description=desc)
    if as_json:
        _print_json({**desc.to_json(), "lag": lag.to_json()})
        return
    members = Table(title=f"group {group}: {desc.state}, {len(desc.members)} members, assignor {desc.assignor or '-'}, "
                          f"coordinator {desc.coordinator}")
    for col in ("client id", "host", "member id", "partitions"):
        members.add_column(col)
    for m in desc.members:
        members.add_row(m.client_id, m.host, m.member_id, ", ".join(f"{t}[{p}]" for t, p in m.assignment) or "-")
    out.print(members)
    out.print(_lag_table(lag))


@group_app.command("lag")
@connection(zookeeper=False)
def group_lag_cmd(
    group: Annotated[str | None, typer.Argument(help="a group (default: every group, one line each)")] = None,
    as_json: JsonOpt = False,
    status: Annotated[bool, typer.Option("--status", help="also judge the lag as Burrow does: poll --window times")] = False,
    window: Annotated[int, typer.Option(help="with --status: observations per window")] = 10,
    interval: Annotated[float, typer.Option(help="with --status: seconds between polls")] = 1.0,
    allowed_lag: Annotated[int, typer.Option(help="with --status: a lag up to this counts as caught up")] = 0,
    *,
    target: Target,
) -> None:
    """Lag per partition (committed offset, log end, lag in records and in time), total lag."""
    from kafkaops.ops.groups import describe_groups, group_lag, list_groups

    cluster = target.cluster()
    names = [group] if group else [g.group for g in list_groups(cluster)]
    descs = describe_groups(cluster, names) if not group else {}
    lags = {n: group_lag(cluster, n, description=descs.get(n)) for n in names}
    judged = _judge(cluster, names, window, interval, allowed_lag) if status else {}
    if as_json:
        docs = [{**lag.to_json(), **({"status": judged[n].to_json()} if n in judged else {})} for n, lag in lags.items()]
        _print_json(docs[0] if group else docs)
        return
    if group:
        out.print(_lag_table(lags[group], judged.get(group)))
        return
    table = Table(title=f"lag of {len(names)} consumer groups")
    for col in ("group", "state", "members", "partitions", "total lag", "max lag (s)", *(["status"] if status else [])):
        table.add_column(col)
    for n, lag in lags.items():
        secs = lag.max_lag_seconds
        table.add_row(n, lag.state, str(len(lag.members)), str(len(lag.partitions)), str(lag.total_lag),
                      "-" if secs is None else f"{secs:.1f}", *([judged[n].status.name] if status else []))
    out.print(table)


def _judge(cluster: Any, names: list[str], window: int, interval: float, allowed_lag: int) -> dict[str, GroupLagStatus]:
    """Poll the groups ``window`` times and judge them with Burrow's rules."""
    from kafkaops.ops.lag_tracker import LagTracker

    tracker = LagTracker(cluster, groups=names, window=window, allowed_lag=allowed_lag)
    for i in range(window):
        tracker.poll()
        if i < window - 1:
            time.sleep(interval)
    return tracker.statuses()


def _lag_table(lag: GroupLag, judged: GroupLagStatus | None = None) -> Table:
    by_tp = {(p.topic, p.partition): p.status.name for p in judged.partitions} if judged else {}
    title = f"group {lag.group}: total lag {lag.total_lag}" + (f", status {judged.status.name}" if judged else "")
    table = Table(title=title)
    for col in ("topic", "partition", "committed", "log end", "lag", "lag (s)", "owner", *(["status"] if judged else [])):
        table.add_column(col)
    for p in lag.partitions:
        secs = p.lag_seconds(lag.timestamp)
        table.add_row(p.topic, str(p.partition), "-" if p.committed is None else str(p.committed),
                      "-" if p.log_end is None else str(p.log_end), "-" if p.lag is None else str(p.lag),
                      "-" if secs is None else f"{secs:.1f}",
                      f"{p.owner.client_id}@{p.owner.host}" if p.owner else "-",
                      *([by_tp.get((p.topic, p.partition), "-")] if judged else []))
    return table


@group_app.command("delete")
@connection(zookeeper=False)
def group_delete(
    group: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    *,
    target: Target,
) -> None:
    """Delete a group's committed offsets (refused while it has members)."""
    from kafkaops.ops.groups import delete_group, describe_group

    cluster = target.cluster()
    desc = describe_group(cluster, group)
    if not yes and not typer.confirm(f"delete consumer group {group} ({desc.state}) and its committed offsets?"):
        raise typer.Exit(1)
    with audit_log(target) as audit, audit.operation("group.delete", group):
        delete_group(cluster, group)
    out.print(f"consumer group {group} deleted")
