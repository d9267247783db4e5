"""`kafkaops produce` and `kafkaops consume`: Avro records in Confluent's wire format.

`produce` reads JSON lines on stdin (or generates samples) and registers the schema
first; `consume` prints JSON lines on stdout, diagnostics on stderr, and dead-letters
records it cannot decode.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.table import Table

from kafkaops.cli.common import Target, connection, coordinator, err, out
from kafkaops.cli.schema import load_schema
from kafkaops.config import ClusterProfile


def require_topic(cluster: ClusterProfile, topic: str) -> None:
    """AdminError naming the topic (and how to create it) when it does not exist."""
    from kafkaops.admin import AdminError, admin_client

    try:
        md = admin_client(cluster).list_topics(topic=topic, timeout=15)
    except Exception as exc:  # noqa: BLE001 - librdkafka's KafkaException: say which cluster
        raise AdminError(f"cannot read metadata from {cluster.bootstrap_servers}: {exc}") from None
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise AdminError(f"topic {topic} does not exist (create it: kafkaops topic create {topic})")


@connection()
def produce(
    topic: str,
    schema: Annotated[str, typer.Option("--schema", "-s", help="Avro schema of the values: an .avsc file or a shipped name (order-v2)")],
    generate: Annotated[int | None, typer.Option(help="produce N generated sample records instead of reading stdin")] = None,
    subject: Annotated[str | None, typer.Option(help="registry subject (default: TOPIC-value)")] = None,
    key_field: Annotated[str | None, typer.Option(help="use this field of each record as the key")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="partitioner: round-robin, random, least-loaded or key-hash (default: librdkafka's murmur2_random)"),
    ] = None,
    ignore_keys: Annotated[bool, typer.Option(help="apply --strategy to keyed records too (default: keys hash)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: records per partition")] = False,
    *,
    target: Target,
) -> None:
    """Produce Avro records (Confluent wire format): JSON lines on stdin, or --generate N."""
    from kafkaops.clients.partitioners import make_partitioner
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.serde.avro import AvroCodec
    from kafkaops.serde.codec import SerdeError
    from kafkaops.serde.registry import SchemaRegistry

    part = make_partitioner(strategy, ignore_keys=ignore_keys) if strategy else None  # a bad name fails early
    cluster = target.cluster()
    s = load_schema(schema)
    require_topic(cluster, topic)
    with coordinator(cluster.require_zookeeper("the schema registry")) as coord:
        reg = SchemaRegistry(coord).register(subject or f"{topic}-value", s)
    lines: Iterator[tuple[int, Any]]
    if generate is not None:
        from fastavro.utils import generate_many

        lines = ((i + 1, rec) for i, rec in enumerate(generate_many(s.parsed, generate)))
    else:
        lines = ((n, line) for n, line in enumerate(sys.stdin, 1) if line.strip())
    per_partition: dict[int, int] = {}  # from delivery reports

    def delivered(error: Any, report: Any) -> None:
        if report is not None:
            per_partition[report.partition] = per_partition.get(report.partition, 0) + 1

    producer: TypedProducer[Any] = TypedProducer(cluster, topic, AvroCodec(s, reg.id), partitioner=part)
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
    """Records per partition as delivered."""
    total = sum(per_partition.values()) or 1
    table = Table(title=f"{topic}: records per partition ({strategy})")
    for col in ("partition", "records", "share"):
        table.add_column(col, justify="right")
    for p in sorted(per_partition):
        table.add_row(str(p), str(per_partition[p]), f"{per_partition[p] / total:.1%}")
    out.print(table)


@connection()
def consume(
    topic: str,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="consumer group id (pub-sub: every group gets every record)"),
    ] = None,
    share_group: Annotated[
        str | None,
        typer.Option("--share-group", help="share group (a queue: members split the records; Kafka 4.2+)"),
    ] = None,
    max_records: Annotated[int | None, typer.Option("--max", "-n", help="stop after N records")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="stop after this many seconds without a record")] = None,
    value_format: Annotated[str, typer.Option("--format", help="avro (Confluent wire format), json or bytes")] = "avro",
    *,
    target: Target,
) -> None:
    """Print records as JSON lines on stdout (topic, partition, offset, timestamp, key, value; with
    --share-group also delivery_count). Poison records go to TOPIC.dlq (a share group's after their
    last delivery); diagnostics go to stderr. Stops on SIGTERM."""
    from kafkaops.serde.codec import to_jsonable

    if value_format not in ("avro", "json", "bytes"):
        raise typer.BadParameter(f"--format: avro, json or bytes, not {value_format!r}")
    if (group is None) == (share_group is None):
        raise typer.BadParameter("give one of --group (a consumer group) or --share-group (a share group)")
    cluster = target.cluster()
    require_topic(cluster, topic)
    with contextlib.ExitStack() as stack:
        codec = _value_codec(stack, cluster, value_format)
        consumer = stack.enter_context(_consumer(cluster, topic, group, share_group, codec, max_records))
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
            doc = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                   "timestamp": rec.timestamp, "key": _text_or_bytes(rec.key), "value": rec.value}
            if share_group is not None:
                doc["delivery_count"] = rec.delivery_count
            sys.stdout.write(json.dumps(to_jsonable(doc)) + "\n")
            sys.stdout.flush()
    if share_group is not None:
        st = consumer.stats
        err.print(f"{seen} record(s) from {topic} in share group {share_group}: {st.accepted} accepted, "
                  f"{st.released} released, {st.dead_lettered} dead-lettered", highlight=False)
    else:
        err.print(f"{seen} record(s) from {topic}, {consumer.dead_lettered} dead-lettered", highlight=False)


def _value_codec(stack: contextlib.ExitStack, cluster: ClusterProfile, value_format: str) -> Any:
    """The codec of ``--format``: Avro through the schema registry in ZooKeeper, JSON or raw bytes."""
    from kafkaops.serde.codec import BytesCodec, JsonCodec

    if value_format == "avro":
        from kafkaops.serde.avro import AvroCodec
        from kafkaops.serde.registry import SchemaRegistry

        coord = stack.enter_context(coordinator(cluster.require_zookeeper("the schema registry")))
        return AvroCodec(registry=SchemaRegistry(coord))
    return JsonCodec() if value_format == "json" else BytesCodec()


def _consumer(cluster: ClusterProfile, topic: str, group: str | None, share_group: str | None, codec: Any,
              max_records: int | None) -> Any:
    """A TypedConsumer of ``group``, or a TypedShareConsumer of ``share_group`` (a new share group
    starts at the earliest record, as a new consumer group does here; --max caps its fetches)."""
    if share_group is not None:
        from kafkaops.clients.share_consumer import TypedShareConsumer

        config = {"max.poll.records": min(max_records, 500)} if max_records else None
        return TypedShareConsumer(cluster, topic, share_group, codec, handle_sigterm=True,
                                  auto_offset_reset="earliest", config=config)
    from kafkaops.clients.consumer import TypedConsumer

    return TypedConsumer(cluster, topic, group or "", codec, handle_sigterm=True)


def _text_or_bytes(key: bytes | None) -> Any:
    """A record key for JSON output: text when it is UTF-8, else bytes (shown base64)."""
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return key
