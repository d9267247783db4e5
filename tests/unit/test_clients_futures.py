"""DeliveryFuture, wait() and ConsumerRecord: the lean per-record objects keep the future/record contract."""

from __future__ import annotations

import logging
import threading

import pytest
from confluent_kafka import KafkaError, Message, Producer

from kafkaops.clients.consumer import ConsumerRecord
from kafkaops.clients.delivery import Deliveries, Placement
from kafkaops.clients.producer import DeliveryError, DeliveryFuture, DeliveryReport, TypedProducer, wait
from kafkaops.serde.codec import JsonCodec
from kafkaops.waits import WaitTimeout


@pytest.fixture
def deliveries() -> Deliveries:
    # a client with no reachable broker: poll() just serves nothing
    return Deliveries(Producer({"bootstrap.servers": "127.0.0.1:1", "logger": logging.getLogger(__name__)}))


def test_delivered_future_resolves_to_a_report(deliveries: Deliveries) -> None:
    fut = DeliveryFuture(deliveries)
    calls: list[object] = []
    fut.add_done_callback(lambda f: calls.append(f.result(0)))
    assert not fut.done() and calls == []
    with pytest.raises(TimeoutError):  # WaitTimeout is a TimeoutError (and a KafkaopsError)
        fut.result(0.05)
    with pytest.raises(WaitTimeout, match="no delivery report"):
        fut.exception(0)
    fut(None, Message(topic="t", partition=2, offset=7, timestamp=(1, 99)))
    assert fut.done() and fut.exception(0) is None
    assert fut.result(0) == DeliveryReport("t", 2, 7, 99)
    assert calls == [DeliveryReport("t", 2, 7, 99)]
    late: list[DeliveryFuture] = []
    fut.add_done_callback(late.append)  # added after delivery: called at once
    assert late == [fut]
    assert (deliveries.acknowledged, deliveries.failed) == (1, 0)


def test_failed_future_raises_delivery_error(deliveries: Deliveries) -> None:
    seen: list[tuple[object, object]] = []
    fut = DeliveryFuture(deliveries, on_delivery=lambda e, r: seen.append((e, r)))
    fut(KafkaError(KafkaError._MSG_TIMED_OUT), Message(topic="t", partition=0))
    with pytest.raises(DeliveryError, match=r"t\[0\]"):
        fut.result(0)
    assert isinstance(fut.exception(0), DeliveryError)
    assert len(seen) == 1 and seen[0][0] is fut.exception(0) and seen[0][1] is None
    assert (deliveries.acknowledged, deliveries.failed) == (0, 1)


def test_user_callback_gets_the_report_and_a_failing_done_callback_does_not_lose_it(deliveries: Deliveries) -> None:
    seen: list[tuple[object, object]] = []
    fut = DeliveryFuture(deliveries, on_delivery=lambda e, r: seen.append((e, r)))

    def broken(f: DeliveryFuture) -> None:
        raise RuntimeError("callback bug")

    fut.add_done_callback(broken)
    fut(None, Message(topic="t", partition=1, offset=3, timestamp=(1, 5)))
    assert seen == [(None, DeliveryReport("t", 1, 3, 5))]
    assert fut.result(0) == DeliveryReport("t", 1, 3, 5)


def test_placement_reports_the_delivery_to_its_partitioner(deliveries: Deliveries) -> None:
    class Part:
        def __init__(self) -> None:
            self.calls: list[tuple[str, int, object, float]] = []

        def on_delivery(self, topic: str, partition: int, error: KafkaError | None, latency_s: float) -> None:
            self.calls.append((topic, partition, error, latency_s))

    part = Part()
    fut = DeliveryFuture(deliveries, placement=Placement(part, "t", 0.0))  # type: ignore[arg-type]
    fut(None, Message(topic="t", partition=2, offset=0))
    assert len(part.calls) == 1 and part.calls[0][:3] == ("t", 2, None) and part.calls[0][3] > 0


def test_wait_returns_when_another_thread_delivers(deliveries: Deliveries) -> None:
    futures = [DeliveryFuture(deliveries) for _ in range(3)]
    t = threading.Timer(0.1, lambda: [f(None, Message(topic="t", partition=0, offset=i))
                                       for i, f in enumerate(futures)])
    t.start()
    done, pending = wait(futures, timeout=30)
    t.join()
    assert done == set(futures) and not pending
    assert [f.result(0).offset for f in futures] == [0, 1, 2]


def test_wait_gives_up_after_its_timeout_with_the_pending_ones(deliveries: Deliveries) -> None:
    resolved, stuck = DeliveryFuture(deliveries), DeliveryFuture(deliveries)
    resolved(None, Message(topic="t", partition=0, offset=0))
    done, pending = wait([resolved, stuck], timeout=0.2)
    assert done == {resolved} and pending == {stuck}


def test_futures_of_two_producers_do_not_share_counters() -> None:
    a = TypedProducer("127.0.0.1:1", "t", JsonCodec())
    b = TypedProducer("127.0.0.1:1", "t", JsonCodec())
    DeliveryFuture(a._deliveries)(None, Message(topic="t", partition=0, offset=0))
    assert (a.acknowledged, b.acknowledged) == (1, 0)


def test_consumer_record_is_immutable_and_compares_by_value() -> None:
    r = ConsumerRecord("t", 0, 5, 1, b"k", None, {"v": 1})
    assert r == ConsumerRecord("t", 0, 5, 1, b"k", None, {"v": 1})
    assert r != ConsumerRecord("t", 0, 6, 1, b"k", None, {"v": 1})
    assert (r.topic, r.partition, r.offset, r.value) == ("t", 0, 5, {"v": 1})
    with pytest.raises(AttributeError):
        r.offset = 6  # type: ignore[misc]
    assert not hasattr(r, "__dict__")  # no per-record dict
