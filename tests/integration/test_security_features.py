"""Destructive features on a secured cluster of their own: the rolling-restart playbook (its
broker restarts, health gates, ZooKeeper lock and progress all through SASL) loses nothing,
and kafkaops' own clients ride through it: a broker going away mid-TLS-session or mid-handshake
is not mistaken for a refused connection.

(The other features run on both clusters by parametrization: typed round trip and DLQ on
the session clusters, checkpoint crash, monitor broker loss and auto-failover; see
tests/integration/conftest.py.)
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from kafkaops.admin import create_topic
from kafkaops.clients.consumer import TypedConsumer
from kafkaops.clients.producer import TypedProducer
from kafkaops.config import ClusterProfile
from kafkaops.coord.session import Coordinator
from kafkaops.local.cluster import LocalCluster
from kafkaops.serde.codec import JsonCodec
from kafkaops.testing.waits import wait_until
from tests.integration.test_playbook_runs import rolling_restart_loses_nothing

pytestmark = [pytest.mark.security, pytest.mark.destructive]


class TypedTraffic:
    """A TypedProducer and a TypedConsumer on one topic, each on its own thread, until stopped;
    whatever either raises is kept."""

    def __init__(self, profile: ClusterProfile, topic: str) -> None:
        self.profile, self.topic = profile, topic
        self.acked: set[int] = set()
        self.read: set[int] = set()
        self.errors: list[BaseException] = []
        self.stop, self.produced = threading.Event(), threading.Event()
        self.threads = [threading.Thread(target=self._guard, args=(f,), daemon=True) for f in (self._produce, self._consume)]

    def _guard(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)

    def _produce(self) -> None:
        with TypedProducer(self.profile, self.topic, JsonCodec(), config={"linger.ms": 5}) as producer:
            n = 0
            while not self.stop.is_set():
                producer.produce({"n": n}, on_delivery=lambda e, r, n=n: self.acked.add(n) if e is None else None)
                n += 1
                producer.poll(0.005)
            producer.flush(180)
        self.produced.set()

    def _consume(self) -> None:
        with TypedConsumer(self.profile, self.topic, f"g-{uuid.uuid4().hex[:6]}", JsonCodec(),
                           dead_letter=False) as consumer:
            while not (self.produced.is_set() and self.acked <= self.read) and not self.errors:
                record = consumer.poll(0.5)
                if record is not None:
                    self.read.add(record.value["n"])

    def __enter__(self) -> TypedTraffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(240)


def test_rolling_restart_of_a_secured_cluster_loses_nothing(
    cluster_factory: Callable[..., LocalCluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(brokers=3, secure=True, mode="zookeeper")
    topic = f"typed-roll-{uuid.uuid4().hex[:6]}"
    create_topic(cluster.profile, topic, 3, 3)
    with Coordinator(cluster.profile) as coord, TypedTraffic(cluster.profile, topic) as traffic:
        wait_until(lambda: len(traffic.read) >= 100 or bool(traffic.errors), 120, "typed records read back")
        rolling_restart_loses_nothing(cluster, coord, tmp_path / "audit.jsonl")
    assert traffic.errors == [], f"kafkaops' clients failed during the restarts: {traffic.errors}"
    assert not any(t.is_alive() for t in traffic.threads)
    assert len(traffic.acked) > 100 and traffic.acked <= traffic.read
