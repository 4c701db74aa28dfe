"""A burst of samples published as one batch (StreamWriter.publish_all, EventBus.publish_all):
the same events, order, sequence numbers and overflow outcomes as publishing them one
by one, handed over at once."""

from __future__ import annotations

import threading

import pytest

from actorhw.core.events import EventBus, Overflow
from actorhw.core.messages import StreamAction, StreamSource
from actorhw.drivers.streams import Sample, StreamWriter

T = 5.0


def samples(n: int, start: int = 0) -> list[Sample]:
    return [("acc", (i, -i, 2 * i), "accelerometer", 100.0 + i) for i in range(start, start + n)]


def test_a_batch_arrives_whole_in_order_after_single_samples_with_one_wake() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=64, overflow=Overflow.BLOCK, block_timeout=T)
    wakes: list[int] = []
    sub.waker = lambda: wakes.append(sub.queued)
    writer = StreamWriter(board="b1", bus=bus, stop=threading.Event())
    writer.publish("acc", (9, 9, 9), stream_type="accelerometer", timestamp=1.0)
    writer.publish_all(samples(10))
    got = sub.drain()
    assert [e.seq for e in got] == list(range(1, 12))
    assert writer.published == 11
    assert wakes == [1, 11]  # one for the single sample, one for the whole batch
    first = got[1]
    assert first.channel == "b1.acc" and first.data == (0, 0, 0) and first.timestamp == 100.0
    assert first.source is StreamSource.DEVICE and first.action is StreamAction.DATA
    assert [e.data[0] for e in got[1:]] == list(range(10))
    sub.close()


def test_an_empty_batch_wakes_no_one() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=4)
    wakes: list[int] = []
    sub.waker = lambda: wakes.append(1)
    StreamWriter(board="b", bus=bus, stop=threading.Event()).publish_all([])
    assert wakes == [] and sub.queued == 0
    sub.close()


def test_a_batch_larger_than_a_blocking_queue_loses_nothing() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=4, overflow=Overflow.BLOCK, block_timeout=T)
    writer = StreamWriter(board="b", bus=bus, stop=threading.Event())
    publisher = threading.Thread(target=writer.publish_all, args=(samples(200),))
    publisher.start()
    got = [sub.get(timeout=T) for _ in range(200)]
    publisher.join(T)
    assert not publisher.is_alive()
    assert [e.seq for e in got] == list(range(1, 201)) and sub.dropped == 0
    sub.close()


@pytest.mark.parametrize("overflow", [Overflow.DROP_OLDEST, Overflow.DROP_NEWEST])
def test_a_batch_overflows_as_the_same_samples_one_by_one(overflow: Overflow) -> None:
    one_bus, batch_bus = EventBus(), EventBus()
    one = one_bus.subscribe(maxsize=8, overflow=overflow)
    batch = batch_bus.subscribe(maxsize=8, overflow=overflow)
    one_writer = StreamWriter(board="b", bus=one_bus, stop=threading.Event())
    batch_writer = StreamWriter(board="b", bus=batch_bus, stop=threading.Event())
    for i in range(3):  # some queued already, then a burst that does not fit
        one_writer.publish("acc", (i, i, i), stream_type="accelerometer", timestamp=float(i))
        batch_writer.publish("acc", (i, i, i), stream_type="accelerometer", timestamp=float(i))
    for sample in samples(20, start=3):
        channel, data, kind, at = sample
        one_writer.publish(channel, data, stream_type=kind, timestamp=at)
    batch_writer.publish_all(samples(20, start=3))
    assert batch.drain() == one.drain()
    assert batch.dropped == one.dropped == 15
    one.close()
    batch.close()


def test_a_blocked_batch_drops_after_the_deadline_and_counts() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=2, overflow=Overflow.BLOCK, block_timeout=0.05)
    writer = StreamWriter(board="b", bus=bus, stop=threading.Event())
    writer.publish_all(samples(3))  # the third waits 50 ms for room, then is dropped
    assert sub.dropped == 1
    assert [e.seq for e in sub.drain()] == [1, 2]
    sub.close()
