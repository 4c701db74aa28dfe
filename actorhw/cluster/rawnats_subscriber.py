"""A blocking NATS subscription served by a few reader threads (a host's fast lane).

One reader at a time holds the connection's read turn: it reads until it has one whole
message, gives the turn to the next reader waiting for it, and handles its message
itself.  So a handler may run a short piece of work in place (a board exchange on an
idle board, answered from the same thread) while another reader goes on reading; a
handler that sees no other reader free (`BlockingSubscriber.others_free`) hands long
work to other threads instead, so the subscription is never left unread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.rawnats import BlockingNats, NotSent, readable, take
from actorhw.core.log import logger

#: Seconds a reader waits for data or the read turn before it looks at `stop` again.
POLL = 0.25


class BlockingSubscriber(BlockingNats):
    """A blocking connection subscribed to ``subject``: `serve` reads it and hands every
    message and its reply subject to ``handler`` in a reader's thread; `publish` answers
    from any thread.  A broken connection is opened again (with a pause) until `stop`."""

    def __init__(self, config: ClusterConfig, subject: str) -> None:
        super().__init__(config, subscribe=subject)
        self._stop = threading.Event()
        self._turn = threading.Lock()  # the read turn: one reader reads at a time
        self._count = threading.Lock()
        self._free = 0  # readers reading or waiting for the turn (not in a handler)

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
        return self._free > 0

    def serve(
        self,
        handler: Callable[[bytes, str], None],
        ready: Callable[[], None],
        *,
        readers: int = 1,
    ) -> None:
        """Read and hand over messages until `stop`, with ``readers`` threads (this one
        and ``readers - 1`` more); ``ready()`` once subscribed."""
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
            broken = threading.Event()
            name = threading.current_thread().name
            args = (sock, broken, handler)
            more = [
                threading.Thread(target=self._read, args=args, name=f"{name}-{i}", daemon=True)
                for i in range(1, readers)
            ]
            for thread in more:
                thread.start()
            self._read(sock, broken, handler)
            for thread in more:
                thread.join()
            self.close()
        self.close()

    def stop(self) -> None:
        """End `serve` (within a quarter second)."""
        self._stop.set()

    def _read(
        self, sock: socket.socket, broken: threading.Event, handler: Callable[[bytes, str], None]
    ) -> None:
        """One reader: take the read turn, read one message, give the turn up, handle
        it; until `stop` or the connection breaks."""
        self._counted(+1)
        try:
            while not self._stop.is_set() and not broken.is_set():
                if not self._turn.acquire(timeout=POLL):
                    continue
                try:
                    message = self._next(sock, broken)
                    if message is not None:
                        self._counted(-1)  # before the turn is given up
                finally:
                    self._turn.release()
                if message is None:
                    continue
                try:
                    handler(*message)
                except Exception as e:  # a handler's bug never stops the subscription
                    logger.opt(exception=e).error("{}: handler failed: {!r}", sock, e)
                finally:
                    self._counted(+1)
        finally:
            self._counted(-1)

    def _counted(self, change: int) -> None:
        with self._count:
            self._free += change

    def _next(self, sock: socket.socket, broken: threading.Event) -> tuple[bytes, str] | None:
        """The next message and its reply subject (reading the socket as needed; PINGs
        answered); None after POLL s without one, or if the connection broke."""
        while True:
            item = take(self._buf)
            if item is not None:
                line, fields, payload = item
                if fields is not None:
                    # MSG subject sid reply size / HMSG subject sid reply hsize size
                    headers = line[:1] == b"H"
                    if len(fields) == (6 if headers else 5):
                        return payload[int(fields[-2]) if headers else 0 :], fields[3].decode()
                elif line == b"PING":
                    self._write(sock, b"PONG\r\n", broken)
                elif line.startswith(b"-ERR"):
                    logger.warning("{}: the server says {}", sock, line.decode(errors="replace"))
                    broken.set()
                    return None
                continue
            if broken.is_set() or self._stop.is_set():
                return None
            try:
                if not readable(sock, POLL):
                    return None
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:  # the server closed it (or it failed): open it again
                broken.set()
                return None
            self._buf += chunk

    def _write(self, sock: socket.socket, data: bytes, broken: threading.Event) -> None:
        """Write protocol ``data`` (a PONG); a failed write breaks the connection."""
        try:
            with self._send:
                sock.sendall(data)
        except OSError:
            broken.set()
