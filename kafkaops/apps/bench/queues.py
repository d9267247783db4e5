"""`kafkaops bench queues`: a share group member vs a consumer group member on the same topic.

Both read the same pre-produced records (JSON, decoded by the same codec) from the start,
one member each, a fresh group every round, measured from the first record to the last:
the consumer group commits offsets per partition, the share group acquires records and
acknowledges each one (accepted, sent in batches with the next fetch). Rounds interleave
(:func:`~kafkaops.apps.bench.timing.run_rounds`), so the ratio is measured side by side.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from kafkaops.apps.bench.timing import BenchReport, Measurement, bench_topic, now, run_rounds, spanned
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.waits import Deadline

PARTITIONS = 2


def produce_json(cluster: ClusterProfile | str, topic: str, count: int, *, batch_records: int | None = None,
                 key: str | None = None) -> set[tuple[int, int]]:
    """``count`` small JSON records ``{"n": i, ...}`` spread round robin over the partitions (or
    all with ``key``, in its partition); returns their (partition, offset), every one
    acknowledged. ``batch_records`` caps a producer batch (a share group acquires whole batches)."""
    from kafkaops.clients.partitioners import RoundRobin
    from kafkaops.clients.producer import TypedProducer
    from kafkaops.serde.codec import JsonCodec

    config: dict[str, Any] = {"linger.ms": 5}
    if batch_records is not None:
        config["batch.num.messages"] = batch_records
    partitioner = RoundRobin() if key is None else None
    with TypedProducer(as_profile(cluster), topic, JsonCodec(), partitioner=partitioner, config=config) as producer:
        futures = [producer.produce({"n": i, "task": f"task-{i:06d}"}, key=key) for i in range(count)]
        producer.flush(60)
        reports = [f.result(60) for f in futures]
    return {(r.partition, r.offset) for r in reports}


def consume_group(cluster: ClusterProfile, topic: str, count: int, timeout: float = 120.0) -> dict[str, Any]:
    """One TypedConsumer of a fresh consumer group reads ``count`` records from the start."""
    from kafkaops.clients.consumer import TypedConsumer
    from kafkaops.serde.codec import JsonCodec

    with TypedConsumer(cluster, topic, f"bench-cg-{uuid.uuid4().hex[:8]}", JsonCodec(), dead_letter=False) as consumer:
        return _read(consumer, count, timeout)


def consume_share(cluster: ClusterProfile, topic: str, count: int, config: dict[str, Any] | None = None,
                  timeout: float = 120.0) -> dict[str, Any]:
    """One TypedShareConsumer of a fresh share group (starting at the earliest record) reads
    ``count`` records, accepting each (``for record in consumer``); ``config``: librdkafka overrides."""
    from kafkaops.clients.share_consumer import TypedShareConsumer
    from kafkaops.serde.codec import JsonCodec

    with TypedShareConsumer(cluster, topic, f"bench-sg-{uuid.uuid4().hex[:8]}", JsonCodec(), dead_letter=False,
                            auto_offset_reset="earliest", config=config) as consumer:
        return _read(consumer, count, timeout)


def _read(records: Iterable[Any], count: int, timeout: float) -> dict[str, Any]:
    """Iterate until ``count`` records (or ``timeout``): the span from the first to the last, for ``spanned``."""
    seen, first, deadline = 0, None, Deadline(timeout)
    for _record in records:
        if first is None:
            first = now()
        seen += 1
        if seen >= count or deadline.expired:
            break
    return {"seen": seen, "first": first, "end": now()}


def bench_queues(cluster: ClusterProfile | str, records: int = 50_000, rounds: int = 3,
                 skewed_records: int = 10_000) -> BenchReport:
    """Share group vs consumer group, one member each, over the same ``records`` records on a
    fresh topic of 2 partitions. With ``skewed_records``, also the share consumer's
    ``fetch.wait.max.ms`` (100, its default, vs librdkafka's 500) on a topic whose records all
    sit in one partition (one hot key), the other partition's leader having nothing to give."""
    profile = as_profile(cluster)
    topic = _filled_topic(profile, "bench-queues", records)
    import kafkaops.clients.consumer  # noqa: F401  (imports out of the first timed round)
    import kafkaops.clients.share_consumer  # noqa: F401

    contestants: dict[str, Callable[[], Measurement]] = {
        "consumer-group": lambda: spanned("consumer-group", records, consume_group, profile, topic, records),
        "share-group": lambda: spanned("share-group", records, consume_share, profile, topic, records),
    }
    report = BenchReport("queues", records, rounds, run_rounds(contestants, rounds))
    report.add_ratio("share-group", "consumer-group")
    report.add_cpu_ratio("share-group", "consumer-group")
    report.notes += [
        f"topic {topic}: {records} JSON records over {PARTITIONS} partitions; each round a fresh group from the"
        " earliest record, one member, measured from the first record to the last (start-up and join excluded)",
        "consumer-group: TypedConsumer, offsets committed per partition; share-group: TypedShareConsumer,"
        " every record acquired under a lock and accepted one by one (acknowledgements sent with the next fetch)",
    ]
    if skewed_records > 0:
        skewed = _filled_topic(profile, "bench-queues-skewed", skewed_records, key="hot")
        wait = {
            "share-skewed": lambda: spanned("share-skewed", skewed_records, consume_share, profile, skewed,
                                            skewed_records),
            "share-skewed-wait500": lambda: spanned("share-skewed-wait500", skewed_records, consume_share, profile,
                                                    skewed, skewed_records, {"fetch.wait.max.ms": 500}),
        }
        report.measurements += run_rounds(wait, rounds)
        report.add_ratio("share-skewed", "share-skewed-wait500")
        report.notes.append(
            f"topic {skewed}: {skewed_records} records all in one partition; share-skewed: fetch.wait.max.ms 100"
            " (TypedShareConsumer's default), share-skewed-wait500: librdkafka's 500 (each poll waits for the"
            " empty partition's leader)")
    return report


def _filled_topic(profile: ClusterProfile, prefix: str, records: int, key: str | None = None) -> str:
    topic = bench_topic(profile, PARTITIONS, prefix=prefix)
    produced = len(produce_json(profile, topic, records, batch_records=500, key=key))
    if produced != records:
        raise RuntimeError(f"bench queues: only {produced} of {records} records acknowledged while preparing")
    return topic
