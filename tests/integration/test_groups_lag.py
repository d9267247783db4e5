"""Consumer lag judged on a real cluster: Burrow's statuses reached by real consumers.

One ReplicaMonitor tracks every group's lag (short poll interval, window of 5) and
reports ConsumerLagStatusChanged events. Each test drives a group of its own into one
situation and waits for its status, within a bounded number of polls (windows):

- a consumer that keeps up stays OK;
- a consumer that stopped (closed) goes STOP;
- a consumer that keeps polling but never commits goes STALL (it still owns its partition);
- offsets reset to earlier ones go REWIND.
Plus the `kafkaops group` commands on the same groups.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions

from kafkaops.admin import admin_client
from kafkaops.local.cluster import LocalCluster
from kafkaops.ops.events import ConsumerLagStatusChanged, Event
from kafkaops.ops.groups import committed_offsets, describe_group, group_lag
from kafkaops.ops.monitor import ReplicaMonitor
from kafkaops.testing.plugin import TopicFactory
from kafkaops.testing.waits import wait_until

WINDOW = 5
INTERVAL = 0.5
BOUND_POLLS = 3 * WINDOW
"""A status must show within three windows of polls after its cause."""


class LagEvents:
    """ConsumerLagStatusChanged events of the monitor, by group."""

    def __init__(self, monitor: ReplicaMonitor) -> None:
        self.monitor = monitor
        self.lock = threading.Lock()
        self.events: list[ConsumerLagStatusChanged] = []
        monitor.subscribe(self._on)

    def _on(self, event: Event) -> None:
        if isinstance(event, ConsumerLagStatusChanged):
            with self.lock:
                self.events.append(event)

    def of(self, group: str) -> list[ConsumerLagStatusChanged]:
        with self.lock:
            return [e for e in self.events if e.group == group]

    @property
    def polls(self) -> int:
        assert self.monitor.lag is not None
        return self.monitor.lag.polls

    def wait_status(self, group: str, status: str, since_poll: int) -> int:
        """Wait until a partition of ``group`` reports ``status``; returns after how many polls."""
        wait_until(lambda: any(e.status == status for e in self.of(group)) or self.polls > since_poll + BOUND_POLLS + 2,
                   BOUND_POLLS * 20, f"{group} to go {status}", interval=0.1)
        assert any(e.status == status for e in self.of(group)), \
            f"{group}: no {status} within {BOUND_POLLS} polls: {[e.describe() for e in self.of(group)]}"
        return self.polls - since_poll


@pytest.fixture(scope="module")
def lag_events(kafka_cluster: LocalCluster) -> Iterator[LagEvents]:
    mon = ReplicaMonitor(kafka_cluster.profile).start()
    mon.track_lag(interval=INTERVAL, window=WINDOW)
    try:
        yield LagEvents(mon)
    finally:
        mon.stop()


def produce(cluster: LocalCluster, topic: str, n: int, partition: int = 0) -> None:
    p = Producer(cluster.profile.librdkafka(acks="all"))
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), partition=partition)
    assert p.flush(60) == 0


def consumer(cluster: LocalCluster, group: str, **conf: Any) -> Consumer:
    return Consumer(cluster.profile.librdkafka(**{
        "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False, **conf}))


def consume(c: Consumer, n: int, timeout: float = 60.0) -> int:
    """Consume up to ``n`` records (fewer if none come for ``timeout`` s); returns how many."""
    got = 0
    while got < n:
        msgs = c.consume(num_messages=min(100, n - got), timeout=timeout)
        if not msgs:
            break
        got += sum(1 for m in msgs if m.error() is None)
    return got


def left_behind(cluster: LocalCluster, topic_factory: TopicFactory, prefix: str, consumed: int) -> tuple[str, str]:
    """A new topic with 100 records and a group that consumed and committed ``consumed`` of
    them and closed (an empty group with lag): (topic, group)."""
    topic = topic_factory(partitions=1)
    group = f"{prefix}-{uuid.uuid4().hex[:6]}"
    produce(cluster, topic, 100)
    c = consumer(cluster, group)
    c.subscribe([topic])
    assert consume(c, consumed) == consumed
    c.commit(asynchronous=False)
    c.close()
    return topic, group


def test_a_consumer_that_keeps_up_stays_ok(kafka_cluster: LocalCluster, kafka_topic: TopicFactory,
                                           lag_events: LagEvents) -> None:
    topic = kafka_topic(partitions=1)
    group = f"keeps-up-{uuid.uuid4().hex[:6]}"
    stop = threading.Event()
    c = consumer(kafka_cluster, group)
    c.subscribe([topic])

    def keep_up() -> None:  # one commit per batch: a commit per record falls behind on a busy machine
        while not stop.is_set():
            good = [m for m in c.consume(num_messages=100, timeout=0.1) if m.error() is None]
            if good:
                c.commit(message=good[-1], asynchronous=False)

    t = threading.Thread(target=keep_up, daemon=True)
    t.start()
    try:
        produce(kafka_cluster, topic, 20)
        wait_until(lambda: committed_offsets(kafka_cluster.profile, group).get((topic, 0)) == 20, 60, "the first commits")
        start, sent = lag_events.polls, 20
        while lag_events.polls < start + 3 * WINDOW:  # three full windows of bursts, each consumed at once
            produce(kafka_cluster, topic, 10)
            sent += 10
            # caught up before the next poll: a poll may fall between a burst and its commit, never every one
            # (lag > 0 at every poll of a window while offsets advance is Burrow's WARN, rightly)
            wait_until(lambda: committed_offsets(kafka_cluster.profile, group).get((topic, 0)) == sent, 60,
                       f"the commit of record {sent}")
            polled = lag_events.polls
            wait_until(lambda: lag_events.polls > polled, 30, "a lag poll after the commit")
        statuses = lag_events.monitor.lag.statuses() if lag_events.monitor.lag else {}
        assert group in statuses and statuses[group].partitions[0].observations == WINDOW
        assert statuses[group].status.name == "OK"
        assert lag_events.of(group) == [], [e.describe() for e in lag_events.of(group)]
    finally:
        stop.set()
        t.join(10)
        c.close()


def test_a_stopped_consumer_goes_stop(kafka_cluster: LocalCluster, kafka_topic: TopicFactory,
                                      lag_events: LagEvents) -> None:
    topic, group = left_behind(kafka_cluster, kafka_topic, "stopped", 40)  # its offset stays at 40 of 100
    polls = lag_events.wait_status(group, "STOP", lag_events.polls)
    print(f"\nstopped consumer -> STOP after {polls} polls (window {WINDOW})")
    (event,) = [e for e in lag_events.of(group) if e.status == "STOP"]
    assert (event.topic, event.partition, event.previous, event.lag) == (topic, 0, "OK", 60)


def test_a_consumer_that_polls_but_cannot_commit_goes_stall(kafka_cluster: LocalCluster, kafka_topic: TopicFactory,
                                                            lag_events: LagEvents) -> None:
    topic = kafka_topic(partitions=1)
    group = f"stalled-{uuid.uuid4().hex[:6]}"
    produce(kafka_cluster, topic, 100)
    c = consumer(kafka_cluster, group)
    c.subscribe([topic])
    stop = threading.Event()
    try:
        assert consume(c, 10) == 10
        c.commit(asynchronous=False)  # the last commit it manages: offset 10

        def poll_forever() -> None:  # stays in the group and owns the partition, commits nothing
            while not stop.is_set():
                c.consume(num_messages=10, timeout=0.2)

        t = threading.Thread(target=poll_forever, daemon=True)
        t.start()
        wait_until(lambda: describe_group(kafka_cluster.profile, group).owners().get((topic, 0)) is not None, 60,
                   "the consumer to own its partition")
        polls = lag_events.wait_status(group, "STALL", lag_events.polls)
        print(f"\npolling, not committing -> STALL after {polls} polls (window {WINDOW})")
        assert not any(e.status == "STOP" for e in lag_events.of(group))
        stop.set()
        t.join(10)
    finally:
        stop.set()
        c.close()


def test_offsets_reset_to_earlier_ones_go_rewind(kafka_cluster: LocalCluster, kafka_topic: TopicFactory,
                                                 lag_events: LagEvents) -> None:
    topic, group = left_behind(kafka_cluster, kafka_topic, "rewound", 50)
    wait_until(lambda: any(s.group == group for s in lag_events.monitor.lag.statuses().values())  # type: ignore[union-attr]
               if lag_events.monitor.lag else False, 30, "the tracker to see the group")
    start = lag_events.polls
    wait_until(lambda: lag_events.polls >= start + 2, 30, "two polls of the committed offset 50")
    admin = admin_client(kafka_cluster.profile)
    fut = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 10)])])[group]
    fut.result(30)
    assert committed_offsets(kafka_cluster.profile, group) == {(topic, 0): 10}
    polls = lag_events.wait_status(group, "REWIND", lag_events.polls)
    print(f"\nreset 50 -> 10 -> REWIND after {polls} polls (window {WINDOW})")
    rewind = next(e for e in lag_events.of(group) if e.status == "REWIND")
    assert rewind.lag == 90


def _cli(cluster: LocalCluster, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafkaops.cli", *args, "-b", cluster.bootstrap_servers],
                          capture_output=True, text=True, timeout=120, input=input)


def test_group_commands(kafka_cluster: LocalCluster, kafka_topic: TopicFactory, tmp_path: Any,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKAOPS_HOME", str(tmp_path))
    topic = kafka_topic(partitions=2)
    group = f"cli-{uuid.uuid4().hex[:6]}"
    produce(kafka_cluster, topic, 30, partition=0)
    produce(kafka_cluster, topic, 20, partition=1)
    c = consumer(kafka_cluster, group, **{"client.id": "lag-cli-test"})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    assert consume(c, 50) == 50
    c.commit(offsets=[TopicPartition(topic, 0, 25), TopicPartition(topic, 1, 20)], asynchronous=False)
    c.close()

    listed = json.loads(_cli(kafka_cluster, "group", "list", "--json").stdout)
    assert any(g["group"] == group and g["state"] == "empty" for g in listed), listed
    lag = json.loads(_cli(kafka_cluster, "group", "lag", group, "--json").stdout)
    parts = {p["partition"]: p for p in lag["partitions"]}
    assert (parts[0]["committed"], parts[0]["log_end"], parts[0]["lag"]) == (25, 30, 5)
    assert (parts[1]["committed"], parts[1]["log_end"], parts[1]["lag"]) == (20, 20, 0)
    assert lag["total_lag"] == 5
    assert parts[0]["lag_seconds"] is not None and parts[0]["lag_seconds"] >= 0  # the record at offset 25 was read
    assert parts[1]["lag_seconds"] == 0.0
    lib = group_lag(kafka_cluster.profile, group)
    assert lib.total_lag == 5 and lib.partitions[0].next_timestamp_ms is not None

    judged = json.loads(_cli(kafka_cluster, "group", "lag", group, "--status", "--window", "2", "--interval", "0.2",
                             "--json").stdout)["status"]
    assert judged["status"] == "ERR" and judged["total_lag"] == 5
    assert [(p["partition"], p["status"]) for p in judged["partitions"]] == [(0, "STOP"), (1, "OK")]

    described = _cli(kafka_cluster, "group", "describe", group)
    assert described.returncode == 0 and topic in described.stdout and "25" in described.stdout

    missing = _cli(kafka_cluster, "group", "describe", "no-such-group")
    assert missing.returncode == 1 and "consumer group no-such-group does not exist" in missing.stderr

    refused = _cli(kafka_cluster, "group", "delete", group, input="n\n")
    assert refused.returncode == 1
    deleted = _cli(kafka_cluster, "group", "delete", group, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert not any(g["group"] == group for g in json.loads(_cli(kafka_cluster, "group", "list", "--json").stdout))
    audit = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    assert [(a["action"], a["target"], a["result"]) for a in audit] == [("group.delete", group, "ok")]
