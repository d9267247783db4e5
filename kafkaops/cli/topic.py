"""`kafkaops topic create|alter|delete`: topics (every change audited)."""

from __future__ import annotations

from typing import Annotated

import typer

from kafkaops.audit import audited
from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, key_values, out

topic_app = typer.Typer(help="Topics.", no_args_is_help=True)

ConfigOpt = Annotated[list[str] | None, typer.Option("--config", "-c", help="topic config key=value")]


@topic_app.command("create")
@connection(zookeeper=False)
def topic_create(
    name: str,
    partitions: Annotated[int, typer.Option(help="partition count")] = 3,
    replication_factor: Annotated[int, typer.Option(help="replicas per partition")] = 3,
    config: ConfigOpt = None,
    *,
    target: Target,
) -> None:
    """Create a topic and wait until every partition has a leader."""
    from kafkaops.admin import create_topic

    conf = key_values(config or [], "--config")
    cluster = target.cluster()
    with audited(audit_log(target), "topic.create", name,
                 {"partitions": partitions, "replication_factor": replication_factor, "config": conf}):
        create_topic(cluster, name, partitions, replication_factor, conf)
    out.print(f"topic {name} created: {partitions} partitions, replication factor {replication_factor}")


@topic_app.command("alter")
@connection(zookeeper=False)
def topic_alter(
    name: str,
    partitions: Annotated[int | None, typer.Option(help="grow to this many partitions in total")] = None,
    config: ConfigOpt = None,
    delete_config: Annotated[list[str] | None, typer.Option("--delete-config", help="remove a topic config override (the broker default applies)")] = None,
    *,
    target: Target,
) -> None:
    """Grow a topic's partitions and/or set or remove its configs."""
    from kafkaops.admin import add_partitions, alter_topic_config

    changes: dict[str, str | None] = {**key_values(config or [], "--config"), **dict.fromkeys(delete_config or [])}
    if partitions is None and not changes:
        raise typer.BadParameter("nothing to change: give --partitions, --config or --delete-config")
    cluster = target.cluster()
    with audited(audit_log(target), "topic.alter", name, {"partitions": partitions, "config": changes}):
        if changes:
            alter_topic_config(cluster, name, changes)
        before = add_partitions(cluster, name, partitions) if partitions is not None else None
    if before is not None:
        out.print(f"topic {name}: {before} -> {partitions} partitions", highlight=False)
    if changes:
        out.print(f"topic {name}: " + ", ".join(f"{k}={v}" if v is not None else f"{k} (default)"
                                               for k, v in changes.items()), highlight=False)


@topic_app.command("delete")
@connection(zookeeper=False)
def topic_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
    *,
    target: Target,
) -> None:
    """Delete a topic and its records (asks first unless --yes)."""
    from kafkaops.admin import delete_topic

    if not yes and not typer.confirm(f"delete topic {name} and all its records?", default=False):
        raise typer.Exit(1)
    cluster = target.cluster()
    with audited(audit_log(target), "topic.delete", name):
        delete_topic(cluster, name)
    out.print(f"topic {name} deleted", highlight=False)
