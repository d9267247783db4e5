"""`kafkaops topic create | list | describe | delete | config get|set`: topics."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, key_values, out

topic_app = typer.Typer(help="Topics.", no_args_is_help=True)
config_app = typer.Typer(help="Topic configs.", no_args_is_help=True)
topic_app.add_typer(config_app, name="config")

JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON document")]


@topic_app.command("create")
@connection(zookeeper=False)
def topic_create(
    name: str,
    partitions: Annotated[int, typer.Option(help="partition count")] = 3,
    replication_factor: Annotated[int, typer.Option(help="replicas per partition")] = 3,
    config: Annotated[list[str] | None, typer.Option("--config", "-c", help="topic config key=value")] = None,
    *,
    target: Target,
) -> None:
    """Create a topic and wait until every partition has a leader."""
    from kafkaops.admin import create_topic

    conf = key_values(config or [], "--config")
    cluster = target.cluster()
    args = {"partitions": partitions, "replication_factor": replication_factor, "config": conf}
    with audit_log(target) as audit, audit.operation("topic.create", name, args):
        create_topic(cluster, name, partitions, replication_factor, conf)
    out.print(f"topic {name} created: {partitions} partitions, replication factor {replication_factor}")


@topic_app.command("list")
@connection(zookeeper=False)
def topic_list(
    as_json: JsonOpt = False,
    internal: Annotated[bool, typer.Option("--internal", help="also internal topics (__consumer_offsets, ...)")] = False,
    *,
    target: Target,
) -> None:
    """Topics with partition count, replication factor and unhealthy partitions."""
    from kafkaops.ops.topics import list_topics

    topics = list_topics(target.cluster(), internal=internal)
    if as_json:
        print(json.dumps([t.to_json() for t in topics]), flush=True)
        return
    table = Table(title=f"{len(topics)} topics")
    for col in ("topic", "partitions", "RF", "under-replicated", "under min ISR", "offline"):
        table.add_column(col)
    for t in topics:
        table.add_row(t.name, str(t.partitions), str(t.replication_factor), _mark(t.under_replicated, "yellow"),
                      _mark(t.under_min_isr, "red"), _mark(t.offline, "red"))
    out.print(table)


def _mark(n: int, color: str) -> str:
    return f"[{color}]{n}" if n else "0"


@topic_app.command("describe")
@connection(zookeeper=False)
def topic_describe(topic: str, as_json: JsonOpt = False, *, target: Target) -> None:
    """Partitions (leader, replicas, ISR; under-replicated, under-min-ISR, offline marks) and
    the configs set on the topic (those that differ from the broker default)."""
    from kafkaops.ops.topics import describe_topic

    d = describe_topic(target.cluster(), topic)
    if as_json:
        print(json.dumps(d.to_json()), flush=True)
        return
    table = Table(title=f"topic {topic}: {len(d.partitions)} partitions, replication factor {d.replication_factor}")
    for col in ("partition", "leader", "replicas", "isr", "status"):
        table.add_column(col)
    for p in d.partitions:
        status = {"ok": "ok", "under_replicated": "[yellow]under-replicated", "under_min_isr": "[red]under min ISR",
                  "offline": "[red]offline"}[p.status]
        table.add_row(str(p.partition), str(p.leader) if p.leader >= 0 else "-", ",".join(map(str, p.replicas)),
                      ",".join(map(str, p.isr)), status)
    out.print(table)
    configs = Table(title="configs set on the topic")
    configs.add_column("config")
    configs.add_column("value")
    for c in d.overrides:
        configs.add_row(c.name, "***" if c.sensitive else str(c.value))
    out.print(configs if d.overrides else "[dim]no config set on the topic: broker defaults apply")


@topic_app.command("delete")
@connection(zookeeper=False)
def topic_delete(
    topic: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    *,
    target: Target,
) -> None:
    """Delete a topic and its data (asks first)."""
    from kafkaops.ops.topics import delete_topic, describe_topic

    cluster = target.cluster()
    d = describe_topic(cluster, topic)
    if not yes and not typer.confirm(f"delete topic {topic} ({len(d.partitions)} partitions) and all its records?"):
        raise typer.Exit(1)
    with audit_log(target) as audit:
        delete_topic(cluster, topic, audit=audit)
    out.print(f"topic {topic} deleted")


@config_app.command("get")
@connection(zookeeper=False)
def config_get(
    topic: str,
    keys: Annotated[list[str] | None, typer.Argument(help="only these configs")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="also configs at their defaults")] = False,
    as_json: JsonOpt = False,
    *,
    target: Target,
) -> None:
    """The topic's configs: those set on the topic itself (default), every one (--all), or the named keys."""
    from kafkaops.ops.topics import TopicError, topic_configs

    configs = topic_configs(target.cluster(), topic)
    unknown = [k for k in keys or [] if k not in configs]
    if unknown:
        raise TopicError(f"topic {topic} has no config {', '.join(unknown)}")
    shown = [configs[k] for k in keys] if keys else [c for c in configs.values() if show_all or c.overrides]
    if as_json:
        print(json.dumps({c.name: c.to_json() for c in shown}), flush=True)
        return
    table = Table(title=f"topic {topic}: configs")
    for col in ("config", "value", "source"):
        table.add_column(col)
    for c in shown:
        table.add_row(c.name, "***" if c.sensitive else str(c.value), c.source)
    out.print(table)


@config_app.command("set")
@connection(zookeeper=False)
def config_set(
    topic: str,
    settings: Annotated[list[str], typer.Argument(help="key=value (key= resets it to the default)")],
    force: Annotated[bool, typer.Option("--force", help="allow weakening no-loss settings")] = False,
    *,
    target: Target,
) -> None:
    """Change only the named configs (incremental); refuses to weaken no-loss settings without --force."""
    from kafkaops.ops.topics import set_topic_config

    changes: dict[str, str | None] = {k: (v if v != "" else None) for k, v in key_values(settings, "key=value").items()}
    cluster = target.cluster()
    with audit_log(target) as audit:
        configs = set_topic_config(cluster, topic, changes, force=force, audit=audit)
    for key in changes:
        c = configs.get(key)
        out.print(f"{topic}: {key} = {c.value if c else '?'} ({c.source if c else 'unknown'})")
