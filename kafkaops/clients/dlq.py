"""Dead-letter queue: poison records go to ``<topic>.dlq`` with headers naming the error and the source.

A dead letter keeps the original key, value and headers byte for byte, and adds::

    kafkaops.dlq.error.class     e.g. TruncatedMessageError
    kafkaops.dlq.error.message   the error text
    kafkaops.dlq.source.topic / .source.partition / .source.offset / .source.timestamp

Sending is synchronous (acks=all, idempotent, flushed) so that the consumer only
marks the poison record processed once its dead letter is safely stored.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kafkaops.admin import admin_client, create_topic
from kafkaops.clients.librdkafka import render
from kafkaops.config import ClusterProfile, as_profile
from kafkaops.errors import KafkaopsError

log = logging.getLogger(__name__)

DEFAULT_SUFFIX = ".dlq"
H_ERROR_CLASS = "kafkaops.dlq.error.class"
H_ERROR_MESSAGE = "kafkaops.dlq.error.message"
H_SOURCE_TOPIC = "kafkaops.dlq.source.topic"
H_SOURCE_PARTITION = "kafkaops.dlq.source.partition"
H_SOURCE_OFFSET = "kafkaops.dlq.source.offset"
H_SOURCE_TIMESTAMP = "kafkaops.dlq.source.timestamp"


class DeadLetterError(KafkaopsError):
    """A dead letter could not be stored: the consumer stops rather than lose the record."""


class DeadLetterQueue:
    """Produces dead letters to ``<source topic><suffix>``, creating that topic when missing
    (1 partition, replication factor min(3, brokers), min.insync.replicas min(2, RF)).
    ``cluster``: a :class:`~kafkaops.config.ClusterProfile` or a bootstrap string."""

    def __init__(
        self,
        cluster: ClusterProfile | str,
        *,
        suffix: str = DEFAULT_SUFFIX,
        config: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.profile = as_profile(cluster)
        self.suffix = suffix
        self.timeout = timeout
        self._overrides = config  # rendered (with the profile's secrets) only when the producer is made
        self._producer: Producer | None = None
        self._topics: set[str] = set()
        self.sent = 0

    def topic_for(self, source_topic: str) -> str:
        return f"{source_topic}{self.suffix}"

    def send(self, msg: Message, error: BaseException) -> tuple[str, int, int]:
        """Store the dead letter of ``msg``; returns its (topic, partition, offset) once acknowledged."""
        source = msg.topic() or ""
        topic = self.topic_for(source)
        self._ensure_topic(topic)
        original = msg.headers() or []
        headers: list[tuple[str, str | bytes | None]] = list(original.items() if isinstance(original, dict) else original)
        headers += [
            (H_ERROR_CLASS, type(error).__name__),
            (H_ERROR_MESSAGE, str(error)),
            (H_SOURCE_TOPIC, source),
            (H_SOURCE_PARTITION, str(msg.partition())),
            (H_SOURCE_OFFSET, str(msg.offset())),
            (H_SOURCE_TIMESTAMP, str(msg.timestamp()[1])),
        ]
        result: dict[str, Any] = {}

        def on_delivery(err: KafkaError | None, m: Message) -> None:
            result["err"] = err
            result["at"] = (m.topic(), m.partition(), m.offset())

        producer = self._client()
        try:
            producer.produce(topic, msg.value(), msg.key(), headers=headers, on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            raise DeadLetterError(f"cannot produce the dead letter of {source}[{msg.partition()}]@{msg.offset()}: {exc}") from None
        left = producer.flush(self.timeout)
        if left or result.get("err") is not None or "at" not in result:
            reason = result["err"].str() if result.get("err") is not None else f"not acknowledged within {self.timeout:.0f}s"
            raise DeadLetterError(f"dead letter of {source}[{msg.partition()}]@{msg.offset()} to {topic} failed: {reason}")
        self.sent += 1
        at: tuple[str, int, int] = result["at"]
        log.warning(
            "dead-lettered %s[%s]@%s to %s (%s: %s)",
            source, msg.partition(), msg.offset(), topic, type(error).__name__, error,
        )
        return at

    def _client(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(render(
                self.profile, {"acks": "all", "enable.idempotence": True, "logger": log}, self._overrides))
        return self._producer

    def _ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        admin = admin_client(self.profile)
        try:
            md = admin.list_topics(timeout=30)
            if topic not in md.topics or md.topics[topic].error is not None:
                rf = min(3, max(1, len(md.brokers)))
                create_topic(
                    self.profile, topic, partitions=1, replication_factor=rf,
                    config={"min.insync.replicas": str(min(2, rf))}, exist_ok=True,
                )
                log.info("created dead-letter topic %s (RF %d)", topic, rf)
        except KafkaException as exc:
            raise DeadLetterError(f"cannot check or create dead-letter topic {topic}: {exc.args[0].str()}") from None
        except KafkaopsError as exc:
            raise DeadLetterError(f"cannot create dead-letter topic {topic}: {exc}") from None
        self._topics.add(topic)

    def close(self, timeout: float = 30.0) -> None:
        if self._producer is not None:
            self._producer.flush(timeout)
            self._producer = None


def dead_letter_for(profile: ClusterProfile, choice: DeadLetterQueue | bool) -> tuple[DeadLetterQueue | None, bool]:
    """A consumer's ``dead_letter`` argument resolved: (the queue or None, whether the consumer
    owns it and closes it). True is a queue of the consumer's own on its profile; a queue
    given is shared and left open; False is none."""
    if choice is True:
        return DeadLetterQueue(profile), True
    return (choice or None), False
