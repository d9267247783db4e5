"""Checkpoints on a 3-node ZooKeeper ensemble of the module's own: a 10 MB state round
trip, and checkpoints going on while the ensemble node the session uses is killed."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator

import pytest

from kafkaops.coord.checkpoints import CheckpointStore, FencedError
from kafkaops.coord.election import Leadership
from kafkaops.coord.session import Coordinator, NotWritableError
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.waits import wait_until

# Runs once, in the ZooKeeper-mode pass: the ensemble is kafkaops' coordination, the same
# beside either Kafka mode, and this module's cluster is its own (ZooKeeper mode).
pytestmark = pytest.mark.zookeeper_mode


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """ZooKeeper x3 (heap sized for 10 MB states) + 1 broker; the last test breaks it."""
    cluster = LocalCluster(tmp_path_factory.mktemp("coord-ensemble"), brokers=1, zookeepers=3,
                           zookeeper_heap_mb=384)
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.mark.destructive
def test_ten_megabyte_state_round_trip(ensemble: LocalCluster) -> None:
    """10 MB of incompressible state: chunked, written before the commit, read back
    byte-identical; a fenced writer leaves no chunks behind."""
    with Coordinator(ensemble.zk_hosts) as coord:
        store = CheckpointStore(coord)
        epoch = store.claim("big", "w")
        state = os.urandom(10 * 1024 * 1024)
        ckpt = store.save("big", {("t", 0): 1}, state, {"kind": "10MB"}, epoch=epoch)
        loaded = store.get("big", ckpt)
        assert loaded.info.chunks == 12 and loaded.info.state_size == len(state)
        assert hashlib.sha256(loaded.state or b"").digest() == hashlib.sha256(state).digest()
        # a fenced 10 MB save writes nothing, not even chunks
        store.claim("big", "someone-else")
        with pytest.raises(FencedError):
            store.save("big", {}, state, epoch=epoch)
        assert len(coord.client.get_children(store.job_path("big") + "/chunks")) == 12
        assert [i.id for i in store.list("big")] == [ckpt]


@pytest.mark.destructive
def test_leadership_given_up_when_suspended_past_the_session_timeout(ensemble: LocalCluster) -> None:
    """All of ZooKeeper freezes (SIGSTOP): the leader stops leading at once (SUSPENDED),
    fires on_lost after a session timeout, and its lock does not block a successor."""
    with Coordinator(ensemble.zk_hosts, timeout=4.0) as coord:
        lost = threading.Event()
        lead = Leadership(coord, "frozen", "p1", on_lost=lost.set)
        epoch = lead.acquire(timeout=10)
        for node in ensemble.zookeepers:
            ensemble.pause_zookeeper(node.id)
        try:
            wait_until(lambda: not lead.is_leader, 15, "suspension noticed")
            assert lost.wait(30), "on_lost did not fire while ZooKeeper was unreachable"
        finally:
            for node in ensemble.zookeepers:
                ensemble.resume_zookeeper(node.id)
        coord.wait_writable(90)
        with Coordinator(ensemble.zk_hosts) as other:
            successor = Leadership(other, "frozen", "p2")
            assert successor.acquire(timeout=60) > epoch
            assert not lead.is_leader and successor.leader() == "p2"
            successor.release()


@pytest.mark.destructive
def test_checkpoints_go_on_when_an_ensemble_node_dies(ensemble: LocalCluster) -> None:
    """3-node ZooKeeper ensemble: the node our session is connected to (possibly the
    quorum leader) is killed while a writer checkpoints continuously. The coordinator
    stops writing while SUSPENDED, moves to a survivor, and checkpoints go on with the
    same epoch; every acknowledged save is there and the latest is the last one."""
    cluster = ensemble
    with Coordinator(cluster.zk_hosts, timeout=10.0) as coord:
        states: list[str] = []
        writable: list[bool] = []

        def on_state(state: str) -> None:
            states.append(state)
            writable.append(coord.writable)

        coord.add_listener(on_state)
        store = CheckpointStore(coord)
        epoch = store.claim("ens", "w")
        saved: list[tuple[str, int]] = []
        stop = threading.Event()
        errors: list[BaseException] = []
        retried: list[BaseException] = []

        def writer() -> None:
            i = 0
            while not stop.is_set():
                try:
                    saved.append((store.save("ens", {("t", 0): i}, str(i).encode(), epoch=epoch), i))
                    i += 1
                except NotWritableError as exc:  # ZooKeeper unavailable for a moment: retry, as apps do
                    retried.append(exc)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                    return

        t = threading.Thread(target=writer)
        t.start()
        try:
            wait_until(lambda: len(saved) >= 20, 30, "first checkpoints")
            port = coord.client._connection._socket.getpeername()[1]
            victim = next(n for n in cluster.zookeepers if n.port == port)
            cluster.kill_zookeeper(victim.id)
            before = len(saved)
            wait_until(lambda: len(saved) >= before + 50 or bool(errors), 90, "checkpoints after the kill")
        finally:
            stop.set()
            t.join(60)
        assert not errors, errors
        assert "SUSPENDED" in states and states[-1] == "CONNECTED", states
        assert [w for st, w in zip(states, writable) if st != "CONNECTED"] == [False] * (
            len(states) - states.count("CONNECTED"))
        assert coord.writable and len(retried) < 10
        latest = store.latest("ens")
        assert latest is not None and (latest.id, int(latest.state or b"-1")) == saved[-1]
        ids = {i.id for i in store.list("ens")}
        assert {s[0] for s in saved} <= ids  # every acknowledged save is there
        assert [int(store.get("ens", i).state or b"-1") for i, _ in saved[-5:]] == [v for _, v in saved[-5:]]
