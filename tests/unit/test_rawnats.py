"""The blocking NATS client's protocol (actorhw.cluster.rawnats) against a fake server.

The fake server is a listening socket on loopback served by a thread of the test: it
sends INFO, reads CONNECT, SUB and PING, answers PONG, then plays a script (the frames a
test wants the client to see).  Every read it makes has a timeout; it records what the
client wrote (the CONNECT options, every PUB) so a test can say what was, and was not,
sent.  End-to-end behaviour against a real nats-server is in tests/cluster.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorhw.cluster import rawnats
from actorhw.cluster.config import ClusterConfig
from actorhw.core.errors import HostUnreachableError

READ_TIMEOUT = 5.0  # every read of the fake server
JOIN_TIMEOUT = 10.0


class Pub:
    """A PUB or HPUB the fake server read."""

    def __init__(self, subject: str, reply: str, headers: bytes, data: bytes) -> None:
        self.subject, self.reply, self.headers, self.data = subject, reply, headers, data


class Peer:
    """The server's side of one client connection."""

    def __init__(self, sock: socket.socket, server: FakeNats) -> None:
        self.sock = sock
        self.server = server
        self.buf = bytearray()
        self.sid = b""
        sock.settimeout(READ_TIMEOUT)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed the connection")
        self.buf += chunk

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def exact(self, size: int) -> bytes:
        while len(self.buf) < size + 2:
            self._fill()
        data = bytes(self.buf[:size])
        assert self.buf[size : size + 2] == b"\r\n"
        del self.buf[: size + 2]
        return data

    def op(self) -> tuple[str, Any]:
        """The next operation the client wrote: ("PUB", Pub), ("PING", None), ..."""
        line = self.line()
        verb, _, rest = line.partition(b" ")
        if verb == b"CONNECT":
            options = json.loads(rest)
            self.server.connects.append(options)
            return "CONNECT", options
        if verb == b"SUB":
            self.sid = rest.split()[-1]
            return "SUB", rest
        if verb == b"PUB":
            fields = rest.split()
            data = self.exact(int(fields[-1]))
            pub = Pub(fields[0].decode(), fields[1].decode() if len(fields) == 3 else "", b"", data)
            self.server.pubs.append(pub)
            return "PUB", pub
        if verb == b"HPUB":
            fields = rest.split()
            hsize, total = int(fields[-2]), int(fields[-1])
            body = self.exact(total)
            pub = Pub(fields[0].decode(), fields[1].decode(), body[:hsize], body[hsize:])
            self.server.pubs.append(pub)
            return "PUB", pub
        return verb.decode(), rest

    def pub(self) -> Pub:
        """The next PUB, answering PINGs on the way."""
        while True:
            verb, value = self.op()
            if verb == "PUB":
                assert isinstance(value, Pub)
                return value
            if verb == "PING":
                self.send(b"PONG\r\n")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def msg(self, reply: str, payload: bytes) -> bytes:
        return b"MSG %s %s %d\r\n%s\r\n" % (reply.encode(), self.sid, len(payload), payload)

    def hmsg(self, reply: str, headers: bytes, payload: bytes) -> bytes:
        return b"HMSG %s %s %d %d\r\n%s%s\r\n" % (
            reply.encode(), self.sid, len(headers), len(headers) + len(payload), headers, payload
        )  # fmt: skip


Script = Callable[[Peer], None]


class FakeNats:
    """A NATS server on loopback that plays ``script`` on each accepted connection
    after the handshake (INFO; CONNECT, SUB, PING; PONG)."""

    def __init__(self, script: Script, *, info: dict[str, Any] | None = None) -> None:
        self.script = script
        self.info = {"server_id": "fake", "version": "2.10.0", "proto": 1, "headers": True,
                     "max_payload": 1 << 20, **(info or {})}  # fmt: skip
        self.connects: list[dict[str, Any]] = []
        self.pubs: list[Pub] = []
        self.accepted = 0
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, name="fake-nats", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    sock, _ = self.listener.accept()
                except TimeoutError:
                    continue
                self.accepted += 1
                with sock:
                    peer = Peer(sock, self)
                    peer.send(b"INFO " + json.dumps(self.info).encode() + b"\r\n")
                    while (verb := peer.op()[0]) != "PING":
                        assert verb in ("CONNECT", "SUB"), verb
                    peer.send(b"PONG\r\n")
                    self.script(peer)
        except BaseException as e:  # reported by stop()
            if not self.stopping.is_set():
                self.errors.append(e)
        finally:
            self.listener.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(JOIN_TIMEOUT)
        assert not self.thread.is_alive(), "the fake server did not stop"
        if self.errors:
            raise self.errors[0]


def request(client: rawnats.BlockingNats, data: bytes = b"ping", **kw: Any) -> bytes:
    return client.request("svc.call", data, timeout=kw.pop("timeout", READ_TIMEOUT),
                          tick=0.05, check=lambda: None, **kw)  # fmt: skip


def serve(script: Script, **options: Any) -> tuple[FakeNats, rawnats.BlockingNats]:
    server = FakeNats(script, info=options.pop("info", None))
    return server, rawnats.BlockingNats(ClusterConfig.of(server.url, **options))


def wait_close(peer: Peer) -> None:
    """Hold the connection until the client closes it (or the test ends)."""
    try:
        while not peer.server.stopping.is_set():
            try:
                peer.op()
            except TimeoutError:
                continue
    except ConnectionError:
        pass


# --- replies ---------------------------------------------------------------------------


class Gate:
    """What the client has received (bytes), and whether it closed its socket."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.received = 0
        self.closed = False


class CountingSocket:
    """The client's socket, counting the bytes it received (so the fake server can send
    its next piece only once the client has read the last one: every piece is one recv)."""

    def __init__(self, sock: socket.socket, gate: Gate) -> None:
        self._sock, self._gate = sock, gate

    def recv(self, size: int) -> bytes:
        chunk = self._sock.recv(size)
        with self._gate.cond:
            self._gate.received += len(chunk)
            self._gate.cond.notify_all()
        return chunk

    def close(self) -> None:
        self._sock.close()
        with self._gate.cond:
            self._gate.closed = True
            self._gate.cond.notify_all()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.binary(min_size=0, max_size=64).map(lambda b: b"\r\nMSG x 1 2\r\n" + b),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=12),
)
def test_a_reply_split_across_many_reads_arrives_whole(payload: bytes, cuts: list[int]) -> None:
    gate = Gate()

    def script(peer: Peer) -> None:
        pub = peer.pub()
        frame = peer.msg(pub.reply, payload)
        points = sorted({c % len(frame) for c in cuts} - {0})
        pieces = [frame[a:b] for a, b in zip([0, *points], [*points, len(frame)], strict=True)]
        with gate.cond:
            sent = gate.received
        for piece in pieces:
            peer.send(piece)
            sent += len(piece)
            with gate.cond:  # the client read it all (or gave up) before the next piece
                read = gate.cond.wait_for(lambda n=sent: gate.received >= n or gate.closed, 5.0)
            assert read, "the client did not read a piece of its reply"
        wait_close(peer)

    real = socket.create_connection

    def counting(*args: Any, **kw: Any) -> Any:
        return CountingSocket(real(*args, **kw), gate)

    server, client = serve(script)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(socket, "create_connection", counting)
            assert request(client) == payload
    finally:
        client.close()
        server.stop()


def test_pipelined_replies_in_one_chunk_answer_each_request_in_order() -> None:
    def script(peer: Peer) -> None:
        a, b, c = peer.pub(), peer.pub(), peer.pub()
        peer.send(  # out of order, one write
            peer.msg(c.reply, b"C:" + c.data)
            + peer.hmsg(b.reply, b"NATS/1.0 503\r\n\r\n", b"")
            + peer.msg(a.reply, b"A:" + a.data)
        )
        wait_close(peer)

    server, client = serve(script)
    try:
        answers = client.requests(
            [("svc.a", b"1", None), ("svc.b", b"2", None), ("svc.c", b"3", None)],
            timeout=READ_TIMEOUT, tick=0.05, check=lambda: None,
        )  # fmt: skip
        assert answers[0] == b"A:1"
        assert isinstance(answers[1], rawnats.NoResponder)
        assert answers[2] == b"C:3"
        assert [p.subject for p in server.pubs] == ["svc.a", "svc.b", "svc.c"]
    finally:
        client.close()
        server.stop()


def test_a_503_status_is_no_responder() -> None:
    def script(peer: Peer) -> None:
        pub = peer.pub()
        peer.send(peer.hmsg(pub.reply, b"NATS/1.0 503\r\n\r\n", b""))
        wait_close(peer)

    server, client = serve(script)
    try:
        with pytest.raises(rawnats.NoResponder):
            request(client)
    finally:
        client.close()
        server.stop()


def test_headers_of_a_reply_are_not_part_of_its_payload() -> None:
    headers = b"NATS/1.0\r\nNats-Stream: KV_x\r\nX-Code: 503\r\n\r\n"

    def script(peer: Peer) -> None:
        pub = peer.pub()
        peer.send(peer.hmsg(pub.reply, headers, b"the payload"))
        wait_close(peer)

    server, client = serve(script)
    try:
        assert request(client, headers={"Nats-Expected-Last-Sequence": "0"}) == b"the payload"
        assert server.pubs[0].headers == b"NATS/1.0\r\nNats-Expected-Last-Sequence: 0\r\n\r\n"
    finally:
        client.close()
        server.stop()


def test_a_server_ping_while_waiting_is_answered() -> None:
    ponged = threading.Event()

    def script(peer: Peer) -> None:
        pub = peer.pub()
        peer.send(b"PING\r\n")
        verb, _ = peer.op()
        assert verb == "PONG", verb
        ponged.set()
        peer.send(peer.msg(pub.reply, b"after the pong"))
        wait_close(peer)

    server, client = serve(script)
    try:
        assert request(client) == b"after the pong"
        assert ponged.is_set()
    finally:
        client.close()
        server.stop()


# --- failures --------------------------------------------------------------------------


def test_an_err_during_a_call_is_host_unreachable() -> None:
    def script(peer: Peer) -> None:
        peer.pub()
        peer.send(b"-ERR 'Permissions Violation for Publish to svc.call'\r\n")
        wait_close(peer)

    server, client = serve(script)
    try:
        with pytest.raises(HostUnreachableError, match="Permissions Violation"):
            request(client)
        assert len(server.pubs) == 1
    finally:
        client.close()
        server.stop()


def test_the_server_closing_during_a_call_is_host_unreachable_and_nothing_is_resent() -> None:
    def script(peer: Peer) -> None:
        peer.pub()
        peer.sock.shutdown(socket.SHUT_RDWR)

    server, client = serve(script)
    try:
        with pytest.raises(HostUnreachableError):
            request(client, timeout=2.0)
    finally:
        client.close()
        server.stop()
    assert len(server.pubs) == 1
    assert server.accepted == 1


def test_no_reply_is_a_timeout_within_the_deadline() -> None:
    def script(peer: Peer) -> None:
        peer.pub()
        wait_close(peer)

    server, client = serve(script)
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            request(client, timeout=0.3)
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed < 0.3 + 1.0, elapsed
    finally:
        client.close()
        server.stop()


def test_a_payload_larger_than_max_payload_is_not_sent() -> None:
    def script(peer: Peer) -> None:
        pub = peer.pub()
        peer.send(peer.msg(pub.reply, b"ok"))
        wait_close(peer)

    server, client = serve(script, info={"max_payload": 64})
    try:
        with pytest.raises(rawnats.NotSent):
            request(client, b"x" * 65)  # the first request: INFO's limit applies already
        assert request(client, b"y" * 64) == b"ok"
        with pytest.raises(rawnats.NotSent):
            request(client, b"z" * 65)
        with pytest.raises(rawnats.NotSent):  # the headers count too
            request(client, b"w" * 60, headers={"K": "v"})
    finally:
        client.close()
        server.stop()
    assert [p.data for p in server.pubs] == [b"y" * 64]


# --- connecting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "userinfo", "expected"),
    [
        ({"token": "s3cret"}, "", {"auth_token": "s3cret"}),
        ({"user": "ann", "password": "pw"}, "", {"user": "ann", "pass": "pw"}),
        ({}, "tok@", {"auth_token": "tok"}),
        ({}, "bob:hunter2@", {"user": "bob", "pass": "hunter2"}),
        ({}, "", {}),
    ],
)
def test_connect_carries_the_configs_credentials(
    options: dict[str, str], userinfo: str, expected: dict[str, str]
) -> None:
    def script(peer: Peer) -> None:
        pub = peer.pub()
        peer.send(peer.msg(pub.reply, b"ok"))
        wait_close(peer)

    server = FakeNats(script)
    client = rawnats.BlockingNats(
        ClusterConfig.of(f"nats://{userinfo}127.0.0.1:{server.port}", **options)
    )
    try:
        assert request(client) == b"ok"
    finally:
        client.close()
        server.stop()
    (connect,) = server.connects
    auth = {k: connect[k] for k in ("auth_token", "user", "pass") if k in connect}
    assert auth == expected
    assert connect["headers"] is True and connect["no_responders"] is True
    assert connect["verbose"] is False


@pytest.mark.parametrize(
    ("url", "options", "supported"),
    [
        ("nats://127.0.0.1:4222", {}, True),
        ("nats://127.0.0.1:4222", {"user": "a", "password": "b"}, True),
        ("nats://127.0.0.1:4222", {"token": "t"}, True),
        ("tls://127.0.0.1:4222", {}, False),
        ("nats://127.0.0.1:4222", {"creds": "/etc/user.creds"}, False),
        ("nats://127.0.0.1:4222", {"nkey_seed": "/etc/user.nk"}, False),
        ("nats://127.0.0.1:4222,tls://127.0.0.2:4222", {}, False),
    ],
)
def test_supports_only_plain_tcp_with_user_password_or_token(
    url: str, options: dict[str, str], supported: bool
) -> None:
    assert rawnats.supports(ClusterConfig.of(url, **options)) is supported
