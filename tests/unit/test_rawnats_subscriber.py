"""The fast lane's subscription (actorhw.cluster.rawnats_subscriber) against the fake
NATS server of test_rawnats: several readers wait together and one is woken per
arrival, a handler that works in place leaves the subscription read by another (also
when both messages came in one read: the reader nudges another), PINGs are answered,
and a closed connection is opened again."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from actorhw.cluster import rawnats_subscriber
from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.rawnats_subscriber import BlockingSubscriber
from tests.unit.test_rawnats import JOIN_TIMEOUT, READ_TIMEOUT, FakeNats, Peer, wait_close

Handler = Callable[[bytes, str], None]


def request(peer: Peer, reply: str, payload: bytes) -> bytes:
    """A request to the lane's subject, as the server delivers it (with its reply)."""
    return b"MSG svc.fast %s %s %d\r\n%s\r\n" % (
        peer.sid, reply.encode(), len(payload), payload
    )  # fmt: skip


class Lane:
    """A subscriber served by ``readers`` threads in a background thread."""

    def __init__(self, server: FakeNats, handler: Handler, *, readers: int) -> None:
        self.sub = BlockingSubscriber(ClusterConfig.of(server.url), "svc.fast")
        self.subscribed = threading.Event()
        self.thread = threading.Thread(
            target=self.sub.serve, args=(handler, self.subscribed.set),
            kwargs={"readers": readers}, daemon=True,
        )  # fmt: skip
        self.thread.start()
        assert self.subscribed.wait(READ_TIMEOUT)

    def stop(self) -> None:
        self.sub.stop()
        self.thread.join(JOIN_TIMEOUT)
        assert not self.thread.is_alive(), "serve did not end"


def test_a_handler_working_in_place_leaves_the_subscription_to_another_reader() -> None:
    second_handled = threading.Event()
    free_during_first: list[bool] = []
    replies: list[str] = []

    def script(peer: Peer) -> None:
        peer.send(request(peer, "reply.1", b"first"))
        peer.send(request(peer, "reply.2", b"second"))
        wait_close(peer)

    def handler(data: bytes, reply: str) -> None:
        replies.append(reply)
        if data == b"first":
            free_during_first.append(lane.sub.others_free())
            # Blocks until another reader has read and handled the second message.
            assert second_handled.wait(READ_TIMEOUT), "no other reader read on"
        else:
            second_handled.set()

    server = FakeNats(script)
    lane = Lane(server, handler, readers=2)
    try:
        assert second_handled.wait(READ_TIMEOUT)
    finally:
        lane.stop()
        server.stop()
    assert free_during_first == [True]
    assert sorted(replies) == ["reply.1", "reply.2"]


def test_two_messages_in_one_read_are_handled_by_two_readers() -> None:
    # One write: the reader that reads both handles one and nudges another reader for
    # the other (no new data would wake one), while its handler still blocks.
    second_handled = threading.Event()
    threads: dict[bytes, int] = {}

    def script(peer: Peer) -> None:
        peer.send(request(peer, "reply.1", b"first") + request(peer, "reply.2", b"second"))
        wait_close(peer)

    def handler(data: bytes, reply: str) -> None:
        threads[data] = threading.get_ident()
        if data == b"first":
            assert second_handled.wait(READ_TIMEOUT), "the second message was left unread"
        else:
            second_handled.set()

    server = FakeNats(script)
    lane = Lane(server, handler, readers=3)
    try:
        assert second_handled.wait(READ_TIMEOUT)
    finally:
        lane.stop()
        server.stop()
    assert set(threads) == {b"first", b"second"}
    assert threads[b"first"] != threads[b"second"]


def test_with_every_other_reader_busy_none_is_free() -> None:
    seen: list[bool] = []
    done = threading.Event()

    def script(peer: Peer) -> None:
        peer.send(request(peer, "reply.1", b"x"))
        wait_close(peer)

    def handler(data: bytes, reply: str) -> None:
        seen.append(lane.sub.others_free())
        done.set()

    server = FakeNats(script)
    lane = Lane(server, handler, readers=1)
    try:
        assert done.wait(READ_TIMEOUT)
    finally:
        lane.stop()
        server.stop()
    assert seen == [False]


def test_a_server_ping_is_answered_and_a_published_answer_reaches_the_server() -> None:
    pubs: list[tuple[str, bytes]] = []
    got = threading.Event()

    def script(peer: Peer) -> None:
        peer.send(b"PING\r\n" + request(peer, "reply.7", b"question"))
        assert peer.op()[0] == "PONG"
        pub = peer.pub()
        pubs.append((pub.subject, pub.data))
        got.set()
        wait_close(peer)

    def handler(data: bytes, reply: str) -> None:
        assert lane.sub.publish(reply, data + b"?")

    server = FakeNats(script)
    lane = Lane(server, handler, readers=3)
    try:
        assert got.wait(READ_TIMEOUT)
    finally:
        lane.stop()
        server.stop()
    assert pubs == [("reply.7", b"question?")]


def test_a_closed_connection_is_opened_again_and_a_failing_handler_stops_nothing() -> None:
    handled: list[bytes] = []
    second = threading.Event()

    def script(peer: Peer) -> None:
        if peer.server.accepted == 1:
            peer.send(request(peer, "reply.1", b"boom"))
            return  # closes the connection
        peer.send(request(peer, "reply.2", b"again"))
        wait_close(peer)

    def handler(data: bytes, reply: str) -> None:
        handled.append(data)
        if data == b"boom":
            raise RuntimeError("a handler's bug")
        second.set()

    server = FakeNats(script)
    lane = Lane(server, handler, readers=2)
    try:
        assert second.wait(READ_TIMEOUT)
    finally:
        lane.stop()
        server.stop()
    assert handled == [b"boom", b"again"]
    assert server.accepted == 2


def test_without_epoll_one_reader_serves_and_none_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rawnats_subscriber, "SHARED_WAIT", False)
    seen: list[tuple[bytes, bool, str]] = []
    done = threading.Event()

    def script(peer: Peer) -> None:
        peer.send(request(peer, "reply.1", b"a") + request(peer, "reply.2", b"b"))
        wait_close(peer)

    def handler(data: bytes, reply: str) -> None:
        seen.append((data, lane.sub.others_free(), threading.current_thread().name))
        if len(seen) == 2:
            done.set()

    server = FakeNats(script)
    lane = Lane(server, handler, readers=3)
    try:
        assert done.wait(READ_TIMEOUT)
    finally:
        lane.stop()
        server.stop()
    assert [(data, free) for data, free, _name in seen] == [(b"a", False), (b"b", False)]
    assert len({name for _data, _free, name in seen}) == 1
