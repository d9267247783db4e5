"""`kafkaops bench queues`: a share group member vs a consumer group member on the same topic.

Both read the same pre-produced records (JSON, decoded by the same codec) from the start,
one member each, a fresh group every round, measured from the first record to the last:
the consumer group commits offsets per partition, the share group acquires records and
acknowledges each one (accepted, sent in batches with the next fetch). Rounds interleave
(:func:`~kafkaops.apps.bench.timing.run_rounds`), so the ratio is measured side by side.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from kafkaops.apps.bench.timing import BenchReport, Measurement, bench_topic, now, run_rounds, spanned
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.waits import Deadline

PARTITIONS = 2


def produce_json(cluster: ClusterProfile | str, topic: str, count: int, *,
                 batch_records: int | None = None) -> set[tuple[int, int]]:
    """``count`` small JSON records ``{"n": i, ...}`` spread round robin over the partitions;
    returns their (partition, offset), every one acknowledged. ``batch_records`` caps the
    records of one producer batch (a share group acquires whole batches)."""
    from kafkaops.clients.partitioners import RoundRobin
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.serde.codec import JsonCodec

    config: dict[str, Any] = {"linger.ms": 5}
    if batch_records is not None:
        config["batch.num.messages"] = batch_records
    with TypedProducer(as_profile(cluster), topic, JsonCodec(), partitioner=RoundRobin(), config=config) as producer:
        futures = [producer.produce({"n": i, "task": f"task-{i:06d}"}) for i in range(count)]
        producer.flush(60)
        reports = [f.result(60) for f in futures]
    return {(r.partition, r.offset) for r in reports}


def consume_group(cluster: ClusterProfile, topic: str, count: int, timeout: float = 120.0) -> dict[str, Any]:
    """One TypedConsumer of a fresh consumer group reads ``count`` records from the start."""
    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.serde.codec import JsonCodec

    seen, first, deadline = 0, None, Deadline(timeout)
    with TypedConsumer(cluster, topic, f"bench-cg-{uuid.uuid4().hex[:8]}", JsonCodec(), dead_letter=False) as consumer:
        for _record in consumer:
            if first is None:
                first = now()
            seen += 1
            if seen >= count or deadline.expired:
                break
        end = now()
    return {"seen": seen, "first": first, "end": end}


def consume_share(cluster: ClusterProfile, topic: str, count: int, config: dict[str, Any] | None = None,
                  timeout: float = 120.0) -> dict[str, Any]:
    """One TypedShareConsumer of a fresh share group (starting at the earliest record) reads
    ``count`` records, accepting each (``for record in consumer``); ``config``: librdkafka overrides."""
    from kafkaops.clients.share_consumer import TypedShareConsumer
    from kafkaops.serde.codec import JsonCodec

    seen, first, deadline = 0, None, Deadline(timeout)
    with TypedShareConsumer(cluster, topic, f"bench-sg-{uuid.uuid4().hex[:8]}", JsonCodec(), dead_letter=False,
                            auto_offset_reset="earliest", config=config) as consumer:
        for _record in consumer:
            if first is None:
                first = now()
            seen += 1
            if seen >= count or deadline.expired:
                break
        end = now()
    return {"seen": seen, "first": first, "end": end}


def bench_queues(cluster: ClusterProfile | str, records: int = 50_000, rounds: int = 3,
                 topic: str | None = None) -> BenchReport:
    """Share group vs consumer group, one member each, over the same ``records`` records
    (on ``topic`` if given and already holding them, else a fresh topic of 2 partitions)."""
    profile = as_profile(cluster)
    if topic is None:
        topic = bench_topic(profile, PARTITIONS, prefix="bench-queues")
        produced = len(produce_json(profile, topic, records))
        if produced != records:
            raise RuntimeError(f"bench queues: only {produced} of {records} records acknowledged while preparing")

    import kafkaops.clients.consumer  # noqa: F401  (imports out of the first timed round)
    import kafkaops.clients.share_consumer  # noqa: F401

    contestants: dict[str, Callable[[], Measurement]] = {
        "consumer-group": lambda: spanned("consumer-group", records, consume_group, profile, topic, records),
        "share-group": lambda: spanned("share-group", records, consume_share, profile, topic, records),
        "share-group-wait500": lambda: spanned("share-group-wait500", records, consume_share, profile, topic, records,
                                               {"fetch.wait.max.ms": 500}),
    }
    report = BenchReport("queues", records, rounds, run_rounds(contestants, rounds))
    report.add_ratio("share-group", "consumer-group")
    report.add_ratio("share-group-wait500", "consumer-group")
    report.add_ratio("share-group", "share-group-wait500")
    report.add_cpu_ratio("share-group", "consumer-group")
    report.notes += [
        f"topic {topic}: {records} JSON records; each round a fresh group from the earliest record, one member",
        "measured from the first record to the last (client start-up and group join excluded)",
        "consumer-group: TypedConsumer, offsets committed per partition; share-group: TypedShareConsumer,"
        " every record acquired under a lock and accepted one by one (acknowledgements sent with the next fetch),"
        " fetch.wait.max.ms 100 (its default); share-group-wait500: the same with librdkafka's 500",
    ]
    return report
