"""The `kafkaops` command: parses arguments, calls the library, renders results.

The only module that prints for humans. Every deliberate error (KafkaopsError)
becomes one line on stderr and exit code 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kafkaops.config import Settings
from kafkaops.errors import ClusterError, KafkaopsError, NoClusterError

app = typer.Typer(
    help="Typed Kafka clients, ZooKeeper checkpoints, replica monitoring and playbooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
broker_app = typer.Typer(help="Control one broker of the local cluster.", no_args_is_help=True)
topic_app = typer.Typer(help="Topics.", no_args_is_help=True)
demo_app = typer.Typer(help="The end-to-end demo, and the demo applications it runs.")
app.add_typer(broker_app, name="broker")
app.add_typer(topic_app, name="topic")
app.add_typer(demo_app, name="demo")

out = Console()
err = Console(stderr=True)

BootstrapOpt = Annotated[
    str | None,
    typer.Option("--bootstrap-server", "-b", envvar="KAFKAOPS_BOOTSTRAP", help="Kafka bootstrap servers (default: the local cluster)"),
]


def _cluster_dir() -> Path:
    return Settings.from_env().home / "cluster"


def _local_cluster() -> Any:
    from kafkaops.local.cluster import LocalCluster

    cluster = LocalCluster.attach(_cluster_dir())
    if not cluster.any_running():
        raise NoClusterError(f"the local cluster in {cluster.base_dir} is not running; start one with `kafkaops up`")
    return cluster


def _bootstrap(bootstrap: str | None) -> str:
    return bootstrap or str(_local_cluster().bootstrap_servers)


# ---------------------------------------------------------------------- cluster
@app.command()
def fetch() -> None:
    """Fetch Apache Kafka's jars from Maven Central into the cache (once)."""
    from kafkaops.local.distribution import resolve

    t0 = time.monotonic()
    dist = resolve()
    out.print(f"Kafka {dist.version}: {dist.libs} ({time.monotonic() - t0:.1f}s)")


@app.command()
def up(
    brokers: Annotated[int, typer.Option(help="number of Kafka brokers")] = 3,
    zookeepers: Annotated[int, typer.Option(help="ZooKeeper nodes: 1, 3 or 5")] = 1,
) -> None:
    """Start ZooKeeper and Kafka brokers as background JVM processes."""
    from kafkaops.local.cluster import LocalCluster

    base = _cluster_dir()
    try:
        if LocalCluster.attach(base).any_running():
            raise ClusterError(f"a local cluster is already running in {base}; stop it with `kafkaops down`")
    except NoClusterError:
        pass
    if base.exists():
        import shutil

        shutil.rmtree(base)
    t0 = time.monotonic()
    with err.status("starting ZooKeeper and brokers..."):
        cluster = LocalCluster(base, brokers=brokers, zookeepers=zookeepers, detached=True).start()
    out.print(f"cluster up in {time.monotonic() - t0:.1f}s")
    out.print(f"bootstrap servers: {cluster.bootstrap_servers}")
    out.print(f"zookeeper connect: {cluster.zk_connect}")


@app.command()
def down() -> None:
    """Stop the local cluster (brokers first, then ZooKeeper) and delete its data."""
    from kafkaops.local.cluster import LocalCluster

    cluster = LocalCluster.attach(_cluster_dir())
    running = cluster.any_running()
    if running:
        cluster.stop()
    cluster.destroy()
    out.print("cluster stopped" if running else "no cluster was running; state cleared")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Brokers, controller, topics, and partitions under-replicated or offline."""
    from kafkaops.admin import cluster_status

    expected: dict[int, tuple[str, int]] = {}
    local = None
    if bootstrap is None:
        local = _local_cluster()
        bootstrap = local.bootstrap_servers
        expected = {b.id: ("127.0.0.1", b.port) for b in local.brokers}
    st = cluster_status(bootstrap, expected)
    if local is not None:  # a stopped or paused local broker is not alive, whatever metadata says
        for b in st.brokers:
            if b.id in expected and not local.broker(b.id).alive:
                b.alive = False
    if as_json:
        out.print_json(json.dumps(st.to_json()))
        return
    table = Table(title=f"controller: {st.controller_id}   topics: {st.topics}")
    for col in ("broker", "host", "port", "alive"):
        table.add_column(col)
    for b in st.brokers:
        table.add_row(str(b.id), b.host, str(b.port), "[green]yes" if b.alive else "[red]no")
    out.print(table)
    p = st.partitions
    out.print(f"partitions: {p.total} total, {p.under_replicated} under-replicated, {p.offline} offline")


def _broker_action(action: str, broker_id: int) -> None:
    cluster = _local_cluster()
    getattr(cluster, f"{action}_broker")(broker_id)
    out.print(f"broker {broker_id}: {action} done")


@broker_app.command("kill")
def broker_kill(broker_id: int) -> None:
    """SIGKILL a broker (no controlled shutdown)."""
    _broker_action("kill", broker_id)


@broker_app.command("stop")
def broker_stop(broker_id: int) -> None:
    """SIGTERM a broker: controlled shutdown."""
    _broker_action("stop", broker_id)


@broker_app.command("start")
def broker_start(broker_id: int) -> None:
    """Start a stopped broker again with its id and data; waits until it is registered."""
    _broker_action("start", broker_id)


@broker_app.command("pause")
def broker_pause(broker_id: int) -> None:
    """SIGSTOP a broker (a frozen JVM)."""
    _broker_action("pause", broker_id)


@broker_app.command("resume")
def broker_resume(broker_id: int) -> None:
    """SIGCONT a paused broker."""
    _broker_action("resume", broker_id)


@topic_app.command("create")
def topic_create(
    name: str,
    partitions: Annotated[int, typer.Option(help="partition count")] = 3,
    replication_factor: Annotated[int, typer.Option(help="replicas per partition")] = 3,
    config: Annotated[list[str] | None, typer.Option("--config", "-c", help="topic config key=value")] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Create a topic and wait until every partition has a leader."""
    from kafkaops.admin import create_topic

    conf = _key_values(config or [], "--config")
    create_topic(_bootstrap(bootstrap), name, partitions, replication_factor, conf)
    out.print(f"topic {name} created: {partitions} partitions, replication factor {replication_factor}")


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{flag} takes key=value, not {item!r}")
        result[key] = value
    return result


# ---------------------------------------------------------------------- demo
@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    messages: Annotated[int, typer.Option(help="records per round trip")] = 1000,
) -> None:
    """Run the end-to-end demo against the local cluster (`kafkaops up` first)."""
    from kafkaops import demo as demo_mod

    if ctx.invoked_subcommand is not None:
        return
    cluster = _local_cluster()
    failed = 0
    for step in demo_mod.run(cluster, messages):
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        out.print(f"{mark}  [bold]{step.title}[/]: {step.detail}")
        failed += not step.ok
    if failed:
        raise demo_mod.DemoFailed(f"{failed} demo step(s) failed")
    out.print("[bold green]demo finished[/]")


# ---- serde & clients (issue 3) -------------------------------------------
from kafkaops.bench import bench_app  # noqa: E402  (typer sub-app; heavy imports stay lazy)

app.add_typer(bench_app, name="bench")
# ---- end serde & clients (issue 3) ---------------------------------------


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("KAFKAOPS_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kazoo.client").setLevel(logging.ERROR)  # reconnect chatter
    try:
        app()
    except KafkaopsError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
