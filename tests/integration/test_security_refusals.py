"""Refusals on the secured cluster: each one a clear error naming its cause, within 15 s.

Kafka: a plaintext client on the SASL_SSL port, a wrong password, an unknown user, a client
that does not trust the CA, an expired certificate (a TLS endpoint presenting one made by
the cluster's CA), each seen by ``check_connection``, a TypedProducer, a TypedConsumer and
an Admin API helper. Authorization: users without ACLs, and a producer granted Write on one
topic only. ZooKeeper: a wrong SASL password, and an anonymous client that may read but not
write Kafka's znodes nor kafkaops' own.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from kafkaops.admin import create_topic
from kafkaops.clients.connection import (
    AuthenticationFailed,
    AuthorizationFailed,
    ConnectionRefused,
    ProtocolMismatch,
    TlsVerificationFailed,
    check_connection,
)
from kafkaops.clients.consumer import TypedConsumer
from kafkaops.clients.producer import DeliveryError, TypedProducer
from kafkaops.config import ClusterProfile, KafkaSecurity, Secret
from kafkaops.coord.checkpoints import POINTER, CheckpointStore
from kafkaops.coord.session import Coordinator, CoordinatorError
from kafkaops.local.cluster import LocalCluster
from kafkaops.security.acls import Acl, consumer_acls, create_acls, delete_acls
from kafkaops.security.users import add_user, remove_user
from kafkaops.serde.codec import JsonCodec
from kafkaops.testing.plugin import TopicFactory

pytestmark = pytest.mark.security

REFUSAL_BOUND = 15.0
"""The issue's bound: a refusal is reported within 15 s, not after minutes of retries."""


@pytest.fixture(scope="module")
def expired_endpoint(secure_kafka_cluster: LocalCluster) -> Iterator[str]:
    """host:port of a TLS endpoint presenting an expired certificate signed by the cluster's CA."""
    security = secure_kafka_cluster.security
    assert security is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(security.keystore("endpoint", expired=True))
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass  # the client refused our certificate: that is the point

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _security(p: ClusterProfile, **changes: Any) -> ClusterProfile:
    return dataclasses.replace(p, security=dataclasses.replace(p.security, **changes))


CASES: dict[str, tuple[type[ConnectionRefused], str]] = {
    "plaintext-on-sasl-ssl": (ProtocolMismatch, "protocol mismatch"),
    "wrong-password": (AuthenticationFailed, "authentication failed for mechanism SCRAM-SHA-512 as user 'admin'"),
    "unknown-user": (AuthenticationFailed, "authentication failed for mechanism SCRAM-SHA-512 as user 'ghost'"),
    "untrusted-ca": (TlsVerificationFailed, "TLS verification failed"),
    "expired-certificate": (TlsVerificationFailed, "TLS verification failed at 127.0.0.1:\\d+: certificate has expired"),
}


def _profile(case: str, admin: ClusterProfile, expired: str) -> ClusterProfile:
    if case == "plaintext-on-sasl-ssl":
        return dataclasses.replace(admin, security=KafkaSecurity())
    if case == "wrong-password":
        return _security(admin, password=Secret("not-the-password"))
    if case == "unknown-user":
        return _security(admin, username="ghost")
    if case == "untrusted-ca":
        return _security(admin, ca_file=None)  # the system's CAs: they never signed the cluster's certificates
    return admin.with_bootstrap(expired)


def _produce(p: ClusterProfile) -> object:
    with TypedProducer(p, "refusal-test", JsonCodec()) as producer:
        return producer.produce({"n": 1}).result(60)


def _consume(p: ClusterProfile) -> object:
    with TypedConsumer(p, "refusal-test", f"g-{uuid.uuid4().hex[:6]}", JsonCodec(), dead_letter=False) as consumer:
        return consumer.poll(60)


CLIENTS: dict[str, Callable[[ClusterProfile], object]] = {
    "check_connection": lambda p: check_connection(p, timeout=60),
    "TypedProducer": _produce,
    "TypedConsumer": _consume,
    "create_topic": lambda p: create_topic(p, f"refused-{uuid.uuid4().hex[:6]}", 1, 1, timeout=60),
}


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("case", list(CASES))
def test_refusal_is_named_within_seconds(
    secure_kafka_cluster: LocalCluster, expired_endpoint: str, case: str, client: str
) -> None:
    """Every client gives up at once with the one error that names the cause (the clients'
    own timeouts are 60 s: only the classification can end them sooner)."""
    kind, message = CASES[case]
    profile = _profile(case, secure_kafka_cluster.profile, expired_endpoint)
    t0 = time.monotonic()
    with pytest.raises(kind, match=message) as info:
        CLIENTS[client](profile)
    took = time.monotonic() - t0
    print(f"\n{case} / {client}: {took:.2f}s: {info.value}")
    assert took < REFUSAL_BOUND, f"{case} took {took:.1f}s"
    assert "not-the-password" not in str(info.value)


def test_a_user_without_acls_is_denied_by_name(
    secure_kafka_cluster: LocalCluster, secure_kafka_topic: TopicFactory
) -> None:
    """Authenticated but authorized for nothing: writing names the topic, reading the group;
    a group ACL alone gets as far as the topic, which is named next."""
    admin = secure_kafka_cluster.profile
    topic = secure_kafka_topic(partitions=1, prefix="noacl")
    user, group = f"nobody-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    add_user(admin, user, "nobody-password")
    me = _security(admin, username=user, password=Secret("nobody-password"))
    try:
        check_connection(me, timeout=30)  # the credentials are good: authentication passes
        producer = TypedProducer(me, topic, JsonCodec())
        # which refusal comes first is librdkafka's race: the topic's (a failed delivery) or the
        # idempotent producer ID's (a fatal error); each names the principal's topic
        with pytest.raises((DeliveryError, AuthorizationFailed), match=f"{topic}.*AUTHORIZATION_FAILED"):
            producer.produce({"n": 1}).result(30)
        consumer = TypedConsumer(me, topic, group, JsonCodec(), dead_letter=False)
        with pytest.raises(AuthorizationFailed, match=f"User:{user} may not read group '{group}'"):
            with consumer:
                consumer.poll(30)
        create_acls(admin, [Acl(user, "group", group, "read")])
        consumer = TypedConsumer(me, topic, group, JsonCodec(), dead_letter=False)
        t0 = time.monotonic()
        with pytest.raises(AuthorizationFailed, match=f"User:{user} may not read topic '{topic}'"):
            with consumer:
                consumer.poll(30)
        assert time.monotonic() - t0 < REFUSAL_BOUND
    finally:
        delete_acls(admin, [Acl(user, "group", group, "read")])
        remove_user(admin, user)


def test_a_producer_granted_write_on_one_topic_can_do_nothing_else(
    secure_kafka_cluster: LocalCluster, secure_kafka_topic: TopicFactory
) -> None:
    admin = secure_kafka_cluster.profile
    orders, payments = secure_kafka_topic(partitions=1, prefix="orders"), secure_kafka_topic(partitions=1, prefix="payments")
    user, group = f"svc-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    add_user(admin, user, "svc-password-1")
    only_write = [Acl(user, "topic", orders, "write")]
    create_acls(admin, only_write)
    me = _security(admin, username=user, password=Secret("svc-password-1"))
    try:
        with TypedProducer(me, orders, JsonCodec()) as producer:  # idempotent: Write on a topic suffices (KIP-679)
            report = producer.produce({"n": 1}).result(30)
            assert report.topic == orders and report.offset == 0
            with pytest.raises(DeliveryError, match=f"delivery to {payments}.*TOPIC_AUTHORIZATION_FAILED"):
                producer.produce({"n": 2}, topic=payments).result(30)
        create_acls(admin, [Acl(user, "group", group, "read")])  # a group it may use: the topic is what it lacks
        consumer = TypedConsumer(me, orders, group, JsonCodec(), dead_letter=False)
        with pytest.raises(AuthorizationFailed, match=f"may not read topic '{orders}'"):
            with consumer:
                consumer.poll(30)
        # what a consumer needs, granted in one call, makes the same read work
        create_acls(admin, consumer_acls(user, orders, group))
        with TypedConsumer(me, orders, group, JsonCodec(), dead_letter=False) as consumer:
            record = consumer.poll(60)
        assert record is not None and record.value == {"n": 1}
    finally:
        delete_acls(admin, [*only_write, *consumer_acls(user, orders, group)])
        remove_user(admin, user)


def test_zookeeper_wrong_password_fails_at_start_naming_the_user(secure_kafka_cluster: LocalCluster) -> None:
    zk = secure_kafka_cluster.profile.zookeeper
    assert zk is not None
    bad = dataclasses.replace(zk, sasl_password=Secret("wrong-zk-password"))
    t0 = time.monotonic()
    with pytest.raises(CoordinatorError, match="ZooKeeper authentication failed for SASL user 'kafkaops'") as info:
        Coordinator(bad).start()
    assert time.monotonic() - t0 < REFUSAL_BOUND
    assert "wrong-zk-password" not in str(info.value)


def test_anonymous_zookeeper_client_reads_but_cannot_write(secure_kafka_cluster: LocalCluster) -> None:
    """Kafka's znodes belong to the brokers (zookeeper.set.acl) and kafkaops' to its SASL identity:
    an anonymous session may read them (the monitor's view) but not change, delete or add to them."""
    profile = secure_kafka_cluster.profile
    job = f"job-{uuid.uuid4().hex[:6]}"
    with Coordinator(profile) as coord:  # kafkaops' own znodes, written as sasl:kafkaops
        store = CheckpointStore(coord)
        store.save(job, {("t", 0): 5}, b"state", epoch=store.claim(job, "owner"))
        checkpoint = coord.path("checkpoints", job)
    chroot = secure_kafka_cluster.chroot
    anonymous = KazooClient(hosts=secure_kafka_cluster.zk_hosts)
    anonymous.start(timeout=15)
    try:
        assert sorted(anonymous.get_children(f"{chroot}/brokers/ids")) == ["1", "2", "3"]  # reading is allowed
        assert anonymous.get_children(checkpoint)
        writes: list[tuple[str, Callable[[], object]]] = [
            ("change a broker registration", lambda: anonymous.set(f"{chroot}/brokers/ids/1", b"{}")),
            ("delete the controller", lambda: anonymous.delete(f"{chroot}/controller")),
            ("add a SCRAM user", lambda: anonymous.create(f"{chroot}/config/users/mallory", b"{}")),
            ("add a topic", lambda: anonymous.create(f"{chroot}/brokers/topics/evil", b"{}")),
            ("rewrite a checkpoint pointer", lambda: anonymous.set(f"{checkpoint}/{POINTER}", b"ckpt-0000000000")),
            ("delete a job's checkpoints", lambda: anonymous.delete(checkpoint, recursive=True)),
            ("squat a job name", lambda: anonymous.create(profile.zookeeper.root + "/checkpoints/squat", b"")),  # type: ignore[union-attr]
            ("register a schema", lambda: anonymous.create(profile.zookeeper.root + "/schemas/evil", b"", makepath=True)),  # type: ignore[union-attr]
        ]
        allowed = []
        for what, write in writes:
            try:
                write()
                allowed.append(what)
            except NoAuthError:
                pass
        assert allowed == [], f"an anonymous ZooKeeper client could {allowed}"
    finally:
        anonymous.stop()
        anonymous.close()
