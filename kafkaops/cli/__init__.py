"""The `kafkaops` command: parses arguments, calls the library, renders results.

The only package that prints for humans. Every deliberate error (KafkaopsError) becomes
one line on stderr and exit code 1; usage errors exit 2. One module per command group;
:mod:`kafkaops.cli.common` holds the shared options and the profile resolution.
"""

from __future__ import annotations

import typer

from kafkaops.cli import cluster, monitor, records
from kafkaops.cli.audit import audit_app
from kafkaops.cli.bench import bench_app
from kafkaops.cli.chaos import chaos_app
from kafkaops.cli.checkpoint import checkpoint_app
from kafkaops.cli.common import run_reporting_errors, setup_logging
from kafkaops.cli.demo import demo_app
from kafkaops.cli.group import group_app
from kafkaops.cli.playbook import playbook_app
from kafkaops.cli.schema import schema_app
from kafkaops.cli.security import acl_app, user_app
from kafkaops.cli.topic import topic_app

app = typer.Typer(
    help="Typed Kafka clients, ZooKeeper checkpoints, replica monitoring and playbooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(cluster.fetch)
app.command()(cluster.up)
app.command()(cluster.down)
app.command()(cluster.status)
app.add_typer(cluster.broker_app, name="broker")
app.add_typer(cluster.controller_app, name="controller")
app.add_typer(topic_app, name="topic")
app.add_typer(group_app, name="group")
app.add_typer(demo_app, name="demo")
app.add_typer(bench_app, name="bench")
app.add_typer(schema_app, name="schema")
app.command()(records.produce)
app.command()(records.consume)
app.add_typer(playbook_app, name="playbook")
app.command()(monitor.monitor)
app.add_typer(checkpoint_app, name="checkpoint")
app.add_typer(user_app, name="user")
app.add_typer(acl_app, name="acl")
app.add_typer(audit_app, name="audit")
app.add_typer(chaos_app, name="chaos")


def main() -> None:
    """The console script: logging set up, the app run, errors as one line."""
    setup_logging()
    run_reporting_errors(app)


__all__ = ["app", "main"]
