"""The demo's typed orders: schema registry in ZooKeeper, TypedProducer (Avro, Confluent
wire format), a poison record dead-lettered, TypedConsumer decoding into dataclasses."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from kafkaops.admin import create_topic
from kafkaops.apps.demo.steps import DemoCluster, Step, replication
from kafkaops.waits import Deadline


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
    """The demo's typed order, mapped to and from the shipped schema ``order-v2``."""

    order_id: str
    customer_id: str
    created_at: datetime.datetime
    status: OrderStatus
    lines: list[OrderLine]
    total_cents: int
    currency: str = "EUR"
    coupon: str | None = None
    shipping_country: str = "DE"


def sample_orders(count: int) -> list[Order]:
    """``count`` orders of 50 customers, every tenth with a coupon."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return [
        Order(f"o-{i}", f"c-{i % 50}", now, OrderStatus.PLACED,
              [OrderLine(f"sku-{i % 7}", 1 + i % 3, 250)], (1 + i % 3) * 250, coupon="WELCOME" if i % 10 == 0 else None)
        for i in range(count)
    ]


def typed_order_steps(cluster: DemoCluster, messages: int = 1000, timeout: float = 90.0) -> Iterator[Step]:
    """Register order v1 and v2, produce typed orders plus one poison record, consume them back."""
    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.coord.session import Coordinator
    from kafkaops.resources import schema_path
    from kafkaops.serde.avro import AvroCodec, AvroSchema
    from kafkaops.serde.registry import SchemaRegistry

    profile = cluster.profile
    coord = Coordinator.shared(profile)
    try:
        registry = SchemaRegistry(coord)
        subject = "demo-orders-value"
        v1 = registry.register(subject, AvroSchema.load(schema_path("order-v1")))
        v2 = registry.register(subject, AvroSchema.load(schema_path("order-v2")))
        yield Step("schema registry", f"{subject}: v{v1.version} id {v1.id}, v{v2.version} id {v2.id} "
                   f"({registry.compatibility(subject).value}, in ZooKeeper under {coord.path('schemas')})")
        topic = f"demo-orders-{uuid.uuid4().hex[:6]}"
        create_topic(profile, topic, partitions=3, replication_factor=replication(cluster))
        codec = AvroCodec(v2.schema, v2.id, record_type=Order, registry=registry)
        orders = sample_orders(messages)
        with TypedProducer(profile, topic, codec) as producer:
            futures = [producer.produce(o, key=o.customer_id) for o in orders[: messages // 2]]
            producer.client.produce(topic, b'{"order_id": "not-avro"}', key=b"c-poison")  # a poison record
            futures += [producer.produce(o, key=o.customer_id) for o in orders[messages // 2:]]
        acked = sum(1 for f in futures if f.exception(0) is None)
        yield Step("typed produce", f"{acked} Order dataclasses as Avro (schema id {v2.id}, keyed by customer, "
                   f"acks=all) + 1 poison record to {topic}", acked == messages)
        consumer: TypedConsumer[Order] = TypedConsumer(profile, topic, f"demo-{uuid.uuid4().hex[:6]}", codec,
                                                       handle_sigterm=False)
        got: list[Order] = []
        deadline = Deadline(timeout)
        with consumer:
            while len(got) < messages and not deadline.expired:
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
