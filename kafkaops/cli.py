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
schema_app = typer.Typer(help="Avro schemas in the ZooKeeper schema registry.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")

ZookeeperOpt = Annotated[
    str | None,
    typer.Option("--zookeeper", "-z", envvar="KAFKAOPS_ZOOKEEPER", help="ZooKeeper hosts of the schema registry (default: the local cluster's)"),
]


class _Registry:
    """``with _Registry(zk) as registry``: a SchemaRegistry on a started KazooClient, stopped after."""

    def __init__(self, zookeeper: str | None) -> None:
        self.hosts = zookeeper or str(_local_cluster().zk_hosts)

    def __enter__(self) -> Any:
        from kafkaops.coord.session import Coordinator
        from kafkaops.serde.registry import SchemaRegistry

        self.coord = Coordinator(self.hosts).start()
        return SchemaRegistry(self.coord)

    def __exit__(self, *exc: object) -> None:
        self.coord.stop()


def _require_topic(bootstrap: str, topic: str) -> None:
    from kafkaops.admin import AdminError, admin_client

    try:
        md = admin_client(bootstrap).list_topics(topic=topic, timeout=15)
    except Exception as exc:  # noqa: BLE001 - librdkafka's KafkaException: say which cluster
        raise AdminError(f"cannot read metadata from {bootstrap}: {exc}") from None
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise AdminError(f"topic {topic} does not exist (create it: kafkaops topic create {topic})")


@schema_app.command("register")
def schema_register(
    subject: str,
    file: Path,
    compatibility: Annotated[str | None, typer.Option(help="set the subject's mode first: BACKWARD, FORWARD, FULL, NONE (+_TRANSITIVE)")] = None,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """Register an .avsc file as the next version of SUBJECT (refused if incompatible)."""
    from kafkaops.serde.avro import AvroSchema

    schema = AvroSchema.load(file)
    with _Registry(zookeeper) as registry:
        if compatibility:
            registry.set_compatibility(compatibility, subject)
        r = registry.register(subject, schema)
    out.print(f"{r.subject} version {r.version}: schema id {r.id} ({schema.name})")


@schema_app.command("list")
def schema_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """Subjects with their versions, latest schema id and compatibility mode."""
    rows = []
    with _Registry(zookeeper) as registry:
        for subject in registry.subjects():
            versions = registry.versions(subject)
            latest = registry.get(subject) if versions else None
            rows.append({
                "subject": subject, "versions": versions, "latest_id": latest.id if latest else None,
                "schema": latest.schema.name if latest else None, "compatibility": registry.compatibility(subject).value,
            })
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="schema registry")
    for col in ("subject", "versions", "latest id", "schema", "compatibility"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["subject"], ",".join(map(str, r["versions"])), str(r["latest_id"]), str(r["schema"]), r["compatibility"])
    out.print(table)


@schema_app.command("show")
def schema_show(
    subject: Annotated[str | None, typer.Argument(help="subject (omit with --id)")] = None,
    version: Annotated[int | None, typer.Option(help="version (default: latest)")] = None,
    schema_id: Annotated[int | None, typer.Option("--id", help="show a schema by its global id")] = None,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """Print a registered schema (JSON) with its subject, version and id."""
    if (subject is None) == (schema_id is None):
        raise typer.BadParameter("give a SUBJECT or --id, not both")
    with _Registry(zookeeper) as registry:
        if schema_id is not None:
            data: dict[str, Any] = {"id": schema_id, "schema": registry.schema_by_id(schema_id).source}
        else:
            assert subject is not None
            data = registry.get(subject, version).to_json()
    out.print_json(json.dumps(data))


@schema_app.command("check")
def schema_check(
    subject: str,
    file: Path,
    compatibility: Annotated[str | None, typer.Option(help="check against this mode instead of the subject's")] = None,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """Would FILE be accepted as the next version of SUBJECT? Exit 1 and the breaking fields if not."""
    from kafkaops.serde.avro import AvroSchema
    from kafkaops.serde.registry import IncompatibleSchemaError

    schema = AvroSchema.load(file)
    with _Registry(zookeeper) as registry:
        result = registry.check(subject, schema, compatibility)
    if not result.compatible:
        raise IncompatibleSchemaError(subject, result.mode, result.problems)
    against = ", ".join(map(str, result.against_versions)) or "none"
    out.print(f"compatible ({result.mode.value}) with {subject} version(s): {against}")


@app.command()
def produce(
    topic: str,
    schema: Annotated[Path, typer.Option("--schema", "-s", help="Avro schema file (.avsc) of the values")],
    generate: Annotated[int | None, typer.Option(help="produce N generated sample records instead of reading stdin")] = None,
    subject: Annotated[str | None, typer.Option(help="registry subject (default: TOPIC-value)")] = None,
    key_field: Annotated[str | None, typer.Option(help="use this field of each record as the key")] = None,
    bootstrap: BootstrapOpt = None,
    zookeeper: ZookeeperOpt = None,
    # -- balancing strategies (issue 4)
    strategy: Annotated[
        str | None,
        typer.Option(help="partitioner: round-robin, random, least-loaded or key-hash (default: librdkafka's murmur2_random)"),
    ] = None,
    ignore_keys: Annotated[bool, typer.Option(help="apply --strategy to keyed records too (default: keys hash)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: records per partition")] = False,
) -> None:
    """Produce Avro records (Confluent wire format): JSON lines on stdin, or --generate N."""
    from kafkaops.clients.partitioners import make_partitioner
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.serde.avro import AvroCodec, AvroSchema
    from kafkaops.serde.codec import SerdeError

    part = make_partitioner(strategy, ignore_keys=ignore_keys) if strategy else None  # issue 4: fails early
    bs = _bootstrap(bootstrap)
    s = AvroSchema.load(schema)
    _require_topic(bs, topic)
    with _Registry(zookeeper) as registry:
        reg = registry.register(subject or f"{topic}-value", s)
    if generate is not None:
        from fastavro.utils import generate_many

        lines: Any = ((i + 1, rec) for i, rec in enumerate(generate_many(s.parsed, generate)))
    else:
        lines = ((n, line) for n, line in enumerate(sys.stdin, 1) if line.strip())
    # -- balancing strategies (issue 4): records per partition from delivery reports
    per_partition: dict[int, int] = {}

    def delivered(error: Any, report: Any) -> None:
        if report is not None:
            per_partition[report.partition] = per_partition.get(report.partition, 0) + 1

    producer: TypedProducer[Any] = TypedProducer(
        bs, topic, AvroCodec(s, reg.id), partitioner=part
    )
    count = 0
    try:
        for n, item in lines:
            if isinstance(item, str):
                try:
                    item = json.loads(item)
                except ValueError as exc:
                    raise SerdeError(f"stdin line {n}: not JSON: {exc}") from None
            key = item.get(key_field) if key_field and isinstance(item, dict) else None
            try:
                producer.produce(item, key=None if key is None else str(key), on_delivery=delivered)
            except SerdeError as exc:
                raise SerdeError(f"record {n}: {exc}") from None
            count += 1
    finally:
        left = producer.flush(60)
        if part is not None:
            part.close()
    if left:
        raise SerdeError(f"{left} of {count} records not acknowledged")
    if as_json:
        doc = {"topic": topic, "records": count, "strategy": strategy or "librdkafka", "schema_id": reg.id,
               "per_partition": {str(p): per_partition[p] for p in sorted(per_partition)}}
        out.print_json(json.dumps(doc))
        return
    out.print(f"produced {count} records to {topic} ({reg.subject} version {reg.version}, schema id {reg.id})")
    if strategy:
        _distribution_table(topic, strategy, per_partition)


def _distribution_table(topic: str, strategy: str, per_partition: dict[int, int]) -> None:
    """Records per partition as delivered (balancing strategies, issue 4)."""
    total = sum(per_partition.values()) or 1
    table = Table(title=f"{topic}: records per partition ({strategy})")
    for col in ("partition", "records", "share"):
        table.add_column(col, justify="right")
    for p in sorted(per_partition):
        table.add_row(str(p), str(per_partition[p]), f"{per_partition[p] / total:.1%}")
    out.print(table)


@app.command()
def consume(
    topic: str,
    group: Annotated[str, typer.Option("--group", "-g", help="consumer group id")],
    max_records: Annotated[int | None, typer.Option("--max", "-n", help="stop after N records")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="stop after this many seconds without a record")] = None,
    value_format: Annotated[str, typer.Option("--format", help="avro (Confluent wire format), json or bytes")] = "avro",
    bootstrap: BootstrapOpt = None,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """Print records as JSON lines on stdout (topic, partition, offset, timestamp, key, value).
    Poison records go to TOPIC.dlq; diagnostics go to stderr."""
    import contextlib

    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.serde.avro import AvroCodec
    from kafkaops.serde.codec import BytesCodec, JsonCodec, to_jsonable

    bs = _bootstrap(bootstrap)
    _require_topic(bs, topic)
    stack = contextlib.ExitStack()
    with stack:
        codec: Any
        if value_format == "avro":
            codec = AvroCodec(registry=stack.enter_context(_Registry(zookeeper)))
        elif value_format == "json":
            codec = JsonCodec()
        elif value_format == "bytes":
            codec = BytesCodec()
        else:
            raise typer.BadParameter(f"--format: avro, json or bytes, not {value_format!r}")
        consumer: TypedConsumer[Any] = stack.enter_context(TypedConsumer(bs, topic, group, codec, handle_sigterm=True))
        seen = 0
        last = time.monotonic()
        while max_records is None or seen < max_records:
            rec = consumer.poll(0.5)
            if rec is None:
                if consumer.stopping or (idle_timeout is not None and time.monotonic() - last > idle_timeout):
                    break
                continue
            last = time.monotonic()
            seen += 1
            sys.stdout.write(json.dumps(to_jsonable({
                "topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                "timestamp": rec.timestamp, "key": _text_or_bytes(rec.key), "value": rec.value,
            })) + "\n")
            sys.stdout.flush()
        err.print(f"{seen} record(s) from {topic}, {consumer.dead_lettered} dead-lettered", highlight=False)


def _text_or_bytes(key: bytes | None) -> Any:
    """A record key for JSON output: text when it is UTF-8, else bytes (shown base64)."""
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return key
# ---- end serde & clients (issue 3) ---------------------------------------


# ---- playbooks (issue 7) -------------------------------------------------
playbook_app = typer.Typer(help="Operational playbooks: list, validate, run (resumable, locked, audited).",
                           no_args_is_help=True)
app.add_typer(playbook_app, name="playbook")

VarOpt = Annotated[list[str] | None, typer.Option("--var", "-v", help="playbook variable name=value (repeatable)")]


@playbook_app.command("list")
def playbook_list() -> None:
    """The shipped playbooks, what they do and their variables (* = required)."""
    from kafkaops.ops import playbooks as pbs
    from kafkaops.ops.playbook_schema import REQUIRED

    from kafkaops.resources import shipped_dir

    table = Table(title=f"playbooks in {shipped_dir('playbooks')}")
    for col in ("name", "description", "variables"):
        table.add_column(col)
    for path in pbs.shipped():
        pb = pbs.load(path)
        variables = ", ".join(f"{v.name}{'*' if v.default is REQUIRED else ''}" for v in pb.variables.values())
        table.add_row(pb.name, pb.description, variables)
    out.print(table)


@playbook_app.command("validate")
def playbook_validate(
    file: Annotated[str, typer.Argument(help="playbook file or shipped playbook name")],
    var: VarOpt = None,
) -> None:
    """Validate a playbook (syntax, actions, argument types, variables) without touching a cluster."""
    from kafkaops.ops import playbooks as pbs
    from kafkaops.ops.playbook_schema import REQUIRED

    pb = pbs.load(pbs.find(file))
    if var:  # also bind the variables and type-check every argument after substitution
        pbs.make_plan(pb, _key_values(var, "--var"), lambda: {"all_brokers": [], "controller": -1})
    required = [v.name for v in pb.variables.values() if v.default is REQUIRED]
    out.print(f"[green]ok[/] {pb.file}: playbook {pb.name!r}, {len(pb.steps)} steps"
              + (f"; required variables: {', '.join(required)}" if required else ""), highlight=False)


@playbook_app.command("run")
def playbook_run(
    name: Annotated[str, typer.Argument(help="shipped playbook name (see `playbook list`) or a YAML file")],
    var: VarOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan; change nothing")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="continue the interrupted run at its first unfinished step")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="answer yes to confirm steps")] = False,
    bootstrap: BootstrapOpt = None,
    zookeeper: Annotated[str | None, typer.Option("--zookeeper", "-z", envvar="KAFKAOPS_ZOOKEEPER",
                                                  help="ZooKeeper hosts for progress, lock and audit (default: the local cluster's)")] = None,
    broker_control: Annotated[str | None, typer.Option("--broker-control", envvar="KAFKAOPS_BROKER_CONTROL",
                                                       help="BrokerControl config: YAML/JSON file or inline JSON (local | docker | shell)")] = None,
    zk_root: Annotated[str, typer.Option("--zk-root", help="kafkaops' znode root (progress, lock, audit, checkpoints)")] = "/kafkaops",
    lock_wait: Annotated[float, typer.Option("--lock-wait", help="seconds to wait for another run's lock (default: fail at once)")] = 0.0,
    audit_file: Annotated[Path | None, typer.Option("--audit-file", help="JSON-lines audit file (default $KAFKAOPS_HOME/audit/playbooks.jsonl)")] = None,
) -> None:
    """Run a playbook: validate it whole, then run its steps with health gates, under a lock."""
    from kafkaops.ops import actions as acts
    from kafkaops.ops import brokers as bc
    from kafkaops.ops import playbooks as pbs

    pb = pbs.load(pbs.find(name))
    overrides = _key_values(var or [], "--var")
    local: Any = None
    if bootstrap is None or zookeeper is None or (broker_control is None and not dry_run):
        try:
            local = _local_cluster()
        except KafkaopsError:
            if bootstrap is None or zookeeper is None:
                raise
    bootstrap = bootstrap or str(local.bootstrap_servers)
    zookeeper = zookeeper or str(local.zk_hosts)
    control = bc.load_config(broker_control) if broker_control else (
        bc.LocalBrokerControl.attach(local.base_dir) if local is not None else None)
    if dry_run and not resume:
        plan = pbs.make_plan(pb, overrides, pbs.cluster_facts(bootstrap))
        _show_plan(plan, set())
        return
    from kafkaops.coord.session import Coordinator

    coord = Coordinator(zookeeper, root=zk_root).start()
    try:
        ctx = acts.ActionContext(bootstrap, control, coord, assume_yes=yes)
        runner = pbs.PlaybookRunner(
            ctx, coord.client, root=coord.root, lock_timeout=lock_wait,
            audit_file=audit_file or Settings.from_env().home / "audit" / "playbooks.jsonl",
        )
        if resume:
            plan, done = runner.resume_plan(pb, overrides)
            if dry_run:
                _show_plan(plan, done)
                return
        else:
            plan = pbs.make_plan(pb, overrides, pbs.cluster_facts(bootstrap))
        _run_with_progress(runner, ctx, plan, resume, pb, yes)
    finally:
        coord.stop()


def _show_plan(plan: Any, done: set[int]) -> None:
    table = Table(title=f"plan: {plan.playbook} ({len(plan.steps)} steps)   variables: "
                        + ", ".join(f"{k}={v!r}" for k, v in plan.variables.items()))
    for col in ("#", "step", "action", "arguments", "gate") + (("status",) if done else ()):
        table.add_column(col)
    for s in plan.steps:
        args = ", ".join(f"{k}={v!r}" for k, v in s.args.items())
        row = [str(s.index), s.name, s.action, args, s.gate]
        if done:
            row.append("[green]done" if s.index in done else "to do")
        table.add_row(*row)
    out.print(table)
    out.print("[dim]dry run: nothing was changed[/]")


def _run_with_progress(runner: Any, ctx: Any, plan: Any, resume: bool, pb: Any, yes: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kafkaops.ops.playbooks import RunEvent

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=out, transient=True)
    task = progress.add_task(plan.playbook, total=len(plan.steps))
    started: dict[int, float] = {}

    def on_event(e: RunEvent) -> None:
        s = e.step
        tag = f"[{s.index}/{e.total}]" if s else ""
        if e.kind == "start" and s:
            started[s.index] = time.monotonic()
            progress.update(task, description=f"{tag} {s.name}")
        elif e.kind in ("progress", "gate") and s:
            progress.update(task, description=f"{tag} {s.name}: [dim]{e.message}[/]")
        elif e.kind == "done" and s:
            took = time.monotonic() - started.get(s.index, time.monotonic())
            progress.console.print(f"[green]ok[/]      {tag} {s.name}: {e.message} [dim]({took:.1f}s)[/]", highlight=False)
            progress.advance(task)
        elif e.kind == "skip" and s:
            progress.console.print(f"[dim]skipped {tag} {s.name}: {e.message}[/]", highlight=False)
            progress.advance(task)
        elif e.kind == "failed" and s:
            progress.console.print(f"[red]FAILED[/]  {tag} {s.name}: {e.message}", highlight=False)
        elif e.kind == "lock":
            progress.update(task, description=e.message)
        elif e.kind == "note":
            progress.console.print(f"[yellow]note[/]    {e.message}", highlight=False)

    def ask(message: str) -> bool:
        progress.stop()
        try:
            return typer.confirm(message, default=False)
        finally:
            progress.start()

    runner.on_event = on_event
    if not yes and sys.stdin.isatty():
        ctx.confirm = ask
    with progress:
        result = runner.run(plan, resume=resume, playbook=pb)
    note = f", {len(result.skipped)} done earlier" if result.skipped else ""
    out.print(f"[bold green]playbook {plan.playbook} finished[/]: run {result.run_id}, "
              f"{len(result.executed)} steps run{note}", highlight=False)
# ---- end playbooks (issue 7) ---------------------------------------------


# ---- replica monitor (issue 6) -------------------------------------------
def _monitor_sources(bootstrap: str | None, zookeeper: str | None) -> tuple[str | None, str | None, str | None]:
    """(bootstrap servers, zk connect with chroot, zk hosts without chroot); local cluster by default."""
    if bootstrap is None and zookeeper is None:
        local = _local_cluster()
        return str(local.bootstrap_servers), str(local.zk_connect), str(local.zk_hosts)
    hosts = zookeeper.split("/", 1)[0] if zookeeper else None
    return bootstrap, zookeeper, hosts


def _render_monitor(health: Any, events: list[Any], actions: list[Any], role: str) -> Any:
    from rich.console import Group
    from rich.panel import Panel

    c = health.counts
    brokers = Table(title=f"controller: {health.controller_id}", expand=False)
    for col in ("broker", "address", "alive"):
        brokers.add_column(col)
    for b in health.brokers.values():
        addr = f"{b.host}:{b.port}" if b.host else "-"
        brokers.add_row(str(b.id), addr, "[green]yes" if b.alive else "[red]no")
    parts = Table(title="partitions by health")
    for col in ("status", "count", "examples"):
        parts.add_column(col)
    for status, count, color in (
        ("offline", c.offline, "red"),
        ("under_min_isr", c.under_min_isr, "red"),
        ("under_replicated", c.under_replicated, "yellow"),
    ):
        examples = ", ".join(f"{p.topic}[{p.partition}]" for p in health.partitions_with(status)[:4])
        parts.add_row(f"[{color}]{status}" if count else status, str(count), examples)
    parts.add_row("total", str(c.total), f"preferred-leader imbalance: {c.preferred_leader_imbalance}")
    lines = [f"{time.strftime('%H:%M:%S', time.localtime(e.timestamp))}  {e.describe()}  [dim]({e.source})" for e in events[-12:]]
    lines += [f"{time.strftime('%H:%M:%S', time.localtime(a.timestamp))}  [bold]{a.what}[/] {a.result}: {a.why}" for a in actions[-5:]]
    title = "recent events and actions" + (f" - {role}" if role else "")
    return Group(brokers, parts, Panel("\n".join(lines) or "[dim]no events yet", title=title))


@app.command()
def monitor(
    once: Annotated[bool, typer.Option("--once", help="print one snapshot and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="with --once: one JSON object")] = False,
    events: Annotated[bool, typer.Option("--events", help="stream events as JSON lines")] = False,
    auto_failover: Annotated[bool, typer.Option("--auto-failover", help="run the FailoverPolicy (leader instance only)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="with --auto-failover: only report actions")] = False,
    grace: Annotated[float, typer.Option(help="seconds a broker must stay down before its replicas move")] = 30.0,
    throttle: Annotated[int, typer.Option(help="replication throttle while moving replicas, bytes/s per broker")] = 50 * 1024 * 1024,
    poll_interval: Annotated[float, typer.Option(help="Admin API poll interval, seconds")] = 1.0,
    connect_timeout: Annotated[float, typer.Option(help="seconds to wait for the first cluster view")] = 30.0,
    bootstrap: BootstrapOpt = None,
    zookeeper: Annotated[
        str | None,
        typer.Option("--zookeeper", "-z", envvar="KAFKAOPS_ZOOKEEPER", help="ZooKeeper connect string with the brokers' chroot, e.g. host:2181/kafka (default: the local cluster)"),
    ] = None,
) -> None:
    """Watch brokers and partition replication: live view, one snapshot, or an event stream."""
    import signal
    import socket
    import threading
    import uuid

    from kafkaops.ops.failover import FailoverPolicy, MonitorLeadership
    from kafkaops.ops.monitor import ReplicaMonitor, format_event_line

    if as_json and not once:
        raise typer.BadParameter("--json goes with --once (use --events for a JSON stream)")
    if dry_run and not auto_failover:
        raise typer.BadParameter("--dry-run goes with --auto-failover")
    if once and (events or auto_failover):
        raise typer.BadParameter("--once prints one snapshot; it does not go with --events or --auto-failover")
    bs, zk_connect, zk_hosts = _monitor_sources(bootstrap, zookeeper)
    if auto_failover and not bs:
        raise typer.BadParameter("--auto-failover needs --bootstrap-server (reassignments use the Admin API)")
    mon = ReplicaMonitor(bs, zk_connect, poll_interval=poll_interval).start(timeout=connect_timeout)
    if once:
        try:
            health = mon.snapshot()
        finally:
            mon.stop()
        if as_json:
            print(json.dumps(health.to_json()), flush=True)
        else:
            out.print(_render_monitor(health, [], [], ""))
        return

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    leadership = policy = None
    role = "monitoring only"
    try:
        if auto_failover:
            if zk_hosts:
                ident = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
                leadership = MonitorLeadership(zk_hosts, ident).start()
            else:
                err.print("[yellow]warning:[/] no ZooKeeper: this instance acts without leader election")

            def on_action(action: Any) -> None:
                if events:
                    print(json.dumps(action.to_json()), flush=True)

            policy = FailoverPolicy(
                mon, str(bs), grace=grace, throttle=throttle, dry_run=dry_run, leadership=leadership, on_action=on_action
            ).start()
        if events:
            stream = mon.events()
            while not stop.is_set():
                event = stream.get(timeout=0.2)
                if event is not None:
                    print(format_event_line(event), flush=True)
            stream.close()
            return
        from rich.live import Live

        with Live(console=out, refresh_per_second=2, screen=False) as live:
            while not stop.is_set():
                if policy is not None:
                    role = ("[bold]leader: auto-failover" if policy.is_acting else "standby") + (" (dry run)" if dry_run else "")
                live.update(_render_monitor(mon.snapshot(), mon.recent_events(), policy.actions if policy else [], role))
                stop.wait(0.5)
    finally:
        if policy is not None:
            policy.stop()
        if leadership is not None:
            leadership.stop()
        mon.stop()
# ---- end replica monitor (issue 6) ---------------------------------------


# ---- coordinator & checkpoints (issue 5) ---------------------------------
checkpoint_app = typer.Typer(help="ZooKeeper checkpoints of jobs: list, show, restore, prune.", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")

ZkHostsOpt = Annotated[
    str | None,
    typer.Option("--zookeeper", "-z", envvar="KAFKAOPS_ZOOKEEPER",
                 help="ZooKeeper hosts for kafkaops' znodes, e.g. host:2181 (a chroot is ignored; default: the local cluster)"),
]
ZkRootOpt = Annotated[str, typer.Option("--zk-root", envvar="KAFKAOPS_ZK_ROOT", help="namespace root of kafkaops' znodes")]
ZkAuthOpt = Annotated[
    str | None,
    typer.Option("--zk-auth", envvar="KAFKAOPS_ZK_AUTH", help="digest identity user:password (znodes then writable only by it)"),
]


def _zk_hosts(zookeeper: str | None) -> str:
    return (zookeeper or str(_local_cluster().zk_hosts)).split("/", 1)[0]


def _zk_auth(auth: str | None) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user:
        raise typer.BadParameter(f"--zk-auth takes user:password, not {auth!r}")
    return user, password


def _checkpoint_store(zookeeper: str | None, root: str, auth: str | None) -> Any:
    from kafkaops.coord.checkpoints import CheckpointStore
    from kafkaops.coord.session import Coordinator

    coord = Coordinator(_zk_hosts(zookeeper), root, auth=_zk_auth(auth)).start()
    return CheckpointStore(coord)


@demo_app.command("aggregate")
def demo_aggregate(
    topic: Annotated[str, typer.Option("--topic", "-t", help="topic to count")],
    job: Annotated[str, typer.Option("--job", "-j", help="job name: checkpoints live under /kafkaops/checkpoints/JOB")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file {key: count}, rewritten atomically")],
    idle_exit: Annotated[float | None, typer.Option("--idle-exit", help="exit after this many seconds without new records")] = None,
    every_records: Annotated[int, typer.Option("--every-records", help="checkpoint every N records")] = 1000,
    every_seconds: Annotated[float, typer.Option("--every-seconds", help="... or every T seconds")] = 2.0,
    bootstrap: BootstrapOpt = None,
    zookeeper: ZkHostsOpt = None,
    zk_root: ZkRootOpt = "/kafkaops",
    zk_auth: ZkAuthOpt = None,
) -> None:
    """Count records per key, exactly once across crashes (checkpointed consumer)."""
    from kafkaops.aggregate import run_aggregate

    bs = bootstrap or str(_local_cluster().bootstrap_servers)
    result = run_aggregate(bs, _zk_hosts(zookeeper), topic, job, output, idle_exit=idle_exit,
                           every_records=every_records, every_seconds=every_seconds,
                           zk_root=zk_root, zk_auth=_zk_auth(zk_auth))
    resumed = f"resumed from {result.resumed_from}" if result.resumed_from else "fresh start"
    out.print(f"job {job}: {result.records} records counted in this run ({resumed}); "
              f"{result.total} records over {result.keys} keys in {output}; "
              f"{result.checkpoints} checkpoints, last {result.last_checkpoint}", highlight=False, soft_wrap=True)


@checkpoint_app.command("list")
def checkpoint_list(
    job: Annotated[str | None, typer.Argument(help="job (omit to list jobs)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    zookeeper: ZkHostsOpt = None,
    zk_root: ZkRootOpt = "/kafkaops",
    zk_auth: ZkAuthOpt = None,
) -> None:
    """The checkpoints of JOB, oldest first (* marks the one the job resumes from)."""
    store = _checkpoint_store(zookeeper, zk_root, zk_auth)
    try:
        if job is None:
            jobs = store.jobs()
            if as_json:
                out.print_json(data=jobs)
            else:
                for name in jobs:
                    out.print(name, highlight=False)
            return
        infos = store.list(job)
        owner = store.owner(job)
    finally:
        store.coordinator.stop()
    if as_json:
        out.print_json(data=[_checkpoint_doc(i) for i in infos])
        return
    table = Table(title=f"checkpoints of {job}" + (f" (epoch {owner[0]}, owner {owner[1]})" if owner else ""))
    for col in ("", "id", "created (UTC)", "epoch", "partitions", "sum of offsets", "state"):
        table.add_column(col, no_wrap=col == "id")  # ids are copied into `show` / `restore`
    for i in infos:
        table.add_row("*" if i.latest else "", i.id, _utc(i.created), str(i.epoch), str(len(i.offsets)),
                      str(sum(i.offsets.values())), _state_desc(i))
    out.print(table)


@checkpoint_app.command("show")
def checkpoint_show(
    job: Annotated[str, typer.Argument(help="job")],
    checkpoint_id: Annotated[str | None, typer.Argument(help="checkpoint id (default: the job's current one)")] = None,
    state_file: Annotated[Path | None, typer.Option("--state-to", help="write the state bytes to this file ('-' = stdout)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    zookeeper: ZkHostsOpt = None,
    zk_root: ZkRootOpt = "/kafkaops",
    zk_auth: ZkAuthOpt = None,
) -> None:
    """One checkpoint: offsets per partition, metadata, state size (verified by SHA-256)."""
    from kafkaops.coord.checkpoints import CheckpointNotFoundError

    store = _checkpoint_store(zookeeper, zk_root, zk_auth)
    try:
        ckpt = store.get(job, checkpoint_id) if checkpoint_id else store.latest(job)
    finally:
        store.coordinator.stop()
    if ckpt is None:
        raise CheckpointNotFoundError(f"job {job!r} has no checkpoints")
    if state_file is not None:
        if str(state_file) == "-":
            sys.stdout.buffer.write(ckpt.state or b"")
            sys.stdout.flush()
            return
        state_file.write_bytes(ckpt.state or b"")
    if as_json:
        out.print_json(data=_checkpoint_doc(ckpt.info))
        return
    i = ckpt.info
    out.print(f"[bold]{i.id}[/] of {job}{' (current)' if i.latest else ''}: epoch {i.epoch}, "
              f"created {_utc(i.created)} UTC, state {_state_desc(i)}", highlight=False)
    if i.metadata:
        out.print(f"metadata: {json.dumps(i.metadata, sort_keys=True)}", highlight=False)
    table = Table(title="offsets (next record to process)")
    for col in ("topic", "partition", "offset"):
        table.add_column(col)
    for (t, p), o in sorted(i.offsets.items()):
        table.add_row(t, str(p), str(o))
    out.print(table)


@checkpoint_app.command("restore")
def checkpoint_restore(
    job: Annotated[str, typer.Argument(help="job")],
    checkpoint_id: Annotated[str, typer.Argument(help="the checkpoint the job resumes from")],
    zookeeper: ZkHostsOpt = None,
    zk_root: ZkRootOpt = "/kafkaops",
    zk_auth: ZkAuthOpt = None,
) -> None:
    """Point JOB at CHECKPOINT_ID; a running instance is fenced and must be restarted."""
    store = _checkpoint_store(zookeeper, zk_root, zk_auth)
    try:
        epoch = store.restore(job, checkpoint_id, owner="kafkaops checkpoint restore")
    finally:
        store.coordinator.stop()
    out.print(f"job {job} now resumes from {checkpoint_id} (epoch {epoch}; running instances are fenced)", highlight=False)


@checkpoint_app.command("prune")
def checkpoint_prune(
    job: Annotated[str, typer.Argument(help="job")],
    keep: Annotated[int, typer.Option("--keep", "-k", help="checkpoints to keep (the current one is always kept)")] = 5,
    zookeeper: ZkHostsOpt = None,
    zk_root: ZkRootOpt = "/kafkaops",
    zk_auth: ZkAuthOpt = None,
) -> None:
    """Delete all but the newest KEEP checkpoints of JOB, and orphaned state chunks."""
    store = _checkpoint_store(zookeeper, zk_root, zk_auth)
    try:
        deleted = store.prune(job, keep=keep)
    finally:
        store.coordinator.stop()
    out.print(f"job {job}: deleted {len(deleted)} checkpoint(s)" + (f" ({deleted[0]} .. {deleted[-1]})" if deleted else ""),
              highlight=False)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _state_desc(i: Any) -> str:
    if i.state_size is None:
        return "none"
    how = f", {i.codec}" if i.codec != "none" else ""
    how += f", {i.chunks} chunks" if i.chunks else ""
    return f"{i.state_size} B{how}"


def _checkpoint_doc(i: Any) -> dict[str, Any]:
    return {
        "job": i.job, "id": i.id, "current": i.latest, "epoch": i.epoch, "created": i.created,
        "offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(i.offsets.items())],
        "metadata": i.metadata, "state_size": i.state_size, "state_sha256": i.state_sha256,
        "codec": i.codec, "chunks": i.chunks,
    }
# ---- end coordinator & checkpoints (issue 5) -----------------------------


def _not_librdkafka(record: logging.LogRecord) -> bool:
    """librdkafka reports every refused connection to a dead broker; the CLI shows
    outcomes instead, unless KAFKAOPS_LOG_LEVEL asks for the details."""
    return not (isinstance(record.args, tuple) and len(record.args) == 3 and str(record.args[1]).startswith("rdkafka#"))


def main() -> None:
    level = os.environ.get("KAFKAOPS_LOG_LEVEL")
    logging.basicConfig(
        level=(level or "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level is None:
        logging.getLogger("kazoo.client").setLevel(logging.ERROR)  # reconnect chatter
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_librdkafka)
    try:
        app()
    except KafkaopsError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one line, however long
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
