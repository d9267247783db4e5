"""KeyHash against librdkafka's own murmur2 partitioners, compared in the brokers' delivery reports."""

from __future__ import annotations

import logging
import random
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from kafkaops.clients.partitioners import KeyHash
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until

log = logging.getLogger(__name__)
PARTITIONS = 7  # prime: a wrong modulo or sign handling shows at once


def random_keys(n: int, seed: int = 20261127) -> list[bytes]:
    rng = random.Random(seed)
    alphabet = "aZ09-_:/ éüßøçñ漢字かなкириллицаعربي😀🚀\u0000"
    keys: list[bytes] = [b""] * 50  # empty keys are hashed, not randomised
    while len(keys) < n:
        kind = rng.random()
        if kind < 0.4:
            keys.append(rng.randbytes(rng.randint(1, 64)))
        elif kind < 0.8:
            keys.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))).encode("utf-8"))
        else:
            keys.append(f"order-{rng.randint(0, 10**9)}".encode())
    rng.shuffle(keys)
    return keys


def delivered_partitions(bootstrap: str, topic: str, keys: list[bytes], partitioner: str, ours: KeyHash | None) -> list[int]:
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "logger": log,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 20,
        "partitioner": partitioner,
    }
    producer = Producer(conf)
    if ours is not None:
        ours.bind(producer, conf if partitioner in ("murmur2_random", "murmur2") else None)
        # the first metadata fetch can fail on a busy machine (the partitioner then defers to
        # librdkafka); this comparison is about the partitioner's own choice
        wait_until(lambda: ours.metadata.view(topic) is not None, 60, "the partitioner's first metadata")
    result: list[int] = [-1] * len(keys)
    errors: list[KafkaError] = []

    def report(i: int) -> Any:
        def cb(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(err)
            else:
                result[i] = msg.partition()  # the partition the broker acknowledged

        return cb

    for i, key in enumerate(keys):
        if ours is not None:
            p = ours.partition(topic, key)
            assert p is not None and (p == -1) == ours.native_keys  # -1: librdkafka hashes, natively
            producer.produce(topic, b"v", key, p, on_delivery=report(i))
        else:
            producer.produce(topic, b"v", key, on_delivery=report(i))
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    assert not errors
    if ours is not None:
        ours.close()
    return result


def test_key_hash_matches_librdkafka_murmur2_for_10000_keys(kafka_cluster: LocalCluster, kafka_topic: TopicFactory) -> None:
    topic = kafka_topic(partitions=PARTITIONS)
    keys = random_keys(10_000)
    bootstrap = kafka_cluster.bootstrap_servers
    theirs_random = delivered_partitions(bootstrap, topic, keys, "murmur2_random", None)
    theirs = delivered_partitions(bootstrap, topic, keys, "murmur2", None)
    ours = delivered_partitions(bootstrap, topic, keys, "consistent_random", KeyHash())  # hashed in Python
    native = delivered_partitions(bootstrap, topic, keys, "murmur2_random", KeyHash())  # left to librdkafka
    assert ours == theirs_random
    assert ours == theirs
    assert native == ours
    assert set(ours) == set(range(PARTITIONS))
    assert len({p for p, k in zip(ours, keys, strict=True) if k == b""}) == 1
