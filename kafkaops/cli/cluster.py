"""`kafkaops fetch | up | down | status` and `kafkaops broker kill|stop|start|pause|resume`.

`up` starts a local cluster and writes its profile (``$KAFKAOPS_HOME/cluster/profile.yaml``),
which every other command uses when given no ``--profile`` and no ``-b``. `status` works
on any cluster; the broker commands control the local cluster's processes.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kafkaops.cli.common import Target, cluster_dir, connection, err, local_cluster, out
from kafkaops.config import Settings
from kafkaops.errors import ClusterError, NoClusterError

if TYPE_CHECKING:
    from kafkaops.local.cluster import LocalCluster

broker_app = typer.Typer(help="Control one broker of the local cluster.", no_args_is_help=True)


def fetch() -> None:
    """Fetch Apache Kafka's jars from Maven Central into the cache (once)."""
    from kafkaops.local.distribution import resolve

    t0 = time.monotonic()
    dist = resolve()
    out.print(f"Kafka {dist.version}: {dist.libs} ({time.monotonic() - t0:.1f}s)")


def up(
    brokers: Annotated[int, typer.Option(help="number of Kafka brokers")] = 3,
    zookeepers: Annotated[int, typer.Option(help="ZooKeeper nodes: 1, 3 or 5")] = 1,
    secure: Annotated[bool, typer.Option("--secure", help="SASL_SSL/SCRAM-SHA-512 listeners, ACLs, ZooKeeper SASL; "
                                                         "the profile is the admin super user's")] = False,
) -> None:
    """Start ZooKeeper and Kafka brokers as background JVM processes; write their profile."""
    from kafkaops.local.cluster import LocalCluster

    base = cluster_dir()
    try:
        if LocalCluster.attach(base).any_running():
            raise ClusterError(f"a local cluster is already running in {base}; stop it with `kafkaops down`")
    except NoClusterError:
        pass
    if base.exists():
        shutil.rmtree(base)
    t0 = time.monotonic()
    with err.status("starting ZooKeeper and brokers" + (" (secured)..." if secure else "...")):
        cluster = LocalCluster(base, brokers=brokers, zookeepers=zookeepers, secure=secure, detached=True).start()
    profile = cluster.profile.save(Settings.from_env().local_profile)
    out.print(f"cluster up in {time.monotonic() - t0:.1f}s")
    for line in (f"bootstrap servers: {cluster.bootstrap_servers}", f"zookeeper connect: {cluster.zk_connect}",
                 f"profile: {profile}", *_security_lines(cluster)):
        out.print(line, highlight=False, soft_wrap=True)  # one line each, to copy from


def _security_lines(cluster: LocalCluster) -> list[str]:
    """What a secured cluster's user needs to know (never a password: those are in the profile, mode 0600)."""
    sec = cluster.security
    if sec is None:
        return []
    return [f"security: SASL_SSL / SCRAM-SHA-512 as User:admin (super user), CA {sec.ca_file}",
            "use it: kafkaops status --profile <profile> (or KAFKAOPS_PROFILE); the passwords are in the profile only"]


def down() -> None:
    """Stop the local cluster (brokers first, then ZooKeeper) and delete its data."""
    from kafkaops.local.cluster import LocalCluster

    cluster = LocalCluster.attach(cluster_dir())
    running = cluster.any_running()
    if running:
        cluster.stop()
    cluster.destroy()
    out.print("cluster stopped" if running else "no cluster was running; state cleared")


@connection(zookeeper=False)
def status(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    *,
    target: Target,
) -> None:
    """Brokers, controller, topics, and partitions under-replicated, under min ISR or offline."""
    from kafkaops.ops.health import cluster_health

    local = local_cluster() if target.is_local else None
    known = {b.id: ("127.0.0.1", b.port) for b in local.brokers} if local is not None else {}
    health = cluster_health(target.cluster(), known_brokers=known)
    if local is not None:  # a stopped or paused local broker is not alive, whatever metadata still says
        health = health.with_dead(b.id for b in local.brokers if not b.alive)
    if as_json:
        out.print_json(json.dumps(health.to_json()))
        return
    table = Table(title=f"controller: {health.controller_id}   topics: {len(health.topics)}")
    for col in ("broker", "host", "port", "alive"):
        table.add_column(col)
    for b in health.brokers.values():
        table.add_row(str(b.id), b.host or "-", str(b.port or "-"), "[green]yes" if b.alive else "[red]no")
    out.print(table)
    c = health.counts
    out.print(f"partitions: {c.total} total, {c.under_replicated} under-replicated, "
              f"{c.under_min_isr} under min ISR, {c.offline} offline")


def _broker_action(action: str, broker_id: int) -> None:
    cluster = local_cluster()
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
