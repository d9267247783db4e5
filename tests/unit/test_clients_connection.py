"""Refusal classification (kafkaops.clients.connection) on librdkafka's own texts, and the
ZooKeeper ACLs kafkaops gives its znodes per identity."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from kafkaops.clients.connection import (
    AuthenticationFailed,
    AuthorizationFailed,
    ConnectionWatch,
    ProtocolMismatch,
    TlsVerificationFailed,
    authorization_error,
    classify,
    producer_denied,
)
from kafkaops.config import ClusterProfile, KafkaSecurity, Secret, ZooKeeperSettings
from kafkaops.coord.zk_auth import directory_acl, znode_acl

SASL = ClusterProfile("127.0.0.1:9093,127.0.0.1:9094", KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "svc", Secret("pw-123456")))
PLAIN = ClusterProfile("127.0.0.1:9093,127.0.0.1:9094")

# librdkafka 2.x texts, as seen against a secured local cluster
AUTH = ("sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed during "
        "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 228ms in state AUTH_REQ)")
UNTRUSTED = ("sasl_ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate "
             "verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly "
             "configured or root CA certificates are installed (install ca-certificates package) (after 4ms in state "
             "SSL_HANDSHAKE)")
CLOSED = ("[thrd:127.0.0.1:{port}/bootstrap]: 127.0.0.1:{port}/bootstrap: Disconnected: connection closed by peer: "
          "receive 0 after POLLIN (after 7ms in state APIVERSION_QUERY)")


def test_authentication_failure_names_mechanism_and_user_never_the_password() -> None:
    refusal = classify(AUTH, KafkaError._AUTHENTICATION, SASL)
    assert isinstance(refusal, AuthenticationFailed) and refusal.broker == "127.0.0.1:9093"
    assert str(refusal) == ("authentication failed for mechanism SCRAM-SHA-512 as user 'svc' at 127.0.0.1:9093: "
                            "invalid credentials (wrong password or unknown user)")
    assert "pw-123456" not in str(refusal)


def test_tls_failure_keeps_librdkafkas_reason_when_no_handshake_of_its_own_is_possible() -> None:
    # the broker address is not listening: the reason comes from librdkafka's text
    text = UNTRUSTED.replace("9094", "1")
    refusal = classify(text, KafkaError._SSL, SASL)
    assert isinstance(refusal, TlsVerificationFailed)
    assert str(refusal).startswith("TLS verification failed at 127.0.0.1:1: error:0A000086:SSL routines::certificate verify failed")


def test_a_tls_client_on_a_plaintext_listener_is_a_protocol_mismatch() -> None:
    text = ("sasl_ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A00010B:SSL routines::wrong version "
            "number: connecting to a PLAINTEXT broker listener? (after 2ms in state SSL_HANDSHAKE)")
    refusal = classify(text, KafkaError._SSL, SASL)
    assert isinstance(refusal, ProtocolMismatch) and "the listener is plaintext" in str(refusal)


def test_other_errors_are_not_refusals() -> None:
    closed = ("sasl_ssl://127.0.0.1:9093/1: SSL handshake failed: Disconnected: connection closed by peer "
              "(after 3ms in state SSL_HANDSHAKE)")  # a broker stopping mid-handshake: librdkafka retries
    assert classify(closed, KafkaError._SSL, SASL) is None
    assert classify("sasl_ssl://127.0.0.1:9093/1: Disconnected: SSL connection closed by peer (after 14709ms in "
                    "state UP)", KafkaError._TRANSPORT, SASL) is None
    assert classify("127.0.0.1:9093/1: Connect to ipv4#127.0.0.1:9093 failed: Connection refused", KafkaError._TRANSPORT,
                    SASL) is None
    assert classify("3/3 brokers are down", KafkaError._ALL_BROKERS_DOWN, SASL) is None


def test_a_tls_client_is_refused_as_on_plaintext_only_when_every_broker_reset_its_handshake() -> None:
    # librdkafka guesses "PLAINTEXT broker listener?" on any reset in the handshake: a broker
    # stopping during a rolling restart looks the same, so one broker proves nothing
    reset = ("[thrd:sasl_ssl://127.0.0.1:{port}/1]: sasl_ssl://127.0.0.1:{port}/1: SSL handshake failed: Disconnected: "
             "connection reset by peer: connecting to a PLAINTEXT broker listener? (after 1ms in state SSL_HANDSHAKE)")
    assert classify(reset.format(port=9093), KafkaError._TRANSPORT, SASL) is None
    watch = ConnectionWatch(SASL)
    for _ in range(3):
        watch.on_log(reset.format(port=9093))
    assert watch.refused is None
    for _ in range(2):
        watch.on_log(reset.format(port=9094))
    assert isinstance(watch.refused, ProtocolMismatch)
    assert "they look plaintext" in str(watch.refused)


def test_a_plaintext_client_is_refused_only_when_every_broker_closed_its_first_request() -> None:
    watch = ConnectionWatch(PLAIN)
    for _ in range(3):
        watch.on_log(CLOSED.format(port=9093))  # one broker closing connections proves nothing (restarting?)
    assert watch.refused is None
    watch.on_log(CLOSED.format(port=9094))
    assert watch.refused is None  # once is not enough for the second broker
    watch.on_log(CLOSED.format(port=9094))
    assert isinstance(watch.refused, ProtocolMismatch)
    assert "do not speak PLAINTEXT" in str(watch.refused) and "TLS (SSL or SASL_SSL?)" in str(watch.refused)
    with pytest.raises(ProtocolMismatch):
        watch.check()


def test_all_brokers_down_after_a_closed_first_request_everywhere_is_a_mismatch() -> None:
    class Err:
        def __init__(self, code: int, text: str) -> None:
            self._code, self._text = code, text

        def code(self) -> int:
            return self._code

        def str(self) -> str:
            return self._text

    watch = ConnectionWatch(PLAIN)
    watch.error_cb(Err(KafkaError._ALL_BROKERS_DOWN, "2/2 brokers are down"))  # type: ignore[arg-type]
    assert watch.refused is None and watch.all_down  # down, not refused: connection refused, say
    watch2 = ConnectionWatch(PLAIN)
    watch2.on_log(CLOSED.format(port=9093))
    watch2.on_log(CLOSED.format(port=9094))
    with pytest.raises(ProtocolMismatch):
        watch2.error_cb(Err(KafkaError._ALL_BROKERS_DOWN, "2/2 brokers are down"))  # type: ignore[arg-type]
    with pytest.raises(ProtocolMismatch):  # and from every later callback
        watch2.error_cb(Err(KafkaError._TRANSPORT, "anything"))  # type: ignore[arg-type]


def test_a_sasl_client_on_a_plaintext_port_is_not_counted_as_a_plaintext_mismatch() -> None:
    watch = ConnectionWatch(SASL)
    for port in (9093, 9094, 9093, 9094):
        watch.on_log(CLOSED.format(port=port))
    assert watch.refused is None


def test_authorization_errors_name_principal_operation_and_resource() -> None:
    group = authorization_error(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED), SASL, "read", "'billing'")
    assert isinstance(group, AuthorizationFailed)
    assert str(group).startswith("not authorized: User:svc may not read group 'billing' (GROUP_AUTHORIZATION_FAILED)")
    assert authorization_error(KafkaError(KafkaError._TRANSPORT), SASL, "read", "x") is None
    pid = producer_denied(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED), SASL, "orders")
    assert pid is not None and "User:svc may not write to topic 'orders'" in str(pid) and pid.resource == "topic orders"


def test_znode_acls_per_identity() -> None:
    sasl = ZooKeeperSettings("zk:2181", sasl_username="kafkaops", sasl_password=Secret("x"))
    acl = [(a.id.scheme, a.id.id, a.perms) for a in znode_acl(sasl)]
    assert acl == [("sasl", "kafkaops", 31), ("world", "anyone", 1)]  # all for kafkaops, read for the world
    assert directory_acl(sasl) == znode_acl(sasl)  # no world CREATE on a secured ensemble: nothing to squat
    digest = ZooKeeperSettings("zk:2181", digest_username="alice", digest_password=Secret("w"))
    assert [(a.id.scheme, a.perms) for a in directory_acl(digest)] == [("digest", 31), ("world", 5)]  # read + create
    hidden = ZooKeeperSettings("zk:2181", sasl_username="kafkaops", sasl_password=Secret("x"), read_protected=True)
    assert [(a.id.scheme, a.id.id) for a in znode_acl(hidden)] == [("sasl", "kafkaops")]
    assert [a.id.scheme for a in znode_acl(ZooKeeperSettings("zk:2181"))] == ["world"]
