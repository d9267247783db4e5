"""Pure logic of the partitioners: murmur2, round robin, random, key rule, availability."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kafkaops.clients.metadata import MetadataCache
from kafkaops.clients.partitioners import (
    KeyHash,
    LeastLoaded,
    Random,
    RoundRobin,
    make_partitioner,
    murmur2,
    murmur2_partition,
)
from kafkaops.errors import ConfigError

# Kafka's own test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

LEADERS = (1, 2, 3, 1, 2, 3)


def stats(states: dict[int, str], disconnects: int = 1) -> str:
    return json.dumps(
        {
            "brokers": {
                f"127.0.0.1:{9000 + b}/{b}": {"nodeid": b, "state": s, "disconnects": disconnects}
                for b, s in states.items()
            }
            | {"127.0.0.1:9001/bootstrap": {"nodeid": -1, "state": "DOWN"}}
        }
    )


def with_topic(part, leaders=LEADERS, brokers=(1, 2, 3), topic="t"):
    part.metadata.set_leaders(topic, leaders, set(brokers))
    return part


@pytest.mark.parametrize(("key", "expected"), sorted(JAVA_MURMUR2.items()))
def test_murmur2_matches_the_java_client(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_murmur2_partition_is_the_positive_hash_modulo_partitions() -> None:
    # "21" hashes negative: Java's toPositive masks the sign bit, it does not negate.
    assert murmur2_partition(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7
    assert murmur2_partition(b"21", 7) != abs(-973932308) % 7
    assert all(0 <= murmur2_partition(bytes([i]) * i, 5) < 5 for i in range(64))


def test_round_robin_cycles_exactly_over_all_partitions() -> None:
    rr = with_topic(RoundRobin())
    assert [rr.partition("t", None) for _ in range(12)] == list(range(6)) * 2


def test_round_robin_cycles_exactly_over_available_partitions() -> None:
    rr = with_topic(RoundRobin())
    rr.on_stats(stats({1: "UP", 2: "DOWN", 3: "UP"}))
    assert [rr.partition("t", None) for _ in range(8)] == [0, 2, 3, 5, 0, 2, 3, 5]
    rr.on_stats(stats({1: "UP", 2: "UP", 3: "UP"}))
    assert sorted(rr.partition("t", None) for _ in range(6)) == list(range(6))


def test_round_robin_in_batches_cycles_exactly_batch_by_batch() -> None:
    rr = with_topic(RoundRobin(batch=3))
    rr.on_stats(stats({1: "UP", 2: "DOWN", 3: "UP"}))
    assert [rr.partition("t", None) for _ in range(12)] == [0, 0, 0, 2, 2, 2, 3, 3, 3, 5, 5, 5]
    with pytest.raises(ConfigError):
        RoundRobin(batch=0)


def test_partitions_without_leader_or_with_a_leader_gone_from_metadata_are_skipped() -> None:
    rr = with_topic(RoundRobin(), leaders=(1, -1, 3, 2), brokers=(1, 3))
    assert {rr.partition("t", None) for _ in range(20)} == {0, 2}


def test_a_failed_delivery_skips_the_partition_until_the_next_refresh() -> None:
    rr = with_topic(RoundRobin())
    from confluent_kafka import KafkaError

    rr.on_delivery("t", 4, KafkaError(KafkaError._MSG_TIMED_OUT), 1.0)
    assert 4 not in {rr.partition("t", None) for _ in range(20)}
    with_topic(rr)  # a metadata refresh
    assert 4 in {rr.partition("t", None) for _ in range(20)}


def test_connecting_brokers_are_not_down_but_failed_connections_are() -> None:
    md = MetadataCache()
    md.set_leaders("t", LEADERS, {1, 2, 3})
    md.on_stats(stats({1: "INIT", 2: "CONNECT", 3: "UP"}, disconnects=0))
    assert md.down_brokers == frozenset()
    md.on_stats(stats({1: "TRY_CONNECT", 2: "CONNECT", 3: "UP"}, disconnects=2))
    assert md.down_brokers == {1, 2}
    view = md.view("t")
    assert view is not None and view.available == (2, 5)
    idle = json.loads(stats({1: "DOWN", 2: "UP", 3: "UP"}))
    for b in idle["brokers"].values():
        b["stateage"] = 60_000_000  # closed a minute ago and not retried: an idle connection
    md.on_stats(idle)
    assert md.down_brokers == frozenset()


def test_no_available_partition_falls_back_to_all_of_them() -> None:
    rr = with_topic(RoundRobin())
    rr.on_stats(stats({1: "DOWN", 2: "DOWN", 3: "DOWN"}))
    assert [rr.partition("t", None) for _ in range(6)] == list(range(6))


def test_unknown_topic_leaves_the_choice_to_librdkafka() -> None:
    assert RoundRobin().partition("nowhere", None) is None  # not bound to a client


def test_random_is_uniform_by_chi_square_and_repeatable() -> None:
    leaders = tuple(range(12))
    draws = 60_000
    r = with_topic(Random(seed=42), leaders=leaders, brokers=leaders)
    seq = [r.partition("t", None) for _ in range(draws)]
    counts = Counter(seq)
    expected = draws / 12
    chi2 = sum((counts[p] - expected) ** 2 / expected for p in range(12))
    assert chi2 < 31.26  # chi-square critical value, 11 degrees of freedom, p = 0.001
    again = with_topic(Random(seed=42), leaders=leaders, brokers=leaders)
    assert [again.partition("t", None) for _ in range(1000)] == seq[:1000]


def test_random_only_picks_available_partitions() -> None:
    r = with_topic(Random(seed=1))
    r.on_stats(stats({1: "UP", 2: "UP", 3: "DOWN"}))
    assert set(r.partition("t", None) for _ in range(500)) == {0, 1, 3, 4}


@pytest.mark.parametrize("strategy", ["round-robin", "random", "least-loaded", "key-hash"])
def test_keyed_records_use_key_hash_in_every_strategy(strategy: str) -> None:
    part = with_topic(make_partitioner(strategy))
    part.on_stats(stats({1: "DOWN", 2: "UP", 3: "UP"}))  # a key keeps its partition even then
    for key in (b"", b"order-17", "zürich-ключ".encode(), bytes(range(256))):
        assert part.partition("t", key) == murmur2_partition(key, 6)


def test_ignore_keys_applies_the_strategy_to_keyed_records() -> None:
    rr = with_topic(RoundRobin(ignore_keys=True))
    assert [rr.partition("t", b"same") for _ in range(6)] == list(range(6))


def test_key_hash_null_keys_random_or_hashed_like_an_empty_key() -> None:
    kh = with_topic(KeyHash(seed=3))
    assert len({kh.partition("t", None) for _ in range(200)}) == 6
    hashed = with_topic(KeyHash(null_keys="hash"))
    assert {hashed.partition("t", None) for _ in range(20)} == {murmur2_partition(b"", 6)}
    with pytest.raises(ConfigError):
        KeyHash(null_keys="sticky")


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="round-robin"):
        make_partitioner("least-connections")


def test_producer_config_feeds_statistics_to_the_partitioner() -> None:
    ll = LeastLoaded()
    conf = ll.producer_config(250)
    assert conf["statistics.interval.ms"] == 250
    with_topic(ll)
    conf["stats_cb"](stats({1: "UP", 2: "UP", 3: "DOWN"}))
    assert {ll.partition("t", None) for _ in range(30)} == {0, 1, 3, 4}
