"""Clients built from a ClusterProfile: the config librdkafka gets, and secrets kept out of sight.

No broker is needed: configs are rendered and checked when the client is built.
"""

from __future__ import annotations

import logging

import pytest

from kafkaops.clients.consumer import ConsumerError, TypedConsumer
from kafkaops.clients.dlq import DeadLetterQueue
from kafkaops.clients.librdkafka import masked, render
from kafkaops.clients.producer import ProducerError, TypedProducer
from kafkaops.profile_file import build_profile
from kafkaops.serde.codec import BytesCodec

PASSWORD = "pw-8c1f0e2b"
PROFILE = build_profile("127.0.0.1:1", protocol="SASL_PLAINTEXT", username="svc-orders", password=PASSWORD)


def test_render_layers_profile_defaults_and_overrides() -> None:
    conf = render(PROFILE, {"acks": "all", "linger.ms": 5}, None, {"linger.ms": 20})
    assert conf["bootstrap.servers"] == "127.0.0.1:1" and conf["security.protocol"] == "SASL_PLAINTEXT"
    assert conf["sasl.username"] == "svc-orders" and conf["sasl.password"] == PASSWORD  # what librdkafka needs
    assert (conf["acks"], conf["linger.ms"]) == ("all", 20)
    shown = masked({**conf, "ssl.key.password": "k", "sasl.oauthbearer.client.secret": "c"})
    assert shown["sasl.password"] == shown["ssl.key.password"] == shown["sasl.oauthbearer.client.secret"] == "***"
    assert shown["sasl.username"] == "svc-orders" and shown["linger.ms"] == 20


def test_producer_and_consumer_take_a_profile_and_keep_its_password_out_of_sight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    producer = TypedProducer(PROFILE, "t", BytesCodec(), config={"linger.ms": 1})
    assert producer.profile is PROFILE
    assert producer.config["security.protocol"] == "SASL_PLAINTEXT" and producer.config["sasl.username"] == "svc-orders"
    assert producer.config["sasl.password"] == "***" and producer.config["linger.ms"] == 1
    assert producer.config["acks"] == "all" and producer.config["enable.idempotence"] is True
    consumer = TypedConsumer(PROFILE, "t", "g", BytesCodec(), dead_letter=False)
    try:
        assert consumer.config["sasl.password"] == "***" and consumer.config["group.id"] == "g"
    finally:
        consumer.close()
    dlq = DeadLetterQueue(PROFILE)
    assert dlq.profile is PROFILE and PASSWORD not in repr(vars(dlq))
    assert PASSWORD not in repr(producer.config) + repr(consumer.config) + repr(PROFILE) + str(PROFILE)
    assert PASSWORD not in caplog.text


def test_configuration_errors_name_the_bootstrap_servers_not_the_secrets() -> None:
    with pytest.raises(ProducerError, match="127.0.0.1:1") as p:
        TypedProducer(PROFILE, "t", BytesCodec(), config={"no.such.setting": 1})
    with pytest.raises(ConsumerError, match="127.0.0.1:1") as c:
        TypedConsumer(PROFILE, "t", "g", BytesCodec(), config={"no.such.setting": 1}, dead_letter=False)
    for exc in (p.value, c.value):
        assert "no.such.setting" in str(exc) and PASSWORD not in str(exc)


def test_a_bootstrap_string_still_works() -> None:
    producer = TypedProducer("127.0.0.1:1", "t", BytesCodec())
    assert producer.profile.bootstrap_servers == "127.0.0.1:1" and "security.protocol" not in producer.config
