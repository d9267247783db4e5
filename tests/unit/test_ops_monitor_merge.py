"""The monitor's merge of two sources into one model: each change is emitted once.

These drive the model (FactModel) with facts and diff its snapshots the way the
monitor's worker does (no threads, no cluster): the rules are pure logic. Cluster
behaviour is covered in tests/integration/test_monitor_*.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kafkaops.config import ClusterProfile, ZooKeeperSettings
from kafkaops.ops.admin_source import answering_broker
from kafkaops.ops.events import Event, diff_health
from kafkaops.ops.health import ClusterHealth
from kafkaops.ops.monitor import MonitorError, ReplicaMonitor
from kafkaops.ops.monitor_facts import ABSENT, ADMIN, ZOOKEEPER, FactModel, Facts, event_sources

SETTLE = 3.0
DOWN = ["BrokerDown", "IsrShrunk", "UnderReplicated"]
UP = ["BrokerUp", "IsrExpanded", "Recovered"]


class Model:
    """A FactModel and the events its snapshots diff into, as the monitor publishes them."""

    def __init__(self, zk: bool = True) -> None:
        self.now = 0.0
        self.model = FactModel(zookeeper=zk, settle=SETTLE, clock=lambda: self.now)
        self.health: ClusterHealth | None = None
        self.events: list[Event] = []

    def feed(self, source: str, facts: list[tuple[Any, Any]], **meta: Any) -> list[str]:
        """Merge one Facts; returns the types of the events it caused."""
        changed: dict[Any, str] = {}
        self.model.merge(Facts(source, facts, **meta), changed)
        new: list[Event] = []
        if self.health is None or changed:
            snap = self.model.build()
            new = diff_health(self.health, snap, sources=event_sources(changed))
            self.health = snap
            self.events += new
        return [e.type for e in new]

    def zk(self, facts: list[tuple[Any, Any]], **meta: Any) -> list[str]:
        brokers = {k[1]: v for k, v in facts if k[0] == "broker"}
        rest = [(k, v) for k, v in facts if k[0] != "broker"]
        live = frozenset(b for b, alive in brokers.items() if alive) if brokers else None
        return self.feed(ZOOKEEPER, rest, live_brokers=live, **meta)

    def admin(self, origin: int | None, facts: list[tuple[Any, Any]], after: float = 0.5) -> list[str]:
        """One Admin poll answered by broker ``origin``, ``after`` seconds after the previous one."""
        self.now += after
        return self.feed(ADMIN, facts, origin=origin)


def cluster(alive: dict[int, bool], isr: tuple[int, ...], leader: int = 1) -> list[tuple[Any, Any]]:
    facts: list[tuple[Any, Any]] = [(("broker", b), a) for b, a in alive.items()]
    facts += [(("controller",), 1), (("replicas", "t", 0), (1, 2, 3)), (("state", "t", 0), (leader, isr)), (("min_isr", "t"), 2)]
    return facts


HEALTHY = cluster({1: True, 2: True, 3: True}, (1, 2, 3))
THREE_DOWN = cluster({1: True, 2: True, 3: False}, (1, 2))


def test_zookeeper_first_then_admin_catches_up_no_duplicates() -> None:
    m = Model()
    m.zk([f for f in HEALTHY if f[0][0] != "min_isr"])
    for origin in (1, 2):
        m.admin(origin, HEALTHY)
    assert m.events == [] and m.health is not None and m.health.counts.total == 1
    # ZooKeeper sees broker 3 go and the ISR shrink
    assert m.zk([(("broker", 1), True), (("broker", 2), True), (("broker", 3), False)]) == ["BrokerDown"]
    assert m.zk([(("state", "t", 0), (1, (1, 2)))]) == ["IsrShrunk", "UnderReplicated"]
    assert all(e.source == ZOOKEEPER for e in m.events)
    # admin metadata lags: still the old view, then the same change, from each broker
    for origin in (1, 2, 1, 2):
        m.admin(origin, HEALTHY if origin == 2 else THREE_DOWN)
    for origin in (2, 1, 2):
        m.admin(origin, THREE_DOWN)
    assert len(m.events) == 3, [e.type for e in m.events]


def test_admin_follows_one_brokers_transitions_and_ignores_lagging_brokers() -> None:
    m = Model(zk=False)
    for origin in (1, 2):
        m.admin(origin, HEALTHY)
    assert m.admin(1, THREE_DOWN) == DOWN  # broker 1's own metadata moved: a real change
    assert all(e.source == ADMIN for e in m.events)
    # broker 2 lags and answers the old view again and again: no transition there, no event
    # (comparing broker 2's view with broker 1's would report broker 3 back up, then down again)
    for origin in (2, 2, 1, 2, 2, 1):
        m.admin(origin, HEALTHY if origin == 2 else THREE_DOWN)
    assert m.admin(2, THREE_DOWN) == []  # broker 2 catches up: the model is there already
    assert m.admin(1, HEALTHY) == UP  # broker 3 is back
    assert m.admin(2, THREE_DOWN) == []  # broker 2 did not transition
    assert [e.type for e in m.events] == DOWN + UP


def test_a_restarted_brokers_views_start_over() -> None:
    m = Model(zk=False)
    for origin in (1, 2, 3):
        m.admin(origin, HEALTHY)
    assert m.admin(1, THREE_DOWN) == DOWN
    assert m.admin(1, cluster({1: True, 2: True, 3: True}, (1, 2))) == ["BrokerUp"]
    assert m.admin(1, HEALTHY) == ["IsrExpanded", "Recovered"]
    # broker 3's first answer after its restart: its ISR view is behind broker 1's; the
    # change from its view before it died is no transition of the cluster
    assert m.admin(3, cluster({1: True, 2: True, 3: True}, (1, 2))) == []
    assert m.admin(3, HEALTHY) == []
    assert [e.type for e in m.events] == DOWN + UP


def test_a_value_one_broker_keeps_showing_is_taken_after_the_settle_time() -> None:
    m = Model(zk=False)
    stale = cluster({1: True, 2: True, 3: True}, (1, 2))
    m.admin(1, stale)  # the first answer comes from a broker that has not caught up
    assert m.health is not None and m.health.counts.under_replicated == 1
    # broker 1 dies before its cache catches up; the client asks broker 2 from now on
    assert m.admin(2, cluster({1: True, 2: True, 3: True}, (1, 2, 3))) == []  # a first view: no transition
    assert m.admin(2, cluster({1: True, 2: True, 3: True}, (1, 2, 3)), after=SETTLE / 2) == []
    assert m.admin(2, cluster({1: True, 2: True, 3: True}, (1, 2, 3)), after=SETTLE / 2) == ["IsrExpanded", "Recovered"]


def test_a_broker_asked_first_after_a_change_reports_it_after_the_settle_time() -> None:
    m = Model(zk=False)
    m.admin(3, HEALTHY)  # the client's broker is the one that dies
    # the client's next answer comes from broker 1, whose metadata already shows broker 3 gone
    assert m.admin(1, THREE_DOWN, after=8.0) == []
    assert m.admin(1, THREE_DOWN, after=SETTLE) == DOWN
    assert m.admin(1, THREE_DOWN) == []


def test_a_lagging_brokers_old_view_does_not_win_back_when_zookeeper_goes_away() -> None:
    m = Model()
    m.zk(HEALTHY)
    m.admin(1, HEALTHY)
    assert m.zk([(("broker", 1), True), (("broker", 2), True), (("broker", 3), False)]) == ["BrokerDown"]
    m.admin(1, HEALTHY, after=SETTLE * 2)  # broker 1's metadata lags behind ZooKeeper
    assert m.zk([], connected=False) == []
    assert m.admin(1, HEALTHY) == []  # shown long before, but not since ZooKeeper went away
    assert m.admin(1, cluster({1: True, 2: True, 3: False}, (1, 2, 3))) == []  # broker 1 catches up
    assert [e.type for e in m.events] == ["BrokerDown"]


def test_admin_takes_over_while_zookeeper_is_disconnected_and_a_fresh_read_wins_back() -> None:
    m = Model()
    m.zk(HEALTHY)
    m.admin(1, HEALTHY)
    assert m.zk([], connected=False) == []
    assert m.admin(1, THREE_DOWN) == DOWN
    # ZooKeeper reconnects and reads the same facts afresh: nothing new
    assert m.zk(THREE_DOWN, connected=True) == []
    assert len(m.events) == 3


def test_zookeeper_reconnect_does_not_replay_its_view_from_before_the_disconnect() -> None:
    m = Model()
    m.zk(HEALTHY)
    m.admin(1, HEALTHY)
    assert m.zk([(("broker", 1), True), (("broker", 2), True), (("broker", 3), False)]) == ["BrokerDown"]
    assert m.zk([(("state", "t", 0), (1, (1, 2)))]) == ["IsrShrunk", "UnderReplicated"]
    m.admin(1, THREE_DOWN)
    m.zk([], connected=False)
    assert m.admin(1, HEALTHY) == UP  # broker 3 returned while ZooKeeper was away
    # back: the fresh read agrees with the model; the old view (broker 3 down) is not replayed
    assert m.zk(HEALTHY, connected=True) == []
    assert [e.type for e in m.events] == DOWN + UP
    # a watch that fires late with what the fresh read saw changes nothing either
    assert m.zk([(("state", "t", 0), (1, (1, 2, 3)))]) == []


def test_zookeeper_is_authoritative_while_connected() -> None:
    m = Model()
    m.zk(HEALTHY)
    m.admin(1, HEALTHY)
    for _ in range(3):
        m.admin(1, THREE_DOWN)
        m.admin(1, HEALTHY)
    assert m.events == []
    assert m.health is not None and m.health.partitions[("t", 0)].min_isr == 2  # admin fills what ZooKeeper does not watch


def test_deleted_topic_is_not_resurrected_by_lagging_metadata() -> None:
    m = Model()
    m.zk(HEALTHY)
    m.zk([(("replicas", "t", 0), ABSENT), (("state", "t", 0), ABSENT)])
    assert m.health is not None and m.health.counts.total == 0
    stale = cluster({1: True, 2: True, 3: True}, (1, 2))
    m.admin(1, stale)
    m.admin(1, stale)
    assert m.health.counts.total == 0 and m.events == []


def test_a_topic_gone_from_a_brokers_metadata_is_deleted() -> None:
    m = Model(zk=False)
    m.admin(1, HEALTHY)
    assert m.health is not None and m.health.counts.total == 1
    m.admin(1, [f for f in HEALTHY if f[0][0] not in ("replicas", "state")])
    assert m.health.counts.total == 0 and m.events == []


def metadata(orig_id: int, orig_name: str, brokers: dict[int, int]) -> Any:
    return SimpleNamespace(
        orig_broker_id=orig_id,
        orig_broker_name=orig_name,
        brokers={i: SimpleNamespace(id=i, host="127.0.0.1", port=p) for i, p in brokers.items()},
    )


def test_answering_broker_is_found_by_id_or_by_the_bootstrap_address() -> None:
    assert answering_broker(metadata(2, "127.0.0.1:9093/2", {1: 9092, 2: 9093})) == 2
    assert answering_broker(metadata(-1, "127.0.0.1:9093/bootstrap", {1: 9092, 2: 9093})) == 2
    assert answering_broker(metadata(-1, "sasl_ssl://127.0.0.1:9093/bootstrap", {2: 9093})) == 2
    assert answering_broker(metadata(-1, "10.0.0.9:9092/bootstrap", {1: 9092})) == "10.0.0.9:9092/bootstrap"


def test_where_the_zookeeper_source_reads() -> None:
    zk = ZooKeeperSettings("zk1:2181", kafka_chroot="/kafka")
    profile = ClusterProfile("b:9092", zookeeper=zk)
    assert ReplicaMonitor(profile).zk_connect == "zk1:2181/kafka"
    assert ReplicaMonitor(profile, kafka_chroot="/other").zk_connect == "zk1:2181/other"
    assert ReplicaMonitor(ClusterProfile("b:9092", zookeeper=ZooKeeperSettings("zk1:2181", kafka_chroot=None))).zk_connect is None
    assert ReplicaMonitor("b:9092").zk_connect is None
    old = ReplicaMonitor("b:9092", zk_connect="zk2:2181,zk3:2181/kafka")
    assert (old.kafka_chroot, old.zk_connect, old.bootstrap_servers) == ("/kafka", "zk2:2181,zk3:2181/kafka", "b:9092")
    assert ReplicaMonitor(zk_connect="zk2:2181").kafka_chroot == "/"
    with pytest.raises(MonitorError, match="bootstrap servers, a ZooKeeper"):
        ReplicaMonitor()
    with pytest.raises(MonitorError, match="kafka_chroot needs a ZooKeeper"):
        ReplicaMonitor("b:9092", kafka_chroot="/kafka")
    with pytest.raises(MonitorError, match="absolute"):
        ReplicaMonitor(profile, kafka_chroot="kafka")
    with pytest.raises(MonitorError, match="connect string"):
        ReplicaMonitor(zk_connect="/kafka")
    with pytest.raises(MonitorError, match="poll interval"):
        ReplicaMonitor(profile, poll_interval=0)
