"""`kafkaops fetch | up | down | status`, `kafkaops broker ...` and `kafkaops controller ...`.

`up` starts a local cluster (ZooKeeper mode with Kafka 3.9, or KRaft with Kafka 4.x) and
writes its profile (``$KAFKAOPS_HOME/cluster/profile.yaml``), which every other command
uses when given no ``--profile`` and no ``-b``. `status` works on any cluster and, on
KRaft, shows the metadata quorum; the broker and controller commands control the local
cluster's processes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kafkaops.cli.common import Target, cluster_dir, connection, err, local_cluster, out
from kafkaops.config import Settings
from kafkaops.errors import ClusterError, NoClusterError

if TYPE_CHECKING:
    from kafkaops.config import ClusterProfile
    from kafkaops.local.cluster import LocalCluster
    from kafkaops.ops.health import ClusterHealth
    from kafkaops.quorum import QuorumState

broker_app = typer.Typer(help="Control one broker of the local cluster.", no_args_is_help=True)
controller_app = typer.Typer(help="Control one KRaft controller of the local cluster.", no_args_is_help=True)

ModeOpt = Annotated[str, typer.Option("--mode", help="zookeeper (Kafka 3.9) or kraft (Kafka 4.x)")]
VersionOpt = Annotated[str | None, typer.Option("--kafka-version", help="Apache Kafka version from Maven Central "
                                                "(default: 3.9.2 for zookeeper, 4.4.0 for kraft)")]


def _mode(mode: str) -> str:
    if mode not in ("zookeeper", "kraft"):
        raise typer.BadParameter(f"--mode is zookeeper or kraft, not {mode!r}")
    return mode


def fetch(mode: ModeOpt = "zookeeper", kafka_version: VersionOpt = None) -> None:
    """Fetch Apache Kafka's jars from Maven Central into the cache (once)."""
    from kafkaops.local.distribution import resolve

    t0 = time.monotonic()
    dist = resolve(version=kafka_version, kraft=_mode(mode) == "kraft")
    out.print(f"Kafka {dist.version}: {dist.libs} ({time.monotonic() - t0:.1f}s)")


def up(
    brokers: Annotated[int, typer.Option(help="number of Kafka brokers")] = 3,
    zookeepers: Annotated[int, typer.Option(help="ZooKeeper nodes: 1, 3 or 5")] = 1,
    secure: Annotated[bool, typer.Option("--secure", help="SASL_SSL/SCRAM-SHA-512 listeners, ACLs, ZooKeeper SASL; "
                                                         "the profile is the admin super user's")] = False,
    mode: ModeOpt = "zookeeper",
    kafka_version: VersionOpt = None,
    controllers: Annotated[int, typer.Option(help="KRaft: controllers in the metadata quorum (1, 3 or 5)")] = 3,
    combined: Annotated[bool, typer.Option("--combined", help="KRaft: run the controllers inside the first "
                                           "brokers (process.roles=broker,controller)")] = False,
) -> None:
    """Start ZooKeeper and Kafka (brokers; KRaft: and controllers) as background JVMs; write their profile."""
    from kafkaops.local.cluster import LocalCluster

    if _mode(mode) == "zookeeper" and (combined or controllers != 3):
        raise typer.BadParameter("--controllers and --combined are for --mode kraft (ZooKeeper mode elects a broker)")

    base = cluster_dir()
    try:
        if LocalCluster.attach(base).any_running():
            raise ClusterError(f"a local cluster is already running in {base}; stop it with `kafkaops down`")
    except NoClusterError:
        pass
    if base.exists():
        shutil.rmtree(base)
    t0 = time.monotonic()
    what = "ZooKeeper and brokers" if mode == "zookeeper" else "ZooKeeper, KRaft controllers and brokers"
    with err.status(f"starting {what}" + (" (secured)..." if secure else "...")):
        cluster = LocalCluster(base, brokers=brokers, zookeepers=zookeepers, mode=mode, controllers=controllers,
                               combined=combined, kafka_version=kafka_version, secure=secure, detached=True).start()
    profile = cluster.profile.save(Settings.from_env().local_profile)
    out.print(f"cluster up in {time.monotonic() - t0:.1f}s: {mode} mode, Kafka {cluster.kafka_version}")
    lines = [f"bootstrap servers: {cluster.bootstrap_servers}"]
    if mode == "kraft":
        lines += [f"controllers: {', '.join(str(c.id) for c in cluster.controllers)}"
                  + (" (combined with brokers)" if cluster.combined else ""),
                  f"zookeeper connect: {cluster.zk_hosts} (kafkaops' coordination only)"]
    else:
        lines.append(f"zookeeper connect: {cluster.zk_connect}")
    for line in (*lines, f"profile: {profile}", *_security_lines(cluster)):
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
    """Mode, brokers, controller, topics, partitions under-replicated, under min ISR or offline;
    on KRaft the metadata quorum (voters and their lag)."""
    from kafkaops.ops.health import cluster_health

    local = local_cluster() if target.is_local else None
    known = {b.id: ("127.0.0.1", b.port) for b in local.brokers} if local is not None else {}
    profile = target.cluster()
    health = cluster_health(profile, known_brokers=known)
    if local is not None:  # a stopped or paused local broker is not alive, whatever metadata still says
        health = health.with_dead(b.id for b in local.brokers if not b.alive)
    mode, quorum = _quorum(profile, local)
    if quorum is not None:  # Metadata names a random broker "controller" on KRaft: the quorum knows
        health = dataclasses.replace(health, controller_id=quorum.leader_id)
    if as_json:
        doc = {"mode": mode, **health.to_json(), "quorum": quorum.to_json() if quorum is not None else None}
        out.print_json(json.dumps(doc))
        return
    _render(mode, health, quorum, local)


def _quorum(profile: ClusterProfile, local: LocalCluster | None) -> tuple[str, QuorumState | None]:
    """The cluster's Kafka mode and, on KRaft, its quorum (None when no broker forwards the question)."""
    from kafkaops.quorum import QuorumError, describe_quorum, kafka_mode

    mode = local.mode if local is not None else kafka_mode(profile)
    if mode != "kraft":
        return mode, None
    try:
        return mode, describe_quorum(profile)
    except QuorumError as exc:
        err.print(f"[yellow]metadata quorum unknown:[/] {exc}", highlight=False, soft_wrap=True)
        return mode, None


def _render(mode: str, health: ClusterHealth, quorum: QuorumState | None, local: LocalCluster | None) -> None:
    version = f" (Kafka {local.kafka_version})" if local is not None and local.kafka_version else ""
    role = "active controller" if mode == "kraft" else "controller"
    table = Table(title=f"mode: {mode}{version}   {role}: {health.controller_id}   topics: {len(health.topics)}")
    for col in ("broker", "host", "port", "alive"):
        table.add_column(col)
    for b in health.brokers.values():
        table.add_row(str(b.id), b.host or "-", str(b.port or "-"), "[green]yes" if b.alive else "[red]no")
    out.print(table)
    if quorum is not None:
        states = {c.id: c.state for c in local.controllers} if local is not None else {}
        q = Table(title=f"metadata quorum: leader epoch {quorum.leader_epoch}, high watermark {quorum.high_watermark}")
        for col in ("node", "role", "lag (records)", *(["process"] if local is not None else [])):
            q.add_column(col)
        for m in (*quorum.voters, *quorum.observers):
            kind = ("voter, [bold]active[/]" if m.node_id == quorum.leader_id else "voter") if m in quorum.voters \
                else "observer (broker)"
            q.add_row(str(m.node_id), kind, str(quorum.lag(m.node_id)),
                      *([states.get(m.node_id, "-")] if local is not None else []))
        out.print(q)
    c = health.counts
    out.print(f"partitions: {c.total} total, {c.under_replicated} under-replicated, "
              f"{c.under_min_isr} under min ISR, {c.offline} offline")


NODE_ACTIONS = {
    "broker": {
        "kill": "SIGKILL a broker (no controlled shutdown).",
        "stop": "SIGTERM a broker: controlled shutdown.",
        "start": "Start a stopped broker again with its id and data; waits until it is registered.",
        "pause": "SIGSTOP a broker (a frozen JVM).",
        "resume": "SIGCONT a paused broker.",
    },
    "controller": {
        "kill": "SIGKILL a KRaft controller (the quorum elects another leader if it was the active one).",
        "stop": "SIGTERM a KRaft controller: clean shutdown (an active controller resigns first).",
        "start": "Start a stopped KRaft controller again; waits until it has caught up with the quorum.",
        "pause": "SIGSTOP a KRaft controller (a frozen JVM).",
        "resume": "SIGCONT a paused KRaft controller.",
    },
}


def _node_command(kind: str, action: str, doc: str) -> Callable[[int], None]:
    """``kafkaops broker|controller ACTION ID``: the local cluster's ``<action>_<kind>(ID)``."""

    def command(node_id: int) -> None:
        getattr(local_cluster(), f"{action}_{kind}")(node_id)
        out.print(f"{kind} {node_id}: {action} done")

    # evaluated here (the module's annotations are strings, which typer could not resolve in a closure)
    command.__annotations__ = {"node_id": Annotated[int, typer.Argument(metavar=f"{kind.upper()}_ID")], "return": None}
    command.__doc__ = doc
    command.__name__ = f"{kind}_{action}"
    return command


for _kind, _app in (("broker", broker_app), ("controller", controller_app)):
    for _action, _doc in NODE_ACTIONS[_kind].items():
        _app.command(_action)(_node_command(_kind, _action, _doc))
