"""Schema registry in the session cluster's ZooKeeper, and Avro round trips through Kafka."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastavro.utils import generate_many

from kafkaops.clients.consumer import TypedConsumer
from kafkaops.clients.producer import TypedProducer
from kafkaops.coord.session import Coordinator, CoordinatorError
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.avro import AvroCodec, AvroSchema
from kafkaops.serde.codec import BytesCodec, UnknownSchemaIdError
from kafkaops.serde.compatibility import Compatibility
from kafkaops.serde.registry import DEFAULT_ROOT, IncompatibleSchemaError, SchemaRegistry, SubjectNotFoundError
from kafkaops.testing.plugin import TopicFactory

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = sorted((ROOT / "schemas").glob("*.avsc"))


@pytest.fixture
def coordinator(kafka_cluster: LocalCluster) -> Iterator[Coordinator]:
    """A session under a root of this test's own, so schema ids start at 1 and tests stay apart."""
    with Coordinator(kafka_cluster.profile, root=f"/kafkaops-test/{uuid.uuid4().hex[:8]}") as coord:
        yield coord


@pytest.fixture
def registry(coordinator: Coordinator) -> SchemaRegistry:
    return SchemaRegistry(coordinator)


def test_register_versions_dedup_and_lookups(registry: SchemaRegistry, kafka_cluster: LocalCluster) -> None:
    v1, v2 = AvroSchema.load(ROOT / "schemas/order-v1.avsc"), AvroSchema.load(ROOT / "schemas/order-v2.avsc")
    r1 = registry.register("orders-value", v1)
    assert (r1.version, r1.id) == (1, 1)
    assert registry.register("orders-value", v1) == r1  # same schema twice: same version, same id
    r2 = registry.register("orders-value", v2)
    assert (r2.version, r2.id) == (2, 2)
    other = registry.register("orders-copy-value", v1)  # same schema, other subject: same global id
    assert (other.version, other.id) == (1, 1)
    assert registry.subjects() == ["orders-copy-value", "orders-value"]
    assert registry.versions("orders-value") == [1, 2]
    assert registry.get("orders-value").id == 2
    assert registry.get("orders-value", 1).schema == v1
    assert registry.lookup("orders-value", v2) == r2
    # a fresh registry on the same znodes (no cache), in another session, sees the same
    other_session = Coordinator(kafka_cluster.profile, root=registry.coordinator.root).start()
    fresh = SchemaRegistry(other_session)
    assert fresh.root == registry.root == f"{registry.coordinator.root}/schemas"
    assert fresh.schema_by_id(2).canonical == v2.canonical
    assert fresh.schema_by_id(2).source == v2.source  # defaults and docs kept, not just the canonical form
    with pytest.raises(UnknownSchemaIdError):
        fresh.schema_by_id(3)
    with pytest.raises(SubjectNotFoundError):
        fresh.get("nope")
    with pytest.raises(SubjectNotFoundError):
        fresh.get("orders-value", 7)
    other_session.stop()


def test_incompatible_registration_is_refused_naming_the_field(registry: SchemaRegistry) -> None:
    registry.register("orders-value", AvroSchema.load(ROOT / "schemas/order-v2.avsc"))
    bad = AvroSchema.load(ROOT / "tests/fixtures/schemas/order-v3-incompatible.avsc")
    check = registry.check("orders-value", bad)
    assert not check.compatible and check.mode is Compatibility.BACKWARD
    with pytest.raises(IncompatibleSchemaError, match=r"Order\.warehouse_id"):
        registry.register("orders-value", bad)
    assert registry.versions("orders-value") == [1]
    # trade v2 is BACKWARD- but not FORWARD-compatible: the subject's mode decides
    registry.register("trades-value", AvroSchema.load(ROOT / "schemas/trade-v1.avsc"))
    registry.set_compatibility("FORWARD", "trades-value")
    assert registry.compatibility("trades-value") is Compatibility.FORWARD
    with pytest.raises(IncompatibleSchemaError, match=r"Trade\.quantity"):
        registry.register("trades-value", AvroSchema.load(ROOT / "schemas/trade-v2.avsc"))
    registry.set_compatibility(Compatibility.NONE, "orders-value")
    assert registry.register("orders-value", bad).version == 2


def test_concurrent_registration_gives_unique_stable_ids(registry: SchemaRegistry, kafka_cluster: LocalCluster) -> None:
    """8 threads, each with its own ZooKeeper session, register 4 distinct schemas (all into
    their own subject and all into one shared subject) at the same time."""
    schemas = [
        AvroSchema.parse({"type": "record", "name": f"R{i}", "fields": [{"name": "f", "type": "int"}]})
        for i in range(4)
    ]
    results: list[tuple[int, str, int, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    lock = threading.Lock()

    def worker(n: int) -> None:
        coord = Coordinator(kafka_cluster.profile, root=registry.coordinator.root).start()
        try:
            reg = SchemaRegistry(coord, default_compatibility="NONE")
            barrier.wait(timeout=30)
            for i in range(4):
                s = schemas[(i + n) % 4]
                for subject in (f"own-{(i + n) % 4}", "shared"):
                    r = reg.register(subject, s)
                    with lock:
                        results.append(((i + n) % 4, r.subject, r.version, r.id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            coord.stop()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    ids = {}
    for schema_idx, _subject, _version, sid in results:
        assert ids.setdefault(schema_idx, sid) == sid, "one schema got two ids"
    assert len(set(ids.values())) == 4, "two schemas share an id"
    shared = {(r[0], r[2]) for r in results if r[1] == "shared"}
    assert sorted(v for _, v in shared) == [1, 2, 3, 4]  # each schema exactly one version in the shared subject
    assert registry.versions("shared") == [1, 2, 3, 4]
    assert {registry.get("shared", v).id for v in (1, 2, 3, 4)} == set(ids.values())


def test_default_root_layout(kafka_cluster: LocalCluster) -> None:
    coord = Coordinator.shared(kafka_cluster.profile)
    try:
        reg = SchemaRegistry(coord)
        assert reg.root == DEFAULT_ROOT == "/kafkaops/schemas"  # where it was before the Coordinator owned it
        subject = f"layout-{uuid.uuid4().hex[:6]}-value"
        r = reg.register(subject, AvroSchema.load(ROOT / "schemas/payment-v1.avsc"))
        zk = coord.client
        assert zk.exists(f"{DEFAULT_ROOT}/subjects/{subject}/versions/{1:010d}")
        assert zk.exists(f"{DEFAULT_ROOT}/ids/id-{r.id - 1:010d}")
        reg.delete_subject(subject)
        assert subject not in reg.subjects()
        assert reg.schema_by_id(r.id).name == "io.kafkaops.shop.Payment"  # ids outlive their subjects
    finally:
        coord.stop()


def test_registry_wide_compatibility_and_an_unreachable_zookeeper(registry: SchemaRegistry) -> None:
    assert registry.compatibility() is Compatibility.BACKWARD  # the constructor default
    registry.set_compatibility("FULL")  # no config znode yet: created
    assert registry.compatibility() is Compatibility.FULL
    assert registry.compatibility("no-such-subject") is Compatibility.FULL
    stopped = Coordinator(registry.coordinator.hosts, root=registry.coordinator.root)
    with pytest.raises(CoordinatorError, match="not started"):
        SchemaRegistry(stopped).subjects()


def test_every_schema_round_trips_through_kafka(
    registry: SchemaRegistry, kafka_cluster: LocalCluster, kafka_topic: TopicFactory
) -> None:
    """Each shipped schema: generated records produced with TypedProducer, consumed with
    TypedConsumer through a generic (registry-driven) codec; bytes and values identical."""
    topic = kafka_topic(partitions=1, prefix="serde-rt")
    sent: list[tuple[int, dict[str, Any], bytes]] = []
    for path in SCHEMAS:
        s = AvroSchema.load(path)
        reg = registry.register(f"{path.stem}-value", s)
        codec: AvroCodec[dict[str, Any]] = AvroCodec(s, reg.id)
        with TypedProducer(kafka_cluster.profile, topic, codec) as producer:
            for rec in generate_many(s.parsed, 5):
                producer.produce(rec).result(30)
                sent.append((reg.id, rec, codec.encode(rec)))
    raw: TypedConsumer[bytes] = TypedConsumer(
        kafka_cluster.profile, topic, f"g-{uuid.uuid4().hex[:6]}", BytesCodec()
    )
    generic: AvroCodec[dict[str, Any]] = AvroCodec(registry=registry)
    got: list[bytes] = []
    with raw:
        while len(got) < len(sent):
            rec = raw.poll(30)
            assert rec is not None, f"only {len(got)} of {len(sent)} records came back"
            got.append(rec.value)
    assert got == [b for _, _, b in sent]
    for (sid, _rec, data), back in zip(sent, got, strict=True):
        value = generic.decode(back)
        assert AvroCodec(registry.schema_by_id(sid), sid).encode(value) == data
