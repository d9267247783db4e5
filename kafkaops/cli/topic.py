"""`kafkaops topic ...`: topics."""

from __future__ import annotations

from typing import Annotated

import typer

from kafkaops.audit import audited
from kafkaops.cli.audit import audit_log
from kafkaops.cli.common import Target, connection, key_values, out

topic_app = typer.Typer(help="Topics.", no_args_is_help=True)


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
    with audited(audit_log(target), "topic.create", name, args):
        create_topic(cluster, name, partitions, replication_factor, conf)
    out.print(f"topic {name} created: {partitions} partitions, replication factor {replication_factor}")
