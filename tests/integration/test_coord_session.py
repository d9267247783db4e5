"""Coordinator and Leadership on the session's real ZooKeeper: ACLs, leadership hand-over,
loss detection, and recovery from a real session expiry."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from kafkaops.coord import expiry
from kafkaops.coord.checkpoints import CheckpointStore, FencedError
from kafkaops.coord.election import Leadership, LeadershipTimeout, current_epoch
from kafkaops.coord.session import Coordinator, CoordinatorError, ZnodePermissionError
from kafkaops.local.cluster import LocalCluster
from kafkaops.testing.waits import wait_until


def expire_session(coord: Coordinator) -> None:
    """Expire ``coord``'s session for real (the server expires it; the Coordinator sees it)."""
    expiry.expire_session(coord.hosts, coord.client.client_id)


@pytest.fixture
def root(kafka_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace root per test, deleted afterwards."""
    path = f"/kafkaops-test-{uuid.uuid4().hex[:8]}"
    yield path
    zk = kafka_cluster.kazoo()
    try:
        zk.add_auth("digest", "alice:wonderland")  # the identities the tests use
        zk.add_auth("digest", "bob:builder")
        zk.delete(path, recursive=True)
    finally:
        zk.stop()
        zk.close()


def test_unreachable_zookeeper_is_a_clear_error() -> None:
    with pytest.raises(CoordinatorError, match="not reachable"):
        Coordinator("127.0.0.1:1", timeout=2.0).start(timeout=2.0)


def test_shared_coordinator_is_one_client_per_process(kafka_cluster: LocalCluster, root: str) -> None:
    a = Coordinator.shared(kafka_cluster.zk_hosts, root)
    b = Coordinator.shared(kafka_cluster.zk_hosts, root)
    try:
        assert a is b and a.client is b.client and a.writable
        a.stop()
        assert b.writable  # still held by b
    finally:
        b.stop()
    assert not b.started


def test_digest_acl_lets_only_the_owner_write(kafka_cluster: LocalCluster, root: str) -> None:
    hosts = kafka_cluster.zk_hosts
    with Coordinator(hosts, root, auth=("alice", "wonderland")) as alice, \
            Coordinator(hosts, root, auth=("bob", "builder")) as bob, \
            Coordinator(hosts, root) as anonymous:
        store = CheckpointStore(alice)
        epoch = store.claim("alice-job", "alice-1")
        store.save("alice-job", {("t", 0): 5}, b"state", epoch=epoch)
        # bob and anonymous can read (not read_protected) but cannot write or claim
        assert CheckpointStore(anonymous).latest("alice-job").offsets == {("t", 0): 5}  # type: ignore[union-attr]
        with pytest.raises(ZnodePermissionError):
            CheckpointStore(bob).save("alice-job", {("t", 0): 9}, b"evil", epoch=epoch)
        with pytest.raises(ZnodePermissionError):
            CheckpointStore(bob).claim("alice-job", "bob-1")
        with pytest.raises(NoAuthError):
            anonymous.client.set(store.job_path("alice-job") + "/latest", b"ckpt-0000000099")
        # bob can still create his own jobs next to alice's (shared directories stay open)
        bob_store = CheckpointStore(bob)
        bob_store.save("bob-job", {}, b"b", epoch=bob_store.claim("bob-job", "bob-1"))
        assert store.latest("alice-job").state == b"state"  # type: ignore[union-attr]


def test_read_protected_znodes_are_private(kafka_cluster: LocalCluster, root: str) -> None:
    hosts = kafka_cluster.zk_hosts
    with Coordinator(hosts, root, auth=("alice", "wonderland"), read_protected=True) as alice, \
            Coordinator(hosts, root) as anonymous:
        store = CheckpointStore(alice)
        store.save("secret", {("t", 0): 1}, b"private", epoch=store.claim("secret", "a"))
        assert store.latest("secret").state == b"private"  # type: ignore[union-attr]
        with pytest.raises(ZnodePermissionError):
            CheckpointStore(anonymous).latest("secret")


def test_leadership_is_exclusive_and_epochs_grow(kafka_cluster: LocalCluster, root: str) -> None:
    hosts = kafka_cluster.zk_hosts
    with Coordinator(hosts, root) as c1, Coordinator(hosts, root) as c2:
        first = Leadership(c1, "monitor", "node-1")
        second = Leadership(c2, "monitor", "node-2")
        e1 = first.acquire(timeout=10)
        assert first.is_leader and first.leader() == "node-1"
        with pytest.raises(LeadershipTimeout, match="node-1"):
            second.acquire(timeout=1)
        got: list[int] = []
        waiter = threading.Thread(target=lambda: got.append(second.acquire(timeout=30)))
        waiter.start()
        time.sleep(0.3)
        assert not got  # still blocked while node-1 leads
        first.release()
        waiter.join(30)
        assert got and got[0] > e1 and second.is_leader and not first.is_leader
        assert current_epoch(c1, "monitor") == (got[0], "node-2")
        second.release()


def test_leadership_loss_fires_on_lost_when_lock_node_vanishes(kafka_cluster: LocalCluster, root: str) -> None:
    with Coordinator(kafka_cluster.zk_hosts, root) as coord:
        lost = threading.Event()
        lead = Leadership(coord, "playbooks", "runner-1", on_lost=lost.set)
        lead.acquire(timeout=10)
        (node,) = coord.client.get_children(lead.lock_path)
        coord.client.delete(f"{lead.lock_path}/{node}")  # an operator removes it
        assert lost.wait(10)
        assert not lead.is_leader


def test_session_expiry_recovers_and_fences_the_old_epoch(kafka_cluster: LocalCluster, root: str) -> None:
    """A real expiry: the coordinator goes LOST, gets a new session, runs its reconnect
    hooks; leadership is lost (on_lost) and re-acquired with a higher epoch; a write
    with the old epoch is fenced, writes with the new one land."""
    with Coordinator(kafka_cluster.zk_hosts, root) as coord:
        states: list[str] = []
        coord.add_listener(states.append)
        hook_ran = threading.Event()
        coord.add_reconnect_hook(hook_ran.set)
        lost, elected = threading.Event(), threading.Event()
        new_epochs: list[int] = []

        def on_elected(epoch: int) -> None:
            new_epochs.append(epoch)
            elected.set()

        lead = Leadership(coord, "agg", "worker-1", on_lost=lost.set, rejoin=True, on_elected=on_elected)
        old_epoch = lead.acquire(timeout=10)
        store = CheckpointStore(coord)
        store.save("agg", {("t", 0): 10}, b"before", epoch=old_epoch)
        old_session = coord.session_id

        expire_session(coord)

        assert lost.wait(30), f"leadership loss not noticed (states {states})"
        assert hook_ran.wait(30) and elected.wait(30)
        assert "LOST" in states and states[-1] == "CONNECTED"
        assert coord.writable and coord.session_id != old_session
        assert new_epochs[0] > old_epoch and lead.is_leader and lead.epoch == new_epochs[0]
        with pytest.raises(FencedError):
            store.save("agg", {("t", 0): 11}, b"zombie", epoch=old_epoch)
        store.save("agg", {("t", 0): 12}, b"after", epoch=new_epochs[0])
        latest = store.latest("agg")
        assert latest is not None and latest.state == b"after" and latest.offsets == {("t", 0): 12}
        assert [i.metadata for i in store.list("agg")] == [{}, {}]  # the zombie wrote nothing
        lead.release()


def test_release_cancels_a_pending_acquire(kafka_cluster: LocalCluster, root: str) -> None:
    """A standby blocked in acquire() stops waiting when released (e.g. at shutdown)."""
    with Coordinator(kafka_cluster.zk_hosts, root) as c1, Coordinator(kafka_cluster.zk_hosts, root) as c2:
        leader = Leadership(c1, "singleton", "a")
        leader.acquire(timeout=10)
        standby = Leadership(c2, "singleton", "b")
        outcome: list[BaseException] = []

        def wait_for_it() -> None:
            try:
                standby.acquire()
            except BaseException as exc:  # noqa: BLE001 - checked below
                outcome.append(exc)

        t = threading.Thread(target=wait_for_it)
        t.start()
        wait_until(lambda: len(c1.client.get_children(leader.lock_path)) == 2, 10, "standby contending")
        standby.release()
        t.join(10)
        assert not t.is_alive() and len(outcome) == 1 and isinstance(outcome[0], CoordinatorError)
        assert not standby.is_leader and leader.is_leader
        wait_until(lambda: len(c1.client.get_children(leader.lock_path)) == 1, 10, "standby's node gone")
        leader.release()


def test_coordinator_over_a_client_handed_in(kafka_cluster: LocalCluster, root: str) -> None:
    """Components that already hold a KazooClient can share it: the coordinator does not close it."""
    zk = KazooClient(hosts=kafka_cluster.zk_hosts)
    try:
        coord = Coordinator(kafka_cluster.zk_hosts, root, client=zk).start()
        assert coord.client is zk and zk.connected and coord.writable
        store = CheckpointStore(coord)
        store.save("shared", {("t", 0): 1}, None, epoch=store.claim("shared", "w"))
        coord.stop()
        assert zk.connected  # still the owner's
        assert zk.exists(f"{root}/checkpoints/shared/latest") is not None
    finally:
        zk.stop()
        zk.close()
