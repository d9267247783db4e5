"""`kafkaops bench`: side-by-side throughput runs on one cluster, reported as ratios.

Every benchmark runs its contestants one after the other in the same process on
the same cluster (same topic layout, same pre-built records), several rounds
interleaved, and reports each contestant's median round: the machine is shared and
noisy, so absolute rates mean little; the ratios between contestants measured
side by side are what we report (wall-clock rates, and CPU time per record, which
a loaded machine disturbs less).

Layout, so more benchmarks can be added without touching the others:
- shared helpers: ``Measurement``, ``BenchReport``, ``timed``, ``bench_topic``,
  ``run_rounds``, ``render``;
- one function per benchmark returning a ``BenchReport`` (``bench_produce``,
  ``bench_consume``), free of printing;
- one typer command per benchmark in ``bench_app`` that calls it and renders.
"""

from __future__ import annotations

import gc
import json
import logging
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from kafkaops.resources import schema_path

log = logging.getLogger(__name__)

bench_app = typer.Typer(help="Side-by-side benchmarks on the local cluster (ratios, not absolute times).", no_args_is_help=True)



# ---------------------------------------------------------------------- shared helpers
@dataclass
class Measurement:
    """One contestant's run: how many records (and bytes) in how many seconds."""

    name: str
    records: int
    seconds: float
    bytes: int = 0
    cpu_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records per second (wall clock)."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_record(self) -> float:
        """Process CPU time (all threads, librdkafka's too) per record, in microseconds."""
        return self.cpu_seconds / self.records * 1e6 if self.records else 0.0


@dataclass
class BenchReport:
    """A benchmark's result: every contestant's median run, and ratios ``a / b`` of their rates."""

    benchmark: str
    records: int
    rounds: int
    measurements: list[Measurement]
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def measurement(self, name: str) -> Measurement:
        for m in self.measurements:
            if m.name == name:
                return m
        raise KeyError(name)

    def add_ratio(self, numerator: str, denominator: str, target: float | None = None) -> float:
        """Record ``rate(numerator) / rate(denominator)`` under the key ``"numerator/denominator"``."""
        den = self.measurement(denominator).rate
        value = self.measurement(numerator).rate / den if den > 0 else 0.0
        key = f"{numerator}/{denominator}"
        self.ratios[key] = value
        if target is not None:
            self.targets[key] = target
        return value

    def add_cpu_ratio(self, numerator: str, denominator: str) -> float:
        """CPU efficiency ``cpu/record(denominator) / cpu/record(numerator)`` (higher: numerator cheaper),
        under the key ``"numerator/denominator (cpu)"``: less sensitive to a loaded machine than wall rates."""
        num = self.measurement(numerator).cpu_us_per_record
        value = self.measurement(denominator).cpu_us_per_record / num if num > 0 else 0.0
        self.ratios[f"{numerator}/{denominator} (cpu)"] = value
        return value

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for m, d in zip(self.measurements, data["measurements"], strict=True):
            d["rate"] = m.rate
            d["cpu_us_per_record"] = m.cpu_us_per_record
        return data


def timed(name: str, records: int, fn: Callable[[], int | dict[str, Any] | None], nbytes: int = 0) -> Measurement:
    """Run ``fn`` once and time it. ``fn`` may return the record count it really handled
    (then that count is used) or a dict of extra facts (kept in ``Measurement.extra``)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    m = Measurement(name, records, seconds, nbytes, time.process_time() - c0)
    if isinstance(result, int):
        m.records = result
    elif isinstance(result, dict):
        m.extra.update(result)
    return m


def _now() -> tuple[float, float]:
    """(wall, process CPU) clock readings, for ``spanned``."""
    return time.perf_counter(), time.process_time()


def spanned(name: str, expected: int, fn: Callable[..., dict[str, Any]], *args: Any) -> Measurement:
    """Run ``fn(*args)``, which reports ``{"seen": n, "first": _now(), "end": _now()}`` around
    the span it wants measured (e.g. without client start-up or group join)."""
    r = fn(*args)
    if not r["seen"]:
        return Measurement(name, 0, 0.0, 0, 0.0, {"expected": expected})
    (w0, c0), (w1, c1) = r["first"], r["end"]
    return Measurement(name, int(r["seen"]), w1 - w0, 0, c1 - c0, {"expected": expected})


def run_rounds(contestants: dict[str, Callable[[], Measurement]], rounds: int) -> list[Measurement]:
    """Run every contestant ``rounds`` times, interleaved, the order rotated each round (so no
    contestant always follows the same one). Each contestant's result is the median of its
    rounds (wall seconds and CPU seconds separately): robust on a shared, noisy machine. The
    record count is the smallest seen in any round, so a round that lost records shows."""
    runs: dict[str, list[Measurement]] = {name: [] for name in contestants}
    names = list(contestants)
    for r in range(max(1, rounds)):
        for name in names[r % len(names):] + names[: r % len(names)]:
            gc.collect()  # each contestant starts without the previous one's garbage
            runs[name].append(contestants[name]())
    result = []
    for name in names:
        ms = runs[name]
        records = min(m.records for m in ms)
        seconds = statistics.median(m.seconds for m in ms)
        cpu = statistics.median(m.cpu_seconds for m in ms)
        extra = {**ms[0].extra, "rounds_seconds": [round(m.seconds, 4) for m in ms]}
        result.append(Measurement(name, records, seconds, ms[0].bytes, cpu, extra))
    return result


def bench_topic(bootstrap_servers: str, partitions: int = 3, replication_factor: int = 3, prefix: str = "bench") -> str:
    """A fresh topic for one benchmark run (RF capped by the number of brokers)."""
    from kafkaops.admin import admin_client, create_topic

    brokers = len(admin_client(bootstrap_servers).list_topics(timeout=10).brokers)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap_servers, name, partitions, min(replication_factor, max(1, brokers)))
    return name


def render(report: BenchReport, console: Console, as_json: bool = False) -> None:
    """A rich table of rates and ratios, or one JSON object."""
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        return
    table = Table(title=f"bench {report.benchmark}: {report.records} records, median of {report.rounds} round(s)")
    for col in ("contestant", "records", "seconds", "records/s", "cpu µs/record"):
        table.add_column(col, justify="right" if col != "contestant" else "left")
    for m in report.measurements:
        table.add_row(m.name, str(m.records), f"{m.seconds:.3f}", f"{m.rate:,.0f}", f"{m.cpu_us_per_record:.1f}")
    console.print(table)
    ratios = Table(title="ratios (side by side, same run)")
    for col in ("ratio", "value", "target", "met"):
        ratios.add_column(col)
    for key, value in report.ratios.items():
        target = report.targets.get(key)
        met = "" if target is None else ("[green]yes[/]" if value >= target else "[red]no[/]")
        ratios.add_row(key, f"{value:.2f}x", "" if target is None else f">= {target:.2f}x", met)
    console.print(ratios)
    for note in report.notes:
        console.print(f"[dim]{note}[/]")


# ---------------------------------------------------------------------- serde & clients benchmarks (issue 3)
@dataclass
class AvroWorkload:
    """Pre-built records and the schema (with its id) every produce/consume contestant uses."""

    schema: Any  # kafkaops.serde.avro.AvroSchema
    schema_id: int
    records: list[dict[str, Any]]

    def header(self) -> bytes:
        from kafkaops.serde.avro import wire_header

        return wire_header(self.schema_id)


def avro_workload(count: int, schema_file: Path | None = None, schema_id: int | None = None, zk_hosts: str | None = None, seed: int = 7) -> AvroWorkload:
    """``count`` sample records of the order schema (generated once, reused by all contestants).

    With ``zk_hosts`` the schema is registered in the ZooKeeper registry (subject
    ``bench-order-value``) and its id used; otherwise ``schema_id`` (default 1).
    """
    import random

    from fastavro.utils import generate_many

    from kafkaops.serde.avro import AvroSchema

    schema = AvroSchema.load(schema_file or schema_path("order-v1"))
    random.seed(seed)
    distinct = list(generate_many(schema.parsed, min(count, 1000) or 1))
    records = [distinct[i % len(distinct)] for i in range(count)]
    sid = schema_id or 1
    if zk_hosts:
        from kafkaops.coord.session import Coordinator
        from kafkaops.serde.registry import SchemaRegistry

        with Coordinator(zk_hosts) as coord:
            sid = SchemaRegistry(coord).register("bench-order-value", schema).id
    return AvroWorkload(schema, sid, records)


def produce_typed(bootstrap_servers: str, topic: str, work: AvroWorkload, count: int) -> dict[str, Any]:
    """TypedProducer + AvroCodec: produce every record (futures discarded), close (flush);
    acknowledgements come from the producer's own delivery counters."""
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.serde.avro import AvroCodec

    producer: TypedProducer[dict[str, Any]] = TypedProducer(bootstrap_servers, topic, AvroCodec(work.schema, work.schema_id))
    records = work.records
    produce = producer.produce
    t0 = _now()
    for i in range(count):
        produce(records[i])
    producer.close()
    end = _now()
    return {"seen": producer.acknowledged, "first": t0, "end": end}


def produce_raw(bootstrap_servers: str, topic: str, work: AvroWorkload, count: int) -> dict[str, Any]:
    """confluent_kafka.Producer (same settings) + fastavro + wire header, the documented idiom:
    produce with a delivery callback, poll(0) after each record, poll and retry when the queue is full."""
    from io import BytesIO

    from confluent_kafka import Producer
    from fastavro import schemaless_writer

    from kafkaops.clients.producer import DEFAULT_CONFIG

    producer = Producer({**DEFAULT_CONFIG, "bootstrap.servers": bootstrap_servers, "logger": log})
    parsed, header, records = work.schema.parsed, work.header(), work.records
    acked = 0

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    t0 = _now()
    for i in range(count):
        buf = BytesIO()
        buf.write(header)
        schemaless_writer(buf, parsed, records[i])
        value = buf.getvalue()
        while True:
            try:
                producer.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    return {"seen": acked, "first": t0, "end": _now()}


def produce_kafka_python(bootstrap_servers: str, topic: str, work: AvroWorkload, count: int) -> dict[str, Any]:
    """kafka-python's KafkaProducer (acks=all, idempotent, linger 5 ms; no lz4: the module is
    not installed) + the same fastavro encoding."""
    from io import BytesIO

    from fastavro import schemaless_writer
    from kafka import KafkaProducer

    logging.getLogger("kafka").setLevel(logging.ERROR)  # its event-loop timing warnings are noise here

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","), acks="all", enable_idempotence=True, linger_ms=5
    )
    parsed, header, records = work.schema.parsed, work.header(), work.records
    futures = []
    t0 = _now()
    for i in range(count):
        buf = BytesIO()
        buf.write(header)
        schemaless_writer(buf, parsed, records[i])
        futures.append(producer.send(topic, buf.getvalue()))
    producer.flush(120)
    end = _now()
    producer.close(30)
    return {"seen": sum(1 for f in futures if f.succeeded()), "first": t0, "end": end}


def bench_produce(
    bootstrap_servers: str,
    records: int = 50_000,
    rounds: int = 3,
    peer_records: int | None = None,
    zk_hosts: str | None = None,
    partitions: int = 3,
) -> BenchReport:
    """TypedProducer vs raw confluent_kafka + fastavro vs kafka-python, same records, same topic."""
    peer = peer_records if peer_records is not None else max(1, records // 5)
    work = avro_workload(max(records, peer), zk_hosts=zk_hosts)
    topic = bench_topic(bootstrap_servers, partitions, prefix="bench-produce")
    import kafkaops.clients.producer  # noqa: F401  (imports out of the first timed round)

    contestants: dict[str, Callable[[], Measurement]] = {
        "typed": lambda: spanned("typed", records, produce_typed, bootstrap_servers, topic, work, records),
        "raw": lambda: spanned("raw", records, produce_raw, bootstrap_servers, topic, work, records),
        "kafka-python": lambda: spanned(
            "kafka-python", peer, produce_kafka_python, bootstrap_servers, topic, work, peer
        ),
    }
    report = BenchReport("produce", records, rounds, run_rounds(contestants, rounds))
    report.add_ratio("typed", "raw", 0.90)
    report.add_ratio("typed", "kafka-python", 5.0)
    report.add_cpu_ratio("typed", "raw")
    report.add_cpu_ratio("typed", "kafka-python")
    report.notes += [
        f"topic {topic}: {partitions} partitions, RF min(3, brokers); Avro order records, schema id {work.schema_id}",
        "counts are acknowledged records (acks=all); measured from the first produce to the end of flush; median of the rounds",
        f"kafka-python produced {peer} records per round (it is slower); rates compare, not totals",
    ]
    return report


def consume_typed(
    bootstrap_servers: str, topic: str, work: AvroWorkload, count: int, timeout: float = 120.0, batch: bool = False
) -> dict[str, Any]:
    """TypedConsumer + AvroCodec, fresh group from the earliest offset: record by record
    (iterator), or ``batch`` (poll_batch of 500, the shape of the raw consumer's consume(500))."""
    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.serde.avro import AvroCodec

    consumer: TypedConsumer[dict[str, Any]] = TypedConsumer(
        bootstrap_servers, topic, f"bench-{uuid.uuid4().hex[:8]}", AvroCodec(work.schema, work.schema_id),
        handle_sigterm=False,
    )
    seen = 0
    first = (0.0, 0.0)
    deadline = time.monotonic() + timeout
    stop = threading.Timer(timeout, consumer.stop)  # the iterator ends on stop()
    stop.start()
    try:
        if batch:
            while seen < count and time.monotonic() < deadline:
                records = consumer.poll_batch(500, 0.5)
                if records and not seen:
                    first = _now()
                seen += len(records)
        else:
            for _rec in consumer:
                if not seen:
                    first = _now()
                seen += 1
                if seen >= count:
                    break
        consumer.ack()
        end = _now()
    finally:
        stop.cancel()
        consumer.close()
    return {"seen": seen, "first": first, "end": end}


def consume_raw(bootstrap_servers: str, topic: str, work: AvroWorkload, count: int, timeout: float = 120.0) -> dict[str, Any]:
    """confluent_kafka.Consumer (same settings) + fastavro: consume() batches, check the wire
    header, decode, store offsets after each batch (at-least-once, as the typed consumer does)."""
    from io import BytesIO

    from confluent_kafka import Consumer
    from fastavro import schemaless_reader

    from kafkaops.clients.consumer import DEFAULT_CONFIG

    consumer = Consumer(
        {
            **DEFAULT_CONFIG,
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "partition.assignment.strategy": "cooperative-sticky",
            "logger": log,
        }
    )
    consumer.subscribe([topic])
    parsed, header = work.schema.parsed, work.header()
    seen = 0
    first = (0.0, 0.0)
    deadline = time.monotonic() + timeout
    try:
        while seen < count and time.monotonic() < deadline:
            msgs = consumer.consume(500, 0.5)
            for m in msgs:
                if m.error() is not None:
                    continue
                data = m.value()
                if data is None or data[:5] != header:
                    raise ValueError("unexpected wire header")
                buf = BytesIO(data)
                buf.seek(5)
                schemaless_reader(buf, parsed, None)
                if seen == 0:
                    first = _now()
                seen += 1
            if msgs:
                last = [m for m in msgs if m.error() is None]
                if last:
                    consumer.store_offsets(message=last[-1])
        end = _now()
    finally:
        consumer.close()
    return {"seen": seen, "first": first, "end": end}


def bench_consume(
    bootstrap_servers: str,
    records: int = 50_000,
    rounds: int = 3,
    zk_hosts: str | None = None,
    partitions: int = 3,
) -> BenchReport:
    """TypedConsumer vs raw confluent_kafka.Consumer + fastavro over the same pre-produced topic."""
    work = avro_workload(records, zk_hosts=zk_hosts)
    topic = bench_topic(bootstrap_servers, partitions, prefix="bench-consume")
    produced = produce_raw(bootstrap_servers, topic, work, records)["seen"]
    if produced != records:
        raise RuntimeError(f"bench consume: only {produced} of {records} records acknowledged while preparing")

    import kafkaops.clients.consumer  # noqa: F401  (imports out of the first timed round)

    contestants: dict[str, Callable[[], Measurement]] = {
        "typed": lambda: spanned("typed", records, consume_typed, bootstrap_servers, topic, work, records),
        "typed-batch": lambda: spanned(
            "typed-batch", records, consume_typed, bootstrap_servers, topic, work, records, 120.0, True
        ),
        "raw": lambda: spanned("raw", records, consume_raw, bootstrap_servers, topic, work, records),
    }
    report = BenchReport("consume", records, rounds, run_rounds(contestants, rounds))
    report.add_ratio("typed", "raw", 0.90)
    report.add_ratio("typed-batch", "raw", 0.90)
    report.add_cpu_ratio("typed", "raw")
    report.add_cpu_ratio("typed-batch", "raw")
    report.notes += [
        f"topic {topic}: {partitions} partitions, {records} Avro order records; each round a fresh group from the start",
        "measured from the first record to the last (client start-up and group join excluded)",
        "typed: `for record in consumer` (one ConsumerRecord per step); typed-batch: poll_batch(500), which"
        " holds 500 decoded records at a time; raw: consume(500) + fastavro, decoding and dropping one"
        " record at a time, store_offsets per batch",
    ]
    return report


def _zk_hosts(zookeeper: str | None, bootstrap: str | None) -> str | None:
    """ZooKeeper for the registry: the option/env, else the local cluster's (if no -b given)."""
    if zookeeper:
        return zookeeper
    if bootstrap:
        return None
    from kafkaops.cli import _local_cluster

    return str(_local_cluster().zk_hosts)


def _bootstrap_of(bootstrap: str | None) -> str:
    from kafkaops.cli import _bootstrap

    return _bootstrap(bootstrap)


BootstrapOpt = Annotated[
    str | None,
    typer.Option("--bootstrap-server", "-b", envvar="KAFKAOPS_BOOTSTRAP", help="Kafka bootstrap servers (default: the local cluster)"),
]
ZookeeperOpt = Annotated[
    str | None,
    typer.Option("--zookeeper", envvar="KAFKAOPS_ZOOKEEPER", help="ZooKeeper hosts of the schema registry (default: the local cluster's)"),
]


@bench_app.command("produce")
def produce_command(
    records: Annotated[int, typer.Option("--records", "-n", help="records per contestant and round")] = 50_000,
    rounds: Annotated[int, typer.Option(help="interleaved rounds; each contestant's median counts")] = 3,
    peer_records: Annotated[int | None, typer.Option(help="records for kafka-python (default: records/5)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    bootstrap: BootstrapOpt = None,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """TypedProducer (Avro) vs raw confluent_kafka + fastavro vs kafka-python: rates and ratios."""
    bs = _bootstrap_of(bootstrap)
    report = bench_produce(bs, records, rounds, peer_records, _zk_hosts(zookeeper, bootstrap))
    render(report, Console(), as_json)


@bench_app.command("consume")
def consume_command(
    records: Annotated[int, typer.Option("--records", "-n", help="records to read per contestant and round")] = 50_000,
    rounds: Annotated[int, typer.Option(help="interleaved rounds; each contestant's median counts")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    bootstrap: BootstrapOpt = None,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """TypedConsumer (Avro) vs raw confluent_kafka consumer + fastavro: rates and ratios."""
    bs = _bootstrap_of(bootstrap)
    report = bench_consume(bs, records, rounds, _zk_hosts(zookeeper, bootstrap))
    render(report, Console(), as_json)


# ---------------------------------------------------------------------- balance (partitioning strategies; driver: kafkaops/bench_balance.py)
@bench_app.command("balance")
def balance_command(
    messages: Annotated[int, typer.Option("--messages", "-n", help="records per strategy in the healthy scenario")] = 100_000,
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", "-s", help="healthy, paused, paused-acks-all, leader-kill (default: all)")
    ] = None,
    plot: Annotated[Path, typer.Option(help="PNG of per-partition counts over time in the paused scenario")] = Path(
        "balance-paused.png"
    ),
    as_json: Annotated[bool, typer.Option("--json", help='one JSON object {"scenarios": ...}')] = False,
    rounds: Annotated[int, typer.Option(help="healthy: interleaved rounds, each strategy's best counts")] = 3,
    linger_ms: Annotated[float, typer.Option("--linger-ms", help="healthy: linger.ms of every contestant (librdkafka's default: 5)")] = 5,
) -> None:
    """Partitioners side by side on the local cluster (`kafkaops up`): it pauses and kills a broker."""
    from kafkaops import bench_balance
    from kafkaops.cli import _local_cluster
    from kafkaops.errors import ConfigError

    chosen = scenario or list(bench_balance.SCENARIOS)
    unknown = [s for s in chosen if s not in bench_balance.SCENARIOS]
    if unknown:
        raise ConfigError(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(bench_balance.SCENARIOS)}")
    if messages < 1000:
        raise ConfigError(f"--messages must be at least 1000, not {messages}")
    console, diag = Console(), Console(stderr=True)
    cluster = _local_cluster()
    report = bench_balance.run(cluster, messages, chosen, progress=lambda s: diag.print(f"[dim]{s}[/]"), rounds=max(1, rounds), linger_ms=linger_ms)
    over = ", ".join(f"{k} {v:.2f} us" for k, v in report.overhead_us.items())
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        diag.print(f"per-call overhead (12 partitions): {over}", highlight=False)
        return
    for name, rows in report.scenarios.items():
        extra = "paused_broker_share" if name.startswith("paused") else "recovery_s" if name == "leader-kill" else None
        table = Table(title=f"{name}")
        for col in ("strategy", "messages", "msgs/s", "p50 ms", "p99 ms", "max/min", "lost") + ((extra,) if extra else ()):
            table.add_column(col, justify="left" if col == "strategy" else "right")
        for strategy, r in rows.items():
            ratio = "-" if r["max_min_ratio"] is None else f"{r['max_min_ratio']:.3f}"
            cells = [strategy, str(r["messages"]), f"{r['msgs_per_s']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", ratio, str(r["lost"])]
            if extra:
                cells.append("-" if r[extra] is None else f"{r[extra]:.3f}" if extra != "recovery_s" else f"{r[extra]:.2f}")
            table.add_row(*cells)
        console.print(table)
    targets = Table(title="targets (side by side, same run)")
    for col in ("target", "measured", "wanted", "met"):
        targets.add_column(col)
    for target, measured, wanted, met in report.targets():
        targets.add_row(target, measured, wanted, "[green]yes[/]" if met else "[red]no[/]")
    console.print(targets)
    console.print(f"per-call overhead (timeit, 12 partitions): {over}")
    if report.paused is not None:
        try:
            path = bench_balance.plot_paused(report.paused, plot)
            console.print(f"plot of the paused scenario: {path}")
        except ImportError:
            diag.print("no plot: matplotlib is not installed (pip install 'kafkaops[bench]')")


# ---------------------------------------------------------------------- checkpoints (issue 5; driver: kafkaops/coord/measure.py)
@bench_app.command("checkpoint")
def checkpoint_command(
    rounds: Annotated[int, typer.Option("--rounds", "-n", help="saves (and bare transactions) to time")] = 1000,
    large_mb: Annotated[int, typer.Option(help="large-state size in MB (0: skip; ZooKeeper needs heap for it)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    zookeeper: ZookeeperOpt = None,
) -> None:
    """Checkpoint save p50/p99 vs a bare kazoo create+set transaction of the same size, and a
    large state's save + load vs bare chunk writes/reads (interleaved, same session)."""
    from kafkaops.coord import measure
    from kafkaops.coord.session import Coordinator

    hosts = (_zk_hosts(zookeeper, None) or "").split("/", 1)[0]
    with Coordinator(hosts) as coord:
        result: dict[str, Any] = {"save": measure.save_latency(coord, rounds=rounds)}
        if large_mb > 0:
            result["large"] = measure.large_state(coord, size=large_mb * 1024 * 1024)
    console = Console()
    if as_json:
        console.print_json(json.dumps(result))
        return
    save = result["save"]
    table = Table(title=f"checkpoint save vs bare create+set transaction ({save['znode_bytes']} B znode, "
                        f"{save['ours']['samples']} each, interleaved)")
    for col in ("contestant", "p50 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right" if col != "contestant" else "left")
    for m in (save["ours"], save["bare"]):
        table.add_row(m["name"], f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}", f"{m['max_ms']:.2f}")
    console.print(table)
    console.print(f"ratio p50 {save['ratio_p50']:.2f}x, p99 {save['ratio_p99']:.2f}x (target p99 <= 2x)")
    if "large" in result:
        med = result["large"]["median"]
        console.print(f"{large_mb} MB state: save {med['save_s']:.3f} s + load {med['load_s']:.3f} s = "
                      f"{med['total_s']:.3f} s (target <= 1 s); bare chunk writes + reads {med['bare_total_s']:.3f} s "
                      f"(ratio {result['large']['ratio_total']:.2f}x), median of {result['large']['rounds']}")
