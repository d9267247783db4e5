"""The monitor's merge of two sources into one model: each change is emitted once.

These drive the monitor's worker-side merge directly with facts (no threads, no
cluster): the rules are pure logic. Cluster behaviour is covered in
tests/integration/test_monitor_*.py.
"""

from __future__ import annotations

from typing import Any

from kafkaops.ops.events import Event
from kafkaops.ops.monitor import ABSENT, ADMIN, ZOOKEEPER, ReplicaMonitor, _Facts


def make(zk: bool = True) -> tuple[ReplicaMonitor, list[Event]]:
    mon = ReplicaMonitor("127.0.0.1:1", "127.0.0.1:2/kafka" if zk else None)
    mon._zk_ready = mon._admin_ready = True
    mon._zk_connected = zk
    seen: list[Event] = []
    mon.subscribe(seen.append)
    return mon, seen


def feed(mon: ReplicaMonitor, source: str, facts: list[tuple[Any, Any]], full: bool = False) -> None:
    changed: dict[Any, str] = {}
    mon._merge(_Facts(source, facts, full_view=full), changed)
    mon._publish(changed)


def cluster(alive: dict[int, bool], isr: tuple[int, ...], leader: int = 1) -> list[tuple[Any, Any]]:
    facts: list[tuple[Any, Any]] = [(("broker", b), a) for b, a in alive.items()]
    facts += [(("controller",), 1), (("replicas", "t", 0), (1, 2, 3)), (("state", "t", 0), (leader, isr)), (("min_isr", "t"), 2)]
    return facts


def test_zookeeper_first_then_admin_catches_up_no_duplicates() -> None:
    mon, seen = make()
    healthy = cluster({1: True, 2: True, 3: True}, (1, 2, 3))
    feed(mon, ZOOKEEPER, [f for f in healthy if f[0][0] != "min_isr"])
    feed(mon, ADMIN, healthy, full=True)
    assert seen == [] and mon.snapshot().counts.total == 1
    # ZooKeeper sees broker 3 go and the ISR shrink
    feed(mon, ZOOKEEPER, [(("broker", 1), True), (("broker", 2), True), (("broker", 3), False)])
    feed(mon, ZOOKEEPER, [(("state", "t", 0), (1, (1, 2)))])
    assert [e.type for e in seen] == ["BrokerDown", "IsrShrunk", "UnderReplicated"]
    assert all(e.source == ZOOKEEPER for e in seen)
    # admin metadata lags: still the old view, then the same change twice
    feed(mon, ADMIN, healthy, full=True)
    down = cluster({1: True, 2: True, 3: False}, (1, 2))
    feed(mon, ADMIN, down, full=True)
    feed(mon, ADMIN, down, full=True)
    assert len(seen) == 3, [e.type for e in seen]


def test_admin_alone_needs_two_agreeing_polls_and_then_emits_once() -> None:
    mon, seen = make(zk=False)
    feed(mon, ADMIN, cluster({1: True, 2: True, 3: True}, (1, 2, 3)), full=True)
    down = cluster({1: True, 2: True, 3: False}, (1, 2))
    stale = cluster({1: True, 2: True, 3: True}, (1, 2, 3))
    feed(mon, ADMIN, down, full=True)
    assert seen == []  # one broker's metadata might be ahead or behind the others
    feed(mon, ADMIN, stale, full=True)  # flapping between brokers' caches: nothing
    assert seen == []
    feed(mon, ADMIN, down, full=True)
    feed(mon, ADMIN, down, full=True)
    assert [e.type for e in seen] == ["BrokerDown", "IsrShrunk", "UnderReplicated"]
    assert all(e.source == ADMIN for e in seen)
    feed(mon, ADMIN, down, full=True)
    assert len(seen) == 3


def test_admin_takes_over_while_zookeeper_is_disconnected_and_zookeeper_wins_back() -> None:
    mon, seen = make()
    healthy = cluster({1: True, 2: True, 3: True}, (1, 2, 3))
    feed(mon, ZOOKEEPER, healthy)
    mon._zk_connected = False
    down = cluster({1: True, 2: True, 3: False}, (1, 2))
    feed(mon, ADMIN, down, full=True)
    feed(mon, ADMIN, down, full=True)
    assert [e.type for e in seen] == ["BrokerDown", "IsrShrunk", "UnderReplicated"]
    # ZooKeeper reconnects and reports the same facts: nothing new
    mon._zk_connected = True
    changed: dict[Any, str] = {}
    feed(mon, ZOOKEEPER, down)
    mon._zk_reconnected(changed)
    mon._publish(changed)
    assert len(seen) == 3


def test_zookeeper_is_authoritative_while_connected() -> None:
    mon, seen = make()
    feed(mon, ZOOKEEPER, cluster({1: True, 2: True, 3: True}, (1, 2, 3)))
    wrong = cluster({1: True, 2: True, 3: False}, (1, 2))
    feed(mon, ADMIN, wrong, full=True)
    feed(mon, ADMIN, wrong, full=True)
    assert seen == []
    assert mon.snapshot().partitions[("t", 0)].min_isr == 2  # but admin fills what ZooKeeper does not watch


def test_deleted_topic_is_not_resurrected_by_lagging_metadata() -> None:
    mon, seen = make()
    feed(mon, ZOOKEEPER, cluster({1: True, 2: True, 3: True}, (1, 2, 3)))
    feed(mon, ZOOKEEPER, [(("replicas", "t", 0), ABSENT), (("state", "t", 0), ABSENT)])
    assert mon.snapshot().counts.total == 0
    stale = cluster({1: True, 2: True, 3: True}, (1, 2))
    feed(mon, ADMIN, stale, full=True)
    feed(mon, ADMIN, stale, full=True)
    assert mon.snapshot().counts.total == 0 and seen == []
