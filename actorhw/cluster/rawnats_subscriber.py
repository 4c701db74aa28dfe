"""A blocking NATS subscription served by a few reader threads (a host's fast lane).

The readers wait for data together, and the kernel wakes just one of them when some
comes (epoll, one-shot: the socket is armed again once that reader has read it).  The
reader takes one whole message from what it read and handles it itself, while the
others go on waiting: nothing is handed from thread to thread on the way, so a handler
may run a short piece of work in place (a board exchange on an idle board, answered
from the same thread) and the next request still wakes another reader.  A reader that
leaves a whole message behind (several came in one read) nudges another reader to take
it (a pipe in the same epoll).  A handler that sees no other reader free
(`BlockingSubscriber.others_free`) hands long work to other threads instead, so the
subscription is never left unread.

Without epoll (not Linux) one reader reads, and no reader is ever free to read for a
handler: handlers hand every long piece of work on.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from collections.abc import Callable

from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.rawnats import BlockingNats, NotSent, take
from actorhw.core.log import logger

#: Seconds a reader waits for data before it looks at `stop` again.
POLL = 0.25
#: Whether readers can share the waiting (epoll with one-shot events).
SHARED_WAIT = hasattr(select, "epoll")


class BlockingSubscriber(BlockingNats):
    """A blocking connection subscribed to ``subject``: `serve` reads it and hands every
    message and its reply subject to ``handler`` in a reader's thread; `publish` answers
    from any thread.  A broken connection is opened again (with a pause) until `stop`."""

    def __init__(self, config: ClusterConfig, subject: str) -> None:
        super().__init__(config, subscribe=subject)
        self._stop = threading.Event()
        self._parse = threading.Lock()  # the read buffer: one reader at a time
        self._count = threading.Lock()
        self._free = 0  # readers waiting for data (not in a handler)

    def publish(self, subject: str, data: bytes) -> bool:
        """Send ``data`` to ``subject``; False if there is no connection (dropped)."""
        command = b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(data), data)
        with self._send:
            sock = self._sock
            if sock is None:
                return False
            try:
                sock.sendall(command)
                return True
            except OSError:
                return False

    def others_free(self) -> bool:
        """From a handler: whether another reader reads (or will) while it works."""
        return SHARED_WAIT and self._free > 0

    def serve(
        self,
        handler: Callable[[bytes, str], None],
        ready: Callable[[], None],
        *,
        readers: int = 1,
    ) -> None:
        """Read and hand over messages until `stop`, with ``readers`` threads (this one
        and ``readers - 1`` more; one without epoll); ``ready()`` once subscribed."""
        pause = 0.05
        while not self._stop.is_set():
            try:
                with self._send:
                    sock = self._sock = self._connect()
            except (NotSent, OSError, ConnectionError):
                self.close()
                self._stop.wait(pause)  # the server is away: try again
                pause = min(pause * 2, 1.0)
                continue
            ready()
            pause = 0.05
            with _Waiting(sock) as waiting:
                if complete(self._buf):  # came with the connect's PONG
                    waiting.nudge()
                name = threading.current_thread().name
                args = (waiting, handler)
                more = [
                    threading.Thread(target=self._read, args=args, name=f"{name}-{i}", daemon=True)
                    for i in range(1, readers if SHARED_WAIT else 1)
                ]
                for thread in more:
                    thread.start()
                self._read(waiting, handler)
                for thread in more:
                    thread.join()
            self.close()
        self.close()

    def stop(self) -> None:
        """End `serve` (within a quarter second)."""
        self._stop.set()

    def _read(self, waiting: _Waiting, handler: Callable[[bytes, str], None]) -> None:
        """One reader: wait for data (or a nudge), take one message, handle it; until
        `stop` or the connection breaks."""
        self._counted(+1)
        try:
            while not self._stop.is_set() and not waiting.broken:
                message = self._next(waiting)
                if message is None:
                    continue
                try:
                    handler(*message)
                except Exception as e:  # a handler's bug never stops the subscription
                    logger.opt(exception=e).error("{}: handler failed: {!r}", waiting.sock, e)
                finally:
                    self._counted(+1)
        finally:
            self._counted(-1)

    def _counted(self, change: int) -> None:
        with self._count:
            self._free += change

    def _next(self, waiting: _Waiting) -> tuple[bytes, str] | None:
        """The next message and its reply subject, once data (or a nudge) came for this
        reader; None after POLL s without one, or if the connection broke."""
        events = waiting.wait(POLL)
        if not events:
            return None
        with self._parse:
            if waiting.sock_ready(events):
                try:
                    chunk = waiting.sock.recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    self._buf += chunk
                else:  # the server closed it (or it failed): open it again
                    waiting.break_()
            waiting.rearm(events)
            message = self._take(waiting)
            if message is not None:
                self._counted(-1)  # before another reader may look
                if self._buf and complete(self._buf):
                    waiting.nudge()  # more came in the same read: another reader takes it
            return message

    def _take(self, waiting: _Waiting) -> tuple[bytes, str] | None:
        """The first message in the buffer (PINGs before it answered); None if there is
        no whole one."""
        while (item := take(self._buf)) is not None:
            line, fields, payload = item
            if fields is not None:
                # MSG subject sid reply size / HMSG subject sid reply hsize size
                headers = line[:1] == b"H"
                if len(fields) == (6 if headers else 5):
                    return payload[int(fields[-2]) if headers else 0 :], fields[3].decode()
            elif line == b"PING":
                try:
                    with self._send:
                        waiting.sock.sendall(b"PONG\r\n")
                except OSError:
                    waiting.break_()
                    return None
            elif line.startswith(b"-ERR"):
                logger.warning(
                    "{}: the server says {}", waiting.sock, line.decode(errors="replace")
                )
                waiting.break_()
                return None
        return None


def complete(buf: bytearray) -> bool:
    """Whether ``buf`` starts with a whole protocol item (what `take` would take)."""
    end = buf.find(b"\r\n")
    if end < 0:
        return False
    if buf.startswith((b"MSG ", b"HMSG ")):
        return len(buf) >= end + 2 + int(buf[:end].split()[-1]) + 2
    return True


class _Waiting:
    """What the readers of one connection wait on: its socket and a nudge pipe, each
    armed for one reader at a time (epoll, one-shot); without epoll, a poll of both
    (one reader)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.broken = False
        self._fd = sock.fileno()
        self._nudge_r, self._nudge_w = os.pipe()
        os.set_blocking(self._nudge_r, False)
        os.set_blocking(self._nudge_w, False)
        self._epoll = select.epoll() if SHARED_WAIT else None
        self._poll = None if SHARED_WAIT else select.poll()
        for fd in (self._fd, self._nudge_r):
            if self._epoll is not None:
                self._epoll.register(fd, select.EPOLLIN | select.EPOLLONESHOT)
            else:
                assert self._poll is not None
                self._poll.register(fd, select.POLLIN)

    def __enter__(self) -> _Waiting:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._epoll is not None:
            self._epoll.close()
        os.close(self._nudge_r)
        os.close(self._nudge_w)

    def wait(self, timeout: float) -> list[int]:
        """The descriptors ready for this reader (empty after ``timeout`` s)."""
        if self.broken:
            return []
        try:
            if self._epoll is not None:
                return [fd for fd, _mask in self._epoll.poll(timeout)]
            assert self._poll is not None
            return [fd for fd, _mask in self._poll.poll(timeout * 1000.0)]
        except (OSError, ValueError):  # closed under us: the connection ends
            self.break_()
            return []

    def sock_ready(self, events: list[int]) -> bool:
        """Whether the socket is among ``events``."""
        return self._fd in events

    def rearm(self, events: list[int]) -> None:
        """Take the nudges, and arm again what fired for the next reader."""
        for fd in events:
            if fd == self._nudge_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._nudge_r, 4096)
            if self._epoll is not None and (fd != self._fd or not self.broken):
                self._epoll.modify(fd, select.EPOLLIN | select.EPOLLONESHOT)

    def nudge(self) -> None:
        """Wake a waiting reader: there is a whole message in the buffer."""
        with contextlib.suppress(BlockingIOError):  # the pipe is full: one is pending
            os.write(self._nudge_w, b"!")

    def break_(self) -> None:
        """The connection broke: every reader stops waiting on it."""
        self.broken = True
