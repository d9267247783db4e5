"""Pure logic of the partitioners: murmur2, runs, round robin's evenness, random, keys, availability."""

from __future__ import annotations

import json
from collections import Counter
from itertools import groupby

import pytest
from confluent_kafka import KafkaError

from kafkaops.clients.metadata import MetadataCache
from kafkaops.clients.partitioners import (
    UNASSIGNED,
    BasePartitioner,
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


class Clock:
    """Time that moves only when a record is produced: ``step`` seconds per record."""

    def __init__(self, step: float = 1e-5) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        return self.now


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


def with_topic(part: BasePartitioner, leaders: tuple[int, ...] = LEADERS, brokers: tuple[int, ...] = (1, 2, 3),
               topic: str = "t") -> BasePartitioner:
    part.metadata.set_leaders(topic, leaders, set(brokers))
    return part


def produce(part: BasePartitioner, n: int, clock: Clock | None = None, key: bytes | None = None) -> list[int]:
    """``n`` placements, the clock advancing one step per record."""
    out = []
    for _ in range(n):
        out.append(part.partition("t", key))
        if clock is not None:
            clock.now += clock.step
    return out


def runs_of(placements: list[int]) -> list[tuple[int, int]]:
    """(partition, length) of each run."""
    return [(p, len(list(g))) for p, g in groupby(placements)]


@pytest.mark.parametrize(("key", "expected"), sorted(JAVA_MURMUR2.items()))
def test_murmur2_matches_the_java_client(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_murmur2_partition_is_the_positive_hash_modulo_partitions() -> None:
    # "21" hashes negative: Java's toPositive masks the sign bit, it does not negate.
    assert murmur2_partition(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7
    assert murmur2_partition(b"21", 7) != abs(-973932308) % 7
    assert all(0 <= murmur2_partition(bytes([i]) * i, 5) < 5 for i in range(64))


def test_runs_last_a_sticky_window_at_the_measured_rate() -> None:
    fast = Clock(step=1e-5)  # 100,000 records/s: a 10 ms window holds about 1,000
    part = with_topic(Random(seed=1, clock=fast, sticky_ms=10))
    produce(part, 5000, fast)  # run lengths double from 1 up to the window
    before = part.runs
    produce(part, 60_000, fast)
    assert 45 <= part.runs - before <= 75  # ~60 windows
    slow = Clock(step=1e-3)  # 1,000 records/s: about 10 per window
    part = with_topic(Random(seed=1, clock=slow, sticky_ms=10))
    produce(part, 100, slow)
    before = part.runs
    produce(part, 2000, slow)
    assert 150 <= part.runs - before <= 250


def test_a_run_ends_on_time_when_the_rate_drops() -> None:
    clock = Clock(step=1e-5)
    part = with_topic(Random(seed=2, clock=clock, sticky_ms=10))
    produce(part, 20_000, clock)  # runs of ~1,000 records
    started = part.runs
    clock.step = 0.01  # a hundred times slower: one record per window
    placements = produce(part, 300, clock)
    # a run goes on at most until its next clock check (an eighth of the old run), not for 1,000 records
    assert part.runs - started >= 60  # one record per run once the old run's clock check came
    assert max(n for _, n in runs_of(placements)[1:]) <= 2 * 125


def test_round_robin_runs_in_strict_order_over_available_partitions() -> None:
    clock = Clock()
    rr = with_topic(RoundRobin(clock=clock))
    rr.on_stats(stats({1: "UP", 2: "DOWN", 3: "UP"}))
    order = [p for p, _ in runs_of(produce(rr, 5000, clock))]
    assert set(order) == {0, 2, 3, 5}
    assert all(b == {0: 2, 2: 3, 3: 5, 5: 0}[a] for a, b in zip(order, order[1:], strict=False))
    rr.on_stats(stats({1: "UP", 2: "UP", 3: "UP"}))
    assert set(produce(rr, 2000, clock)) == set(range(6))


def test_round_robin_keeps_every_partition_within_max_skew_at_every_moment() -> None:
    clock = Clock(step=1e-6)  # fast enough that only the skew bound limits runs
    rr = with_topic(RoundRobin(clock=clock, max_skew=0.01), leaders=tuple(p % 3 + 1 for p in range(12)))
    counts = [0] * 12
    worst = 1.0
    for i, p in enumerate(produce(rr, 60_000, clock)):
        counts[p] += 1
        if i >= 12 * 100 and i % 97 == 0:  # from 100 records per partition on, checked all along
            worst = max(worst, max(counts) / min(counts))
    assert worst <= 1.01
    assert max(counts) / min(counts) <= 1.01
    assert rr.runs < 60_000 / 5  # runs, not records, rotate (short while the counts are small)


def test_round_robin_without_skew_bound_runs_a_whole_window() -> None:
    clock = Clock(step=1e-5)
    rr = with_topic(RoundRobin(clock=clock, max_skew=None))
    lengths = [n for _, n in runs_of(produce(rr, 40_000, clock))][24:-1]  # after two cycles
    assert lengths and min(lengths) >= 500
    with pytest.raises(ConfigError):
        RoundRobin(max_skew=0)


def test_random_runs_are_uniform_by_chi_square_and_repeatable() -> None:
    leaders = tuple(range(1, 13))
    clock = Clock(step=1e-3)  # ~10 records per run
    r = with_topic(Random(seed=42, clock=clock), leaders=leaders, brokers=leaders)
    seq = produce(r, 60_000, clock)
    starts = Counter(p for p, _ in runs_of(seq))
    total = sum(starts.values())
    expected = total / 12
    chi2 = sum((starts[p] - expected) ** 2 / expected for p in range(12))
    assert total > 3000
    # consecutive runs may pick the same partition (they merge), so the counts are a bit lower: still uniform
    assert chi2 < 31.26  # chi-square critical value, 11 degrees of freedom, p = 0.001
    clock2 = Clock(step=1e-3)
    again = with_topic(Random(seed=42, clock=clock2), leaders=leaders, brokers=leaders)
    assert produce(again, 5000, clock2) == seq[:5000]


def test_random_only_picks_available_partitions() -> None:
    clock = Clock(step=1e-3)
    r = with_topic(Random(seed=1, clock=clock))
    r.on_stats(stats({1: "UP", 2: "UP", 3: "DOWN"}))
    assert set(produce(r, 3000, clock)) == {0, 1, 3, 4}


def test_partitions_without_leader_or_with_a_leader_gone_from_metadata_are_skipped() -> None:
    clock = Clock(step=1e-3)
    rr = with_topic(RoundRobin(clock=clock), leaders=(1, -1, 3, 2), brokers=(1, 3))
    assert set(produce(rr, 500, clock)) == {0, 2}


def test_a_failed_delivery_ends_the_run_and_skips_the_partition_until_the_next_refresh() -> None:
    clock = Clock(step=1e-3)
    rr = with_topic(RoundRobin(clock=clock, max_skew=None))
    produce(rr, 100, clock)
    rr.on_delivery("t", 4, KafkaError(KafkaError._MSG_TIMED_OUT), 1.0)
    assert 4 not in set(produce(rr, 500, clock))
    with_topic(rr)  # a metadata refresh
    assert 4 in set(produce(rr, 500, clock))


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
    clock = Clock(step=1e-3)
    rr = with_topic(RoundRobin(clock=clock))
    rr.on_stats(stats({1: "DOWN", 2: "DOWN", 3: "DOWN"}))
    assert set(produce(rr, 500, clock)) == set(range(6))


def test_unknown_topic_leaves_the_choice_to_librdkafka() -> None:
    assert RoundRobin().partition("nowhere", None) == UNASSIGNED  # not bound to a client


@pytest.mark.parametrize("strategy", ["round-robin", "random", "least-loaded", "key-hash"])
def test_keyed_records_use_key_hash_in_every_strategy(strategy: str) -> None:
    part = with_topic(make_partitioner(strategy))
    part.on_stats(stats({1: "DOWN", 2: "UP", 3: "UP"}))  # a key keeps its partition even then
    for key in (b"", b"order-17", "zürich-ключ".encode(), bytes(range(256))):
        assert part.partition("t", key) == murmur2_partition(key, 6)
    assert part.probe is None  # keyed records are no probes


@pytest.mark.parametrize("partitioner", ["murmur2_random", "murmur2"])
def test_keyed_records_go_to_librdkafka_when_it_hashes_as_kafka_does(partitioner: str) -> None:
    part = with_topic(KeyHash())
    part.bind(None, {"partitioner": partitioner})
    assert part.partition("t", b"order-17") == UNASSIGNED
    other = with_topic(KeyHash())
    other.bind(None, {"partitioner": "consistent_random"})  # CRC32: we hash ourselves
    assert other.partition("t", b"order-17") == murmur2_partition(b"order-17", 6)
    unknown = with_topic(KeyHash())
    unknown.bind(None)  # a client whose config we do not know
    assert unknown.partition("t", b"order-17") == murmur2_partition(b"order-17", 6)


def test_the_producer_config_sets_the_sticky_window() -> None:
    part = Random()
    part.bind(None, {"sticky.partitioning.linger.ms": 25})
    assert part.sticky_s == 0.025
    mine = Random(sticky_ms=3)
    mine.bind(None, {"sticky.partitioning.linger.ms": 25})
    assert mine.sticky_s == 0.003


def test_ignore_keys_applies_the_strategy_to_keyed_records() -> None:
    clock = Clock(step=1e-3)
    rr = with_topic(RoundRobin(ignore_keys=True, clock=clock))
    assert set(produce(rr, 1000, clock, key=b"same")) == set(range(6))


def test_key_hash_null_keys_random_or_hashed_like_an_empty_key() -> None:
    clock = Clock(step=1e-3)
    kh = with_topic(KeyHash(seed=3, clock=clock))
    assert set(produce(kh, 3000, clock)) == set(range(6))
    hashed = with_topic(KeyHash(null_keys="hash"))
    assert set(produce(hashed, 20)) == {murmur2_partition(b"", 6)}
    with pytest.raises(ConfigError):
        KeyHash(null_keys="sticky")


def test_only_least_loaded_asks_for_probes_one_per_run() -> None:
    for strategy in ("round-robin", "random", "key-hash"):
        part = with_topic(make_partitioner(strategy))
        for _ in range(200):
            part.partition("t", None)
            assert part.probe is None
    clock = Clock(step=1e-3)
    ll = with_topic(LeastLoaded(clock=clock))
    probes = 0
    for _ in range(500):
        ll.partition("t", None)
        probes += ll.probe is not None
        clock.now += clock.step
    assert probes == ll.runs and 20 < probes < 500


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="round-robin"):
        make_partitioner("least-connections")


def test_producer_config_feeds_statistics_and_murmur2_random() -> None:
    clock = Clock(step=1e-3)
    ll = LeastLoaded(clock=clock)
    conf = ll.producer_config(250)
    assert conf["statistics.interval.ms"] == 250 and conf["partitioner"] == "murmur2_random"
    with_topic(ll)
    conf["stats_cb"](stats({1: "UP", 2: "UP", 3: "DOWN"}))
    placements = []
    for _ in range(500):
        placements.append(ll.partition("t", None))
        ll.on_delivery("t", placements[-1], None, 0.0)
        clock.now += clock.step
    assert set(placements) == {0, 1, 3, 4}
