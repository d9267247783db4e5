"""The end-to-end demo `kafkaops demo` runs against a local cluster.

Each step is a generator item (title, detail) so the CLI can render progress while
the library itself prints nothing. Later parts of kafkaops add their steps here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer

from kafkaops.admin import admin_client, create_topic
from kafkaops.errors import KafkaopsError
from kafkaops.local.cluster import LocalCluster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    title: str
    detail: str
    ok: bool = True


def round_trip(bootstrap_servers: str, topic: str, count: int, tag: str, timeout: float = 60.0) -> tuple[int, int]:
    """Produce ``count`` records with acks=all and read them back; (acked, read back)."""
    acked = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal acked
        if err is None:
            acked += 1

    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "acks": "all", "enable.idempotence": True, "logger": log}
    )
    for i in range(count):
        producer.produce(topic, value=f"{tag}-{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    producer.flush(timeout)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"demo-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "logger": log,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < acked and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if (msg.value() or b"").decode().startswith(f"{tag}-"):
                seen += 1
    finally:
        consumer.close()
    return acked, seen


def partition_leader(bootstrap_servers: str, topic: str, partition: int = 0) -> int:
    md = admin_client(bootstrap_servers).list_topics(topic=topic, timeout=10)
    return int(md.topics[topic].partitions[partition].leader)


def run(cluster: LocalCluster, messages: int = 1000) -> Iterator[Step]:
    """Create a topic, round trip, kill a leader, round trip again, restart it."""
    bootstrap = cluster.bootstrap_servers
    topic = f"demo-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions=3, replication_factor=min(3, len(cluster.brokers)))
    yield Step("create topic", f"{topic}: 3 partitions, replication factor 3, min.insync.replicas 2")
    acked, seen = round_trip(bootstrap, topic, messages, "before")
    yield Step("round trip", f"{acked} acknowledged (acks=all), {seen} read back", acked == seen == messages)
    victim = partition_leader(bootstrap, topic)
    cluster.kill_broker(victim)
    yield Step("kill broker", f"SIGKILL broker {victim}, leader of {topic}[0]")
    acked, seen = round_trip(bootstrap, topic, messages, "after")
    yield Step(
        "round trip, one broker dead",
        f"{acked} acknowledged, {seen} read back; leader of {topic}[0] is now broker "
        f"{partition_leader(bootstrap, topic)}",
        acked == seen == messages,
    )
    cluster.start_broker(victim)
    yield Step("restart broker", f"broker {victim} is back with the same id and data")
    yield from typed_order_steps(cluster, messages)  # issue 3
    yield from monitor_steps(cluster)  # issue 6
    yield from checkpoint_steps(cluster, messages)  # issue 5
    yield from playbook_steps(cluster)  # issue 7


# ---- coordinator & checkpoints (issue 5) ---------------------------------
def checkpoint_steps(cluster: LocalCluster, messages: int = 1000) -> Iterator[Step]:
    """The order consumer (``kafkaops demo aggregate``: orders counted per customer) is
    SIGKILLed mid-stream and restarted; it resumes from its ZooKeeper checkpoint and
    its counts equal the orders produced exactly."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import threading
    from collections import Counter
    from pathlib import Path

    from kafkaops.coord.checkpoints import CheckpointStore
    from kafkaops.coord.session import Coordinator

    bootstrap = cluster.bootstrap_servers
    topic = f"demo-orders-{uuid.uuid4().hex[:6]}"
    job = f"demo-{topic}"
    create_topic(bootstrap, topic, partitions=3, replication_factor=min(3, len(cluster.brokers)))
    total = max(2 * messages, 2000)
    truth: Counter[str] = Counter()
    workdir = Path(tempfile.mkdtemp(prefix="kafkaops-demo-"))
    output = workdir / "orders-per-customer.json"

    def produce_orders() -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "logger": log})
        for i in range(total):
            customer = f"customer-{(i * 7919) % 13:02d}"
            producer.produce(topic, key=customer.encode(), value=f'{{"order": {i}}}'.encode())
            truth[customer] += 1
            if i % 100 == 99:
                producer.poll(0)
                time.sleep(0.02)  # a steady stream, so the kill lands mid-stream
        producer.flush(60)

    def aggregate(idle_exit: float | None) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "kafkaops.cli", "demo", "aggregate", "--topic", topic, "--job", job,
               "--output", str(output), "--every-records", "200", "--every-seconds", "1",
               "-b", bootstrap, "-z", cluster.zk_hosts]
        if idle_exit is not None:
            cmd += ["--idle-exit", str(idle_exit)]
        with (workdir / "aggregate.log").open("ab") as logf:
            return subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=dict(os.environ))

    coord = Coordinator(cluster.zk_hosts).start()
    store = CheckpointStore(coord)
    try:
        producer = threading.Thread(target=produce_orders, daemon=True)
        producer.start()
        proc = aggregate(None)
        deadline = time.monotonic() + 60
        first = None
        while time.monotonic() < deadline and proc.poll() is None:
            first = store.latest(job)
            if first is not None and sum(first.offsets.values()) > 0:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if first is None:
            yield Step("order consumer checkpoints", f"no checkpoint within 60s; see {workdir}/aggregate.log", False)
            return
        killed_at = store.latest(job)
        assert killed_at is not None
        yield Step("order consumer checkpoints",
                   f"`kafkaops demo aggregate` counts orders per customer on {topic}; checkpoint "
                   f"{first.id} in ZooKeeper: offsets + counts, one fenced transaction")
        yield Step("kill order consumer",
                   f"SIGKILL mid-stream; last checkpoint {killed_at.id} covers "
                   f"{sum(killed_at.offsets.values())} of {total} orders (epoch {killed_at.epoch})")
        producer.join(120)
        proc = aggregate(idle_exit=3.0)
        rc = proc.wait(180)
        counts = json.loads(output.read_text()) if output.exists() else {}
        latest = store.latest(job)
        exact = rc == 0 and counts == dict(truth)
        yield Step("order consumer resumes",
                   f"restarted from {killed_at.id}, epoch {latest.epoch if latest else '?'}; "
                   f"{sum(counts.values())} orders counted over {len(counts)} customers vs {sum(truth.values())} "
                   f"produced: {'exact, nothing lost or counted twice' if exact else 'MISMATCH'}",
                   exact)
        store.delete_job(job)
    finally:
        coord.stop()
# ---- end coordinator & checkpoints (issue 5) -----------------------------


class DemoFailed(KafkaopsError):
    """A demo step did not reach its expected outcome."""


# ---- replica monitor (issue 6) -------------------------------------------
def monitor_steps(cluster: LocalCluster, timeout: float = 120.0) -> Iterator[Step]:
    """The replica monitor sees a broker SIGKILLed and its recovery; preferred leaders return."""
    from kafkaops.ops.events import BrokerDown, Event, Recovered, UnderReplicated
    from kafkaops.ops.failover import FailoverPolicy
    from kafkaops.ops.monitor import MonitorError, ReplicaMonitor

    bootstrap = cluster.bootstrap_servers
    topic = f"demo-mon-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions=3, replication_factor=min(3, len(cluster.brokers)))
    mon = ReplicaMonitor(bootstrap, cluster.zk_connect).start()
    seen: list[Event] = []
    mon.subscribe(seen.append)
    policy = FailoverPolicy(mon, bootstrap, grace=3600).start()  # elects preferred leaders on return
    try:
        h = mon.wait_for(lambda h: h.counts.under_replicated == 0, timeout)
        yield Step(
            "replica monitor",
            f"watching {len(h.live_brokers)} brokers (controller {h.controller_id}) and {h.counts.total} partitions "
            f"through ZooKeeper watches and Admin API polls; {h.counts.under_replicated} under-replicated",
        )
        victim = max(b for b in h.live_brokers if b != h.controller_id)
        killed = time.time()
        cluster.kill_broker(victim)
        try:
            h = mon.wait_for(
                lambda h: victim in h.dead_brokers and h.counts.under_replicated >= len(h.replicas_on(victim)), timeout
            )
            down = next(e for e in list(seen) if isinstance(e, BrokerDown) and e.broker == victim)
            urp = sum(1 for e in list(seen) if isinstance(e, UnderReplicated))
            yield Step(
                "monitor: broker killed",
                f"SIGKILL broker {victim}: BrokerDown after {down.timestamp - killed:.1f}s (seen by {down.source}), "
                f"{urp} UnderReplicated events, {h.counts.under_replicated} partitions under-replicated now",
            )
        except MonitorError as exc:
            yield Step("monitor: broker killed", str(exc), ok=False)
        finally:
            cluster.start_broker(victim)
        t0 = time.time()
        try:
            h = mon.wait_for(
                lambda h: h.counts.under_replicated == 0
                and all(p.leader == victim for p in h.partitions.values() if p.preferred_leader == victim),
                timeout,
            )
            recovered = sum(1 for e in list(seen) if isinstance(e, Recovered))
            deadline = time.monotonic() + 10  # the policy records its election once the call returns
            while not (elections := [a for a in policy.actions if a.what == "elect_preferred_leaders" and a.ok]):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            yield Step(
                "monitor: broker recovered",
                f"BrokerUp {victim}, {recovered} partitions Recovered {time.time() - t0:.1f}s after restart; "
                f"0 under-replicated; broker {victim} leads its preferred partitions again "
                f"({len(elections)} preferred leader election(s) by the failover policy)",
            )
        except MonitorError as exc:
            yield Step("monitor: broker recovered", str(exc), ok=False)
    finally:
        policy.stop()
        mon.stop()
# ---- end replica monitor (issue 6) ---------------------------------------


# ---- playbooks (issue 7) -------------------------------------------------
def playbook_steps(cluster: LocalCluster, partitions: int = 6, timeout: float = 300.0) -> Iterator[Step]:
    """Run the shipped expand-partitions playbook: validated plan, locked run, a Step per playbook step."""
    import queue
    import threading

    from kafkaops.config import Settings
    from kafkaops.coord.session import Coordinator
    from kafkaops.ops import playbooks as pbs
    from kafkaops.ops.actions import ActionContext, wait_for_health
    from kafkaops.ops.brokers import LocalBrokerControl

    bootstrap = cluster.bootstrap_servers
    topic = f"demo-expand-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions=3, replication_factor=min(3, len(cluster.brokers)))
    coord = Coordinator(cluster.zk_hosts).start()
    try:
        ctx = ActionContext(bootstrap, LocalBrokerControl(cluster), coord, assume_yes=True)
        wait_for_health(ctx, timeout)
        pb = pbs.load(pbs.find("expand-partitions"))
        plan = pbs.make_plan(pb, {"topic": topic, "partitions": str(partitions)}, pbs.cluster_facts(bootstrap))
        yield Step("playbook: plan", f"{pb.name} validated, {len(plan.steps)} steps: " + "; ".join(s.name for s in plan.steps))
        events: queue.Queue[pbs.RunEvent | BaseException | None] = queue.Queue()
        audit = Settings.from_env().home / "audit" / "playbooks.jsonl"
        runner = pbs.PlaybookRunner(ctx, coord.client, root=coord.root, audit_file=audit, on_event=events.put)
        result: list[pbs.RunResult] = []

        def work() -> None:
            try:
                result.append(runner.run(plan))
                events.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the generator
                events.put(exc)

        threading.Thread(target=work, name="demo-playbook", daemon=True).start()
        while (e := events.get(timeout=timeout)) is not None:
            if isinstance(e, BaseException):
                yield Step("playbook: run", str(e), ok=False)
                return
            if e.kind == "done" and e.step is not None:
                yield Step(f"playbook: step {e.step.index}/{e.total}", f"{e.step.name}: {e.message}")
        have = len(admin_client(bootstrap).list_topics(topic=topic, timeout=10).topics[topic].partitions)
        trail = runner.audit_trail(result[0].run_id)
        done = sum(r["event"] == "succeeded" for r in trail)
        yield Step(
            "playbook: finished",
            f"{topic} has {have} partitions; run {result[0].run_id}: {done} steps audited in ZooKeeper and {audit}",
            have == partitions and done == len(plan.steps),
        )
    finally:
        coord.stop()
# ---- end playbooks (issue 7) ---------------------------------------------


# ---- serde & clients (issue 3) -------------------------------------------
import datetime  # noqa: E402
import enum  # noqa: E402
from pathlib import Path  # noqa: E402


class OrderStatus(enum.Enum):
    """The demo order's status (Avro enum ``io.kafkaops.shop.OrderStatus``)."""

    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


@dataclass
class OrderLine:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass
class Order:
    """The demo's typed order, mapped to and from ``schemas/order-v2.avsc``."""

    order_id: str
    customer_id: str
    created_at: datetime.datetime
    status: OrderStatus
    lines: list[OrderLine]
    total_cents: int
    currency: str = "EUR"
    coupon: str | None = None
    shipping_country: str = "DE"


def typed_order_steps(cluster: LocalCluster, messages: int = 1000, timeout: float = 90.0) -> Iterator[Step]:
    """Typed orders: schema registry in ZooKeeper, TypedProducer (Avro, Confluent wire format),
    a poison record dead-lettered, TypedConsumer decoding into dataclasses."""
    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.serde.avro import AvroCodec, AvroSchema
    from kafkaops.serde.registry import SchemaRegistry
    from kafkaops.coord.session import Coordinator

    from kafkaops.resources import schema_path

    bootstrap = cluster.bootstrap_servers
    coord = Coordinator(cluster.profile).start()
    try:
        registry = SchemaRegistry(coord)
        subject = "demo-orders-value"
        v1 = registry.register(subject, AvroSchema.load(schema_path("order-v1")))
        v2 = registry.register(subject, AvroSchema.load(schema_path("order-v2")))
        yield Step("schema registry", f"{subject}: v{v1.version} id {v1.id}, v{v2.version} id {v2.id} "
                   f"({registry.compatibility(subject).value}, in ZooKeeper under {registry.root})")
        topic = f"demo-orders-{uuid.uuid4().hex[:6]}"
        create_topic(bootstrap, topic, partitions=3, replication_factor=min(3, len(cluster.brokers)))
        codec = AvroCodec(v2.schema, v2.id, record_type=Order, registry=registry)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        orders = [
            Order(f"o-{i}", f"c-{i % 50}", now, OrderStatus.PLACED,
                  [OrderLine(f"sku-{i % 7}", 1 + i % 3, 250)], (1 + i % 3) * 250, coupon="WELCOME" if i % 10 == 0 else None)
            for i in range(messages)
        ]
        with TypedProducer(bootstrap, topic, codec) as producer:
            futures = [producer.produce(o, key=o.customer_id) for o in orders[: messages // 2]]
            producer.client.produce(topic, b'{"order_id": "not-avro"}', key=b"c-poison")  # a poison record
            futures += [producer.produce(o, key=o.customer_id) for o in orders[messages // 2:]]
        acked = sum(1 for f in futures if f.exception(0) is None)
        yield Step("typed produce", f"{acked} Order dataclasses as Avro (schema id {v2.id}, keyed by customer, "
                   f"acks=all) + 1 poison record to {topic}", acked == messages)
        consumer: TypedConsumer[Order] = TypedConsumer(bootstrap, topic, f"demo-{uuid.uuid4().hex[:6]}", codec,
                                                       handle_sigterm=False)
        got: list[Order] = []
        deadline = time.monotonic() + timeout
        with consumer:
            while len(got) < messages and time.monotonic() < deadline:
                rec = consumer.poll(1.0)
                if rec is not None:
                    got.append(rec.value)
            consumer.ack()
        same = sorted(got, key=lambda o: o.order_id) == sorted(orders, key=lambda o: o.order_id)
        yield Step("typed consume", f"{len(got)} Orders decoded, identical to those sent: {same}; "
                   f"revenue {sum(o.total_cents for o in got) / 100:.2f} EUR", same and len(got) == messages)
        yield Step("dead-letter queue", f"{consumer.dead_lettered} poison record sent to {topic}.dlq with its error "
                   "and source headers; consumption went on", consumer.dead_lettered == 1)
    finally:
        coord.stop()
# ---- end serde & clients (issue 3) ---------------------------------------
