"""DeliveryFuture and ConsumerRecord: the lean per-record objects behave like the standard ones."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading

import pytest
from confluent_kafka import KafkaError, Message, Producer

from kafkaops.clients.consumer import ConsumerRecord
from kafkaops.clients.producer import DeliveryError, DeliveryFuture, DeliveryReport, TypedProducer
from kafkaops.serde.codec import JsonCodec


@pytest.fixture
def future_type() -> type[DeliveryFuture]:
    # a client with no reachable broker: poll() just serves nothing
    return DeliveryFuture.bound_to(Producer({"bootstrap.servers": "127.0.0.1:1", "logger": logging.getLogger(__name__)}))


def test_delivered_future_resolves_to_a_report(future_type: type[DeliveryFuture]) -> None:
    fut = future_type()
    calls: list[object] = []
    fut.add_done_callback(lambda f: calls.append(f.result(0)))
    assert not fut.done()
    with pytest.raises(concurrent.futures.TimeoutError):
        fut.result(0.05)
    fut._delivered(None, Message(topic="t", partition=2, offset=7, timestamp=(1, 99)))
    assert fut.done() and fut.exception(0) is None
    assert fut.result(0) == DeliveryReport("t", 2, 7, 99)
    assert calls == [DeliveryReport("t", 2, 7, 99)]
    assert future_type._counts == [1, 0]


def test_failed_future_raises_delivery_error(future_type: type[DeliveryFuture]) -> None:
    fut = future_type()
    seen: list[tuple[object, object]] = []
    fut._user = lambda e, r: seen.append((e, r))
    fut._delivered(KafkaError(KafkaError._MSG_TIMED_OUT), Message(topic="t", partition=0))
    with pytest.raises(DeliveryError, match=r"t\[0\]"):
        fut.result(0)
    assert isinstance(fut.exception(0), DeliveryError) and seen[0][1] is None
    assert future_type._counts == [0, 1]


def test_wait_wakes_up_when_another_thread_delivers(future_type: type[DeliveryFuture]) -> None:
    futures = [future_type() for _ in range(3)]
    t = threading.Timer(0.1, lambda: [f._delivered(None, Message(topic="t", partition=0, offset=i))
                                       for i, f in enumerate(futures)])
    t.start()
    done, pending = concurrent.futures.wait(futures, timeout=10)
    t.join()
    assert len(done) == 3 and not pending
    assert [f.result(0).offset for f in futures] == [0, 1, 2]
    assert not futures[0].cancel()  # delivered records cannot be cancelled


def test_futures_of_two_producers_do_not_share_counters() -> None:
    a = TypedProducer("127.0.0.1:1", "t", JsonCodec())
    b = TypedProducer("127.0.0.1:1", "t", JsonCodec())
    a._future()._delivered(None, Message(topic="t", partition=0, offset=0))
    assert (a.acknowledged, b.acknowledged) == (1, 0)


def test_consumer_record_is_frozen_and_compares_by_value() -> None:
    r = ConsumerRecord("t", 0, 5, 1, b"k", None, {"v": 1})
    assert r == ConsumerRecord("t", 0, 5, 1, b"k", None, {"v": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.offset = 6  # type: ignore[misc]
