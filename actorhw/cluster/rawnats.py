"""A blocking NATS connection for the blocking Cluster's requests.

nats-py is an asyncio client: a blocking caller's request hops into its event-loop
thread and back, and the loop's tasks (publish, flusher, reader, subscription) each
take a turn.  For the hot path of a blocking caller this module speaks the NATS client
protocol itself on a plain socket: the caller's thread writes the request and reads its
reply itself (one of the waiting callers reads for all, the others wait on a condition),
with nothing in between.  Only what request/reply needs: CONNECT (user and password, or
a token), SUB on one reply inbox, PUB, MSG and HMSG (a "no responders" status), PING and
PONG.  TLS, credentials files and nkeys are the asyncio client's (``supports`` says no).

Never retried behind the caller's back: a request whose connection fails after it was
written raises HostUnreachableError (it may have run); one that could not be written
raises NotSent and the caller may take another path.
"""

from __future__ import annotations

import itertools
import json
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from actorhw.cluster.config import ClusterConfig
from actorhw.core.errors import HostUnreachableError

#: Seconds a connect (TCP, INFO, CONNECT, PONG) may take.
CONNECT_TIMEOUT = 2.0


class NotSent(Exception):
    """The request was not written (no connection): nothing ran; try another path."""


class NoResponder(Exception):
    """The server found nobody subscribed to the request's subject: nothing ran."""


def supports(config: ClusterConfig) -> bool:
    """Whether this connection can reach ``config``'s servers (plain TCP, user and
    password or token)."""
    return not (
        config.tls_context() is not None
        or config.creds
        or config.nkey_seed
        or any(not s.startswith("nats://") for s in config.servers)
    )


class _Slot:
    """Where one request's answer lands: the reply's payload, or an exception."""

    __slots__ = ("answer",)

    def __init__(self) -> None:
        self.answer: bytes | BaseException | None = None


class BlockingNats:
    """One blocking connection, shared by threads; see the module's doc."""

    def __init__(self, config: ClusterConfig, *, subscribe: str | None = None) -> None:
        self._config = config
        self._inbox = f"_INBOX.{secrets.token_hex(11)}."
        self._reply_to = self._inbox.encode()
        self._subject = (subscribe or self._inbox + "*").encode()
        self._sock: socket.socket | None = None
        self._poller: select.poll | None = None  # the socket's, for waits
        self._buf = bytearray()
        self._max_payload = 1 << 20
        self._send = threading.RLock()  # writes; a reader answering a PING takes it too
        # The waiters and the read turn (_reading).  Callers that wait while another
        # reads sleep on _woken (counted in _sleeping: no wake-up without a sleeper).
        self._lock = threading.Lock()
        self._woken = threading.Condition(self._lock)
        self._sleeping = 0
        self._reading = False
        self._waiters: dict[bytes, _Slot] = {}
        self._seq = itertools.count()

    # --- connection ------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        errors = []
        for url in self._config.servers:
            try:
                sock = self._open(url)
            except (OSError, ValueError, ConnectionError) as e:
                errors.append(f"{url}: {e!r}")
                continue
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            self._poller = poller
            return sock
        raise NotSent("; ".join(errors))

    def _open(self, url: str) -> socket.socket:
        parts = urlsplit(url)
        sock = socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 4222), timeout=CONNECT_TIMEOUT
        )
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buf.clear()
            head, _, body = self._line(sock).partition(b" ")
            info = json.loads(body) if head == b"INFO" else {}
            if info.get("tls_required"):
                raise ConnectionError("the server requires TLS")
            self._max_payload = int(info.get("max_payload", self._max_payload))
            options: dict[str, Any] = {
                "verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                "protocol": 1, "lang": "python-actorhw", "version": "1",
                "name": "actorhw-direct",
            }  # fmt: skip
            user = self._config.user or parts.username
            password = self._config.password or parts.password
            token = self._config.token or (parts.username if not parts.password else None)
            if self._config.token or (token and not self._config.user):
                options["auth_token"] = token
            elif user:
                options["user"], options["pass"] = user, password or ""
            sock.sendall(
                b"CONNECT " + json.dumps(options).encode() + b"\r\n"
                + b"SUB " + self._subject + b" 1\r\nPING\r\n"
            )  # fmt: skip
            while True:
                line = self._line(sock)
                if line == b"PONG":
                    break
                if line.startswith(b"-ERR"):
                    raise ConnectionError(line.decode(errors="replace"))
            sock.settimeout(None)
            return sock
        except BaseException:
            sock.close()
            raise

    def _line(self, sock: socket.socket) -> bytes:
        """One protocol line (the buffer first, then the socket)."""
        while (end := self._buf.find(b"\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buf += chunk
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        with self._send:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _readable(self, timeout: float) -> bool:
        """Whether the socket has data (or an end) to read within ``timeout`` s; the
        socket stays blocking (a writer may be in sendall meanwhile)."""
        poller = self._poller
        if poller is None:
            raise OSError("no connection")
        return bool(poller.poll(max(0.0, timeout) * 1000.0))

    def _ready(self) -> socket.socket:
        """The connection (under the send lock), checked: opened (again) if it is not,
        or if the server closed it while nobody was reading (what came meanwhile is
        handled here: PINGs answered, late replies dropped)."""
        sock = self._sock
        if sock is not None:
            with self._lock:
                drain = not self._reading
                self._reading = True
            if drain:
                try:
                    while self._readable(0.0):
                        chunk = sock.recv(65536)
                        if not chunk:
                            raise ConnectionError("the server closed the connection")
                        self._buf += chunk
                    self._dispatch(sock)
                except (OSError, ConnectionError):
                    self.close()
                    sock = None
                finally:
                    self._end_turn()
        if sock is None:
            sock = self._sock = self._connect()
        return sock

    def _end_turn(self) -> None:
        """Give the read turn up (waking the callers waiting for it, if any)."""
        with self._lock:
            self._reading = False
            if self._sleeping:
                self._woken.notify_all()

    # --- requests ----------------------------------------------------------------------

    def request(
        self,
        subject: str,
        data: bytes,
        *,
        timeout: float,
        tick: float,
        check: Callable[[], None],
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """Send ``data`` to ``subject`` and wait for the reply up to ``timeout`` s,
        calling ``check()`` every ``tick`` s (it raises to give up).

        Raises:
            NotSent: not written; nothing ran.
            NoResponder: nobody listens on ``subject``; nothing ran.
            HostUnreachableError: the connection failed after the request was written.
            TimeoutError: no reply within ``timeout``.
        """
        answer = self.requests([(subject, data, headers)], timeout=timeout, tick=tick,
                               check=check)[0]  # fmt: skip
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def requests(
        self,
        batch: Sequence[tuple[str, bytes, dict[str, str] | None]],
        *,
        timeout: float,
        tick: float,
        check: Callable[[], None],
    ) -> list[bytes | BaseException]:
        """Send every ``(subject, data, headers)`` in one write (pipelined), then wait
        for their replies; each one's reply or error (NoResponder, TimeoutError,
        HostUnreachableError) in order.  NotSent (raised) if none was written."""
        slots: list[tuple[bytes, _Slot]] = []
        commands = []
        largest = 0  # the server's limit counts an HPUB's headers too
        for subject, data, headers in batch:
            token = b"%d" % next(self._seq)
            slots.append((token, _Slot()))
            reply = self._reply_to + token
            if headers:
                head = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                block = (head + "\r\n").encode()
                largest = max(largest, len(block) + len(data))
                commands.append(b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
                    subject.encode(), reply, len(block), len(block) + len(data), block, data
                ))  # fmt: skip
            else:
                largest = max(largest, len(data))
                commands.append(
                    b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply, len(data), data)
                )
        with self._lock:
            self._waiters.update(slots)
        try:
            with self._send:
                try:
                    sock = self._ready()
                except (NotSent, OSError, ConnectionError) as e:
                    raise NotSent(str(e)) from e
                if largest > self._max_payload:  # known once connected (the INFO's)
                    raise NotSent("larger than the server's max_payload")
                try:
                    sock.sendall(commands[0] if len(commands) == 1 else b"".join(commands))
                except OSError as e:
                    self._sock = None
                    sock.close()
                    raise NotSent(repr(e)) from e
            deadline = time.monotonic() + timeout
            answers: list[bytes | BaseException] = []
            for _token, slot in slots:
                try:
                    answers.append(self._wait(slot, deadline, tick, check))
                except (NoResponder, TimeoutError, HostUnreachableError) as e:
                    answers.append(e)
            return answers
        finally:
            with self._lock:
                for token, _slot in slots:
                    self._waiters.pop(token, None)

    def _wait(self, slot: _Slot, deadline: float, tick: float, check: Callable[[], None]) -> bytes:
        """``slot``'s answer: read by this caller, or by another that reads meanwhile."""
        while True:
            with self._lock:
                while slot.answer is None and self._reading:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    self._sleeping += 1
                    try:
                        woken = self._woken.wait(min(left, tick))
                    finally:
                        self._sleeping -= 1
                    if not woken:
                        check()
                answer = slot.answer
                if answer is None:
                    self._reading = True  # this caller reads for everyone until its reply
            if answer is not None:
                if isinstance(answer, BaseException):
                    raise answer
                return answer
            try:
                self._read_until(slot, deadline, tick, check)
            finally:
                self._end_turn()

    def _read_until(
        self, slot: _Slot, deadline: float, tick: float, check: Callable[[], None]
    ) -> None:
        sock = self._sock
        if sock is None:
            raise HostUnreachableError("the connection to the cluster closed", host="")
        while slot.answer is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            try:
                if not self._readable(min(left, tick)):
                    check()
                    continue
                chunk = sock.recv(65536)
            except OSError as e:
                self.close()
                raise HostUnreachableError(
                    f"the connection to the cluster failed during a call ({e!r})", host=""
                ) from e
            if not chunk:
                self.close()
                raise HostUnreachableError(
                    "the cluster's server closed the connection during a call", host=""
                )
            self._buf += chunk
            try:
                self._dispatch(sock)
            except (OSError, ConnectionError) as e:
                self.close()
                raise HostUnreachableError(
                    f"the connection to the cluster failed during a call ({e!r})", host=""
                ) from e

    def _dispatch(self, sock: socket.socket) -> None:
        """Handle every complete message in the buffer (replies go to their waiters)."""
        woke = False
        while (item := take(self._buf)) is not None:
            line, fields, payload = item
            if fields is not None:
                headers = int(fields[-2]) if line[:1] == b"H" else 0
                woke |= self._deliver(fields, payload, headers)
            elif line == b"PING":
                with self._send:
                    sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ConnectionError(line.decode(errors="replace"))
        if woke:
            with self._lock:  # a caller checks its slot under the lock before it sleeps
                if self._sleeping:
                    self._woken.notify_all()

    def _deliver(self, fields: list[bytes], payload: bytes, headers: int) -> bool:
        """A message came (``fields``: its protocol line's); True if a waiter's answer
        landed."""
        slot = self._waiters.get(fields[1][len(self._reply_to) :])
        if slot is None or slot.answer is not None:
            return False  # its caller gave up
        if headers and b" 503" in payload[:headers].split(b"\r\n", 1)[0]:
            slot.answer = NoResponder()
        else:
            slot.answer = payload[headers:]
        return True


def take(buf: bytearray) -> tuple[bytes, list[bytes] | None, bytes] | None:
    """The first complete protocol item of ``buf``, removed from it: ``(line, fields,
    payload)``, fields the split line of a MSG or HMSG (its payload with its headers),
    None for any other line (its payload empty); None if the item is not all here."""
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    line = bytes(buf[:end])
    if line.startswith((b"MSG ", b"HMSG ")):
        fields = line.split()
        size = int(fields[-1])
        if len(buf) < end + 2 + size + 2:
            return None  # the payload is not all here yet
        payload = bytes(buf[end + 2 : end + 2 + size])
        del buf[: end + 2 + size + 2]
        return line, fields, payload
    del buf[: end + 2]
    return line, None, b""


def readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has data (or an end) to read within ``timeout`` s; the socket
    stays blocking (a writer may be in sendall meanwhile)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(0.0, timeout) * 1000.0))
