"""ClusterHealth counts and the pure diff that turns two models into events."""

from __future__ import annotations

from kafkaops.ops.events import (
    BrokerDown,
    BrokerUp,
    ControllerChanged,
    Event,
    IsrExpanded,
    IsrShrunk,
    LeaderChanged,
    PartitionOffline,
    Recovered,
    UnderMinIsr,
    UnderReplicated,
    diff_health,
)
from kafkaops.ops.health import BrokerHealth, ClusterHealth, build_health

LIVE3 = {1: ("h", 1), 2: ("h", 2), 3: ("h", 3)}


def health(live: dict[int, tuple[str, int]], rows: list[tuple[str, int, int, list[int], list[int]]], controller: int | None = 1) -> ClusterHealth:
    return build_health(live, controller, rows, {"t": 2}, timestamp=100.0)


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def test_counts_and_status() -> None:
    h = health(
        {1: ("h", 1), 2: ("h", 2)},
        [
            ("t", 0, 1, [1, 2, 3], [1, 2]),  # under-replicated
            ("t", 1, 2, [2, 3, 1], [2]),  # under min ISR, not preferred leader... (2 is preferred)
            ("t", 2, -1, [3, 1, 2], []),  # offline
            ("t", 3, 2, [1, 2, 3], [1, 2, 3]),  # healthy but leader not preferred
        ],
    )
    c = h.counts
    assert (c.total, c.under_replicated, c.under_min_isr, c.offline) == (4, 3, 2, 1)
    assert c.preferred_leader_imbalance == 1
    assert h.dead_brokers == {3} and h.live_brokers == {1, 2}
    assert [p.status for _, p in sorted(h.partitions.items())] == ["under_replicated", "under_min_isr", "offline", "ok"]
    doc = h.to_json()
    assert doc["partitions"]["under_replicated"] == 3 and doc["controller_id"] == 1
    assert [b["alive"] for b in doc["brokers"]] == [True, True, False]


def test_topics_known_brokers_and_brokers_known_to_be_down() -> None:
    h = build_health({1: ("h", 1), 2: ("h", 2)}, 1, [("a", 0, 1, [1, 2], [1, 2]), ("b", 0, 2, [2, 1], [1, 2])],
                     known_brokers={3: ("h", 3)}, addresses={3: ("h", 3)}, timestamp=100.0)
    assert h.topics == {"a", "b"} and h.to_json()["topics"] == 2
    assert h.brokers[3] == BrokerHealth(3, False, "h", 3)  # known, not in metadata: dead, with its address
    stopped = h.with_dead([2])
    assert stopped.live_brokers == {1} and stopped.dead_brokers == {2, 3}
    assert stopped.brokers[2] == BrokerHealth(2, False, "h", 2) and stopped.partitions == h.partitions
    assert h.live_brokers == {1, 2}  # the original is unchanged


def test_first_snapshot_has_no_events() -> None:
    assert diff_health(None, health(LIVE3, [("t", 0, 1, [1, 2, 3], [1])])) == []


def test_broker_kill_and_return_sequence() -> None:
    ok = health(LIVE3, [("t", 0, 3, [3, 1, 2], [1, 2, 3])])
    down = health({1: ("h", 1), 2: ("h", 2)}, [("t", 0, 3, [3, 1, 2], [1, 2, 3])])
    shrunk = health({1: ("h", 1), 2: ("h", 2)}, [("t", 0, 1, [3, 1, 2], [1, 2])])
    up = health(LIVE3, [("t", 0, 1, [3, 1, 2], [1, 2])])
    back = health(LIVE3, [("t", 0, 1, [3, 1, 2], [1, 2, 3])])
    assert diff_health(ok, down) == [BrokerDown(3, timestamp=100.0)]
    ev = diff_health(down, shrunk)
    assert types(ev) == ["LeaderChanged", "IsrShrunk", "UnderReplicated"]
    assert ev[0] == LeaderChanged("t", 0, 3, 1, timestamp=100.0)
    assert ev[1] == IsrShrunk("t", 0, (1, 2), (3,), timestamp=100.0)
    assert diff_health(shrunk, up) == [BrokerUp(3, timestamp=100.0)]
    ev = diff_health(up, back)
    assert ev == [IsrExpanded("t", 0, (1, 2, 3), (3,), timestamp=100.0), Recovered("t", 0, (3, 1, 2), timestamp=100.0)]
    assert diff_health(back, back) == []


def test_offline_under_min_isr_and_controller() -> None:
    a = health(LIVE3, [("t", 0, 1, [1, 2, 3], [1, 2])], controller=1)
    b = health(LIVE3, [("t", 0, -1, [1, 2, 3], [1])], controller=2)
    ev = diff_health(a, b, sources={("controller",): "zookeeper", ("partition", "t", 0): "admin"})
    assert types(ev) == ["ControllerChanged", "LeaderChanged", "IsrShrunk", "UnderMinIsr", "PartitionOffline"]
    assert ev[0] == ControllerChanged(1, 2, timestamp=100.0, source="zookeeper")
    assert all(e.source == "admin" for e in ev[1:])
    assert isinstance(ev[3], UnderMinIsr) and ev[3].min_isr == 2
    assert isinstance(ev[4], PartitionOffline)
    # still bad: no repeated condition events
    c = health(LIVE3, [("t", 0, -1, [1, 2, 3], [1])], controller=2)
    assert diff_health(b, c) == []


def test_new_topic_reports_only_bad_conditions_and_deleted_topic_nothing() -> None:
    a = health(LIVE3, [])
    b = health(LIVE3, [("t", 0, 1, [1, 2, 3], [1, 2, 3]), ("t", 1, 1, [1, 2, 3], [1, 2])])
    assert diff_health(a, b) == [UnderReplicated("t", 1, (1, 2, 3), (1, 2), timestamp=100.0)]
    assert diff_health(b, a) == []


def test_reassignment_completion_recovers() -> None:
    moving = health(LIVE3 | {4: ("h", 4)}, [("t", 0, 1, [1, 2, 3, 4], [1, 2])])
    done = health(LIVE3 | {4: ("h", 4)}, [("t", 0, 1, [1, 2, 4], [1, 2, 4])])
    assert types(diff_health(moving, done)) == ["IsrExpanded", "Recovered"]


def test_event_json_has_type_subject_and_timestamp() -> None:
    doc = BrokerDown(3, timestamp=5.0, source="zookeeper").to_json()
    assert doc == {"type": "BrokerDown", "broker": 3, "timestamp": 5.0, "source": "zookeeper"}
    doc = UnderReplicated("t", 2, (1, 2, 3), (1, 2), timestamp=6.0).to_json()
    assert doc["type"] == "UnderReplicated" and doc["topic"] == "t" and doc["partition"] == 2
    assert list(doc["isr"]) == [1, 2]
