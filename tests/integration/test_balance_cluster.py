"""Balancing on a real cluster of the module's own: a paused leader and a dead leader.

One 3-broker cluster for both tests (pausing or killing brokers on the session
cluster would disturb other tests); the pause is undone in ``finally`` and the
kill comes last.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer

from kafkaops.admin import create_topic
from kafkaops.apps.bench.balance_driver import Driver
from kafkaops.apps.bench.balance_scenarios import topic_leaders
from kafkaops.clients.partitioners import RoundRobin
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.plugin import new_cluster
from kafkaops.testing.waits import wait_until

log = logging.getLogger(__name__)
PARTITIONS = 12


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[LocalCluster]:
    cluster: Any = new_cluster(pytestconfig, tmp_path_factory.mktemp("balance"), brokers=3)  # the pass's Kafka mode
    cluster.start()
    yield cluster
    cluster.destroy()


def new_topic(cluster: LocalCluster, name: str) -> tuple[str, tuple[int, ...]]:
    create_topic(cluster.bootstrap_servers, name, PARTITIONS, 3)
    return name, topic_leaders(cluster.bootstrap_servers, name, PARTITIONS)


def victim(cluster: LocalCluster, leaders: tuple[int, ...]) -> int:
    controller = cluster.controller_id()
    return min(b for b in set(leaders) if b != controller)


@pytest.mark.destructive
def test_least_loaded_sends_fewer_records_to_a_paused_leader_than_round_robin(own_cluster: LocalCluster) -> None:
    bootstrap = own_cluster.bootstrap_servers
    rr_topic, leaders = new_topic(own_cluster, "balance-pause-rr")
    ll_topic, ll_leaders = new_topic(own_cluster, "balance-pause-ll")
    broker = victim(own_cluster, leaders)
    drivers = [Driver("round-robin", bootstrap, rr_topic, "1", 0.0), Driver("least-loaded", bootstrap, ll_topic, "1", 0.0)]
    for d in drivers:
        d.timeline = True
        d.warm_up()
    start = time.perf_counter() + 0.3
    for d in drivers:
        d.t0 = start
    window: list[float] = []

    def pause() -> None:
        time.sleep(max(0.0, start + 1.5 - time.perf_counter()))
        own_cluster.pause_broker(broker)
        try:
            window.append(time.perf_counter() - start)
            time.sleep(3.0)
            window.append(time.perf_counter() - start)
        finally:
            own_cluster.resume_broker(broker)

    pauser = threading.Thread(target=pause)
    pauser.start()
    threads = [threading.Thread(target=d.paced, args=(1000.0, 6.0, start)) for d in drivers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        pauser.join()
        own_cluster.resume_broker(broker)
        for d in drivers:
            d.close()

    def paused_share(d: Driver, topic_leaders: tuple[int, ...]) -> float:
        began, ended = window[0] + 0.1, window[1]  # records produced while the leader was frozen
        during = [p for t, p in d.run.timeline if began <= t <= ended]
        assert len(during) > 500, f"{d.run.strategy}: only {len(during)} records during the pause"
        return sum(1 for p in during if topic_leaders[p] == broker) / len(during)

    rr_share = paused_share(drivers[0], leaders)
    ll_share = paused_share(drivers[1], ll_leaders)
    log.info("share to paused broker %d: round-robin %.3f, least-loaded %.3f", broker, rr_share, ll_share)
    assert rr_share > 0.25  # round robin keeps feeding the frozen leader its third
    assert ll_share < 0.5 * rr_share
    for d in drivers:
        assert d.run.failed == 0 and d.run.delivered == d.run.sent


def test_bench_balance_json_has_every_strategy_in_the_issue_shape(
    own_cluster: LocalCluster, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from kafkaops.cli import app

    (tmp_path / "cluster").symlink_to(own_cluster.base_dir)  # what `kafkaops up` leaves for the CLI
    monkeypatch.setenv("KAFKAOPS_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["bench", "balance", "--json", "-s", "healthy", "-n", "1200", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == ["scenarios"] and list(doc["scenarios"]) == ["healthy"]
    rows = doc["scenarios"]["healthy"]
    assert list(rows) == ["round-robin", "random", "least-loaded", "key-hash", "librdkafka"]
    for strategy, row in rows.items():
        assert set(row) == {"messages", "msgs_per_s", "p50_ms", "p99_ms", "per_partition", "max_min_ratio", "lost"}
        assert row["messages"] == 1200 and row["lost"] == 0 and sum(row["per_partition"]) == 1200, strategy
    assert rows["round-robin"]["per_partition"] == [100] * 12
    assert rows["round-robin"]["max_min_ratio"] == 1.0
    bad = CliRunner().invoke(app, ["bench", "balance", "-s", "sunny"])
    assert bad.exit_code == 1 and "unknown scenario" in str(bad.exception)


@pytest.mark.destructive
def test_a_dead_leaders_partitions_are_skipped_until_they_have_a_new_leader(own_cluster: LocalCluster) -> None:
    topic, leaders = new_topic(own_cluster, "balance-kill")
    broker = victim(own_cluster, leaders)
    rr = RoundRobin(refresh_interval_s=1.0)
    errors: list[KafkaError] = []
    delivered = 0

    def report(err: KafkaError | None, msg: Message) -> None:
        nonlocal delivered
        if err is not None:
            errors.append(err)
        else:
            delivered += 1
        rr.on_delivery(topic, msg.partition() or 0, err, 0.0)

    conf: dict[str, Any] = {"bootstrap.servers": own_cluster.bootstrap_servers, "logger": log, "acks": "all",
                            "enable.idempotence": True, "linger.ms": 5}
    conf.update(rr.producer_config(250))
    producer = Producer(conf)
    rr.bind(producer)
    sent = 0

    def produce(n: int) -> list[tuple[int, int]]:
        """(partition, its leader in our view when chosen) of ``n`` records."""
        nonlocal sent
        chosen = []
        for _ in range(n):
            view = rr.metadata.view(topic)
            p = rr.partition(topic, None)
            assert view is not None and p is not None
            chosen.append((p, view.leaders[p]))
            producer.produce(topic, b"x", None, p, on_delivery=report)
            sent += 1
        producer.poll(0.05)
        return chosen

    try:
        # the first metadata fetch can fail on a busy machine (the partitioner then defers to
        # librdkafka); this test is about what happens once the partitioner has a view
        wait_until(lambda: rr.metadata.view(topic) is not None, 60, "the partitioner's first metadata")
        assert {p for p, _ in produce(48)} == set(range(PARTITIONS))
        assert producer.flush(60) == 0
        own_cluster.kill_broker(broker)
        def seen_down() -> bool:  # records keep flowing while the partitioner learns
            produce(5)
            return broker in rr.metadata.down_brokers

        wait_until(seen_down, 60, f"broker {broker} seen down", interval=0.01)
        for p, leader in produce(300):
            assert leader != broker, f"partition {p} chosen while its leader {broker} is dead"
        # the controller moves leadership away (ZooKeeper session expiry); a refresh brings the partitions back
        def all_back() -> bool:
            produce(5)
            view = rr.metadata.view(topic)
            return view is not None and len(view.available) == PARTITIONS and broker not in view.leaders

        wait_until(all_back, 90, "new leaders for every partition", interval=0.01)
        assert {p for p, _ in produce(48)} == set(range(PARTITIONS))
        assert producer.flush(120) == 0
        assert not errors
        assert delivered == sent  # acks=all + idempotence: nothing lost while the leader died
    finally:
        rr.close()
