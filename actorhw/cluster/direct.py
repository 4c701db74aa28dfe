"""The blocking Cluster's fast path for device operations.

A ``use`` through the asyncio client crosses into the event-loop thread as a task, goes
down five coroutines to nats-py's request, and comes back up them and across again when
the reply arrives.  Here the caller's thread checks the lease, encodes the request and
sends it itself on a blocking connection of its own (actorhw.cluster.rawnats), reading
the reply itself too: no thread hop at all.  Where that connection cannot serve (TLS,
credentials files, nkeys; or it cannot be opened now) the loop thread only publishes
the request and the reply wakes the caller directly from this client's inbox
subscription: one thread hop each way, no task on the way back.

Whatever this path cannot decide alone goes the full way (``SLOW``): a lease to renew
first, a host without a responder (the full path waits for its next heartbeat), a
closed client.  Nothing is sent twice: a request is retried on another path only when
it was never written.  Fencing is the host's, as on the full path: the request carries
the lease's token and the host refuses one that is not current.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import json
import time
from typing import TYPE_CHECKING, Any, Final

from actorhw.cluster import rawnats, wire
from actorhw.cluster.client import GRACE
from actorhw.cluster.leases import Held
from actorhw.cluster.views import split_board
from actorhw.core.errors import ActorHwError, HostUnreachableError, TimedOutError
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import SharingPolicy
from actorhw.core.messages import Lease, Priority
from actorhw.core.messages.cluster import LeaseHolder, LeaseRecord, RemoteCall, RemoteReply

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from actorhw.cluster.client import AsyncCluster

#: The fast path cannot answer: take the full one.
SLOW: Final[Any] = object()

#: The JetStream header of a compare-and-set write: the key's expected last revision.
LAST: Final = "Nats-Expected-Last-Subject-Sequence"

#: Seconds the loop path serves after the blocking connection could not be opened.
RAW_RETRY: Final = 5.0


class _NoResponder(Exception):
    """The server found nobody subscribed to the host's subject."""


class DirectCalls:
    """Device operations of a blocking Cluster, answered straight to the caller's thread.

    Args:
        cl: the asyncio cluster (its watches say which hosts are online, its lease book
            which leases are held).
        loop: the loop ``cl`` runs on.
    """

    def __init__(self, cl: AsyncCluster, loop: asyncio.AbstractEventLoop) -> None:
        self._cl = cl
        self._loop = loop
        self._waiters: dict[str, concurrent.futures.Future[bytes]] = {}
        self._inbox = ""
        self._seq = itertools.count()
        config = cl.config
        self._raw = rawnats.BlockingNats(config) if rawnats.supports(config) else None
        self._raw_again = 0.0  # time.monotonic() before which the loop path serves
        self._marks: dict[str, int] = {}  # key -> revision of this client's last delete

    def _blocking(self) -> rawnats.BlockingNats | None:
        """The blocking connection, unless the config needs the asyncio client (TLS,
        credentials files, nkeys) or it failed lately."""
        if self._raw is None or time.monotonic() < self._raw_again:
            return None
        return self._raw

    @property
    def blocking(self) -> bool:
        """Whether the blocking connection serves now."""
        return self._blocking() is not None

    def _still_online(self, host: str, what: str) -> None:
        if not self._cl.online(host):
            raise HostUnreachableError(
                f"{what}: host {host} went offline during the call", host=host, device=what
            )

    # --- leases: a SINGLE device's create and delete in the leases bucket --------------

    def _kv_many(
        self, writes: list[tuple[str, bytes, dict[str, str]]], timeout: float
    ) -> list[Any]:
        """Write keys of the leases bucket on the blocking connection, pipelined: each
        one's new revision, SLOW (not written, a conflict, no JetStream now: the full
        path, which reads and says why), or a TimedOutError."""
        raw, cl = self._blocking(), self._cl
        if raw is None or not writes:
            return [SLOW] * len(writes)
        bucket = cl.config.leases_bucket
        batch = [(f"$KV.{bucket}.{key}", value, headers) for key, value, headers in writes]
        try:
            answers = raw.requests(batch, timeout=timeout, tick=timeout, check=lambda: None)
        except rawnats.NotSent:
            return [SLOW] * len(writes)
        out: list[Any] = []
        for (key, _v, _h), answer in zip(writes, answers, strict=True):
            if isinstance(answer, TimeoutError):
                out.append(TimedOutError(
                    f"{key}: the leases bucket did not answer within {timeout:g} s",
                    device=key, timeout=timeout,
                ))  # fmt: skip
                continue
            if isinstance(answer, HostUnreachableError):  # written, maybe applied
                out.append(answer)
                continue
            try:  # a PubAck, or {"error": ...} (a conflict: the full path says why)
                ack: dict[str, Any] = json.loads(answer) if isinstance(answer, bytes) else {}
                out.append(int(ack["seq"]) if "error" not in ack else SLOW)
            except (ValueError, KeyError, TypeError):
                out.append(SLOW)  # no responder (JetStream away): nothing written
        return out

    def acquire(self, device: DeviceId, *, owner: str | None, timeout: float) -> Any:
        """Hold a SINGLE device: one create in the leases bucket, from the caller's
        thread, exactly as LeaseBook.acquire writes it; its Lease, or SLOW (held, not
        SINGLE, anything the full path must decide)."""
        got = self.acquire_many([device], owner=owner, timeout=timeout)[0]
        if isinstance(got, BaseException):
            raise got
        return got

    def acquire_many(
        self, devices: list[DeviceId], *, owner: str | None, timeout: float
    ) -> list[Any]:
        """`acquire` of every device, the creates pipelined: a Lease, SLOW or an error
        each."""
        cl, book = self._cl, self._cl._book
        if book is None:
            return [SLOW] * len(devices)
        who = cl._owner(owner)
        plans: list[tuple[int, DeviceId, str, LeaseRecord, int]] = []
        out: list[Any] = [SLOW] * len(devices)
        for i, device in enumerate(devices):
            if not isinstance(device, DeviceId):
                continue
            try:
                host, board, d = cl._where(device)
            except ActorHwError as e:
                out[i] = e
                continue
            if d.policy is not SharingPolicy.SINGLE:
                continue
            key = wire.lease_key(host, board, d.name)
            mine = LeaseHolder(owner=who, token=0, client=book.client, renewed=time.time())
            record = LeaseRecord(host=host, board=board, device=d.name, policy=d.policy,
                                 holders=(mine,))  # fmt: skip
            plans.append((i, device, key, record, d.generation))
        writes = [
            (key, wire.encode(record), {LAST: str(self._last_of(key))})
            for _i, _d, key, record, _g in plans
        ]
        for (i, device, key, record, generation), revision in zip(
            plans, self._kv_many(writes, timeout), strict=True
        ):
            if isinstance(revision, int):
                book.held[(key, revision)] = Held(
                    key=key, owner=who, token=revision, revision=revision, record=record
                )
                out[i] = Lease(device=device, owner=who, token=revision, generation=generation)
            else:
                out[i] = revision
        return out

    def _last_of(self, key: str) -> int:
        """The revision a create of ``key`` expects: its delete or expiry marker's,
        the latest this client knows (its own deletes are known before the watch says
        so); 0 if the watch shows it held since (the create then conflicts and the full
        path says by whom)."""
        cl, mine = self._cl, self._marks.get(key, 0)
        revision = cl._records.revision(key)
        if revision is not None and revision > mine:
            return 0
        return max(mine, cl._last.get(key, 0))

    def release(self, lease: Lease, *, timeout: float) -> Any:
        """End a SINGLE lease not opened on its host: one delete against the revision
        this client wrote last; 0 (holders left), or SLOW."""
        got = self.release_many([lease], timeout=timeout)[0]
        if isinstance(got, BaseException):
            raise got
        return got

    def release_many(self, leases: list[Lease], *, timeout: float) -> list[Any]:
        """`release` of every lease, the deletes pipelined: 0, SLOW or an error each."""
        book = self._cl._book
        out: list[Any] = [SLOW] * len(leases)
        if book is None:
            return out
        plans: list[tuple[int, str, Lease, int]] = []
        for i, lease in enumerate(leases):
            if not isinstance(lease, Lease):
                continue
            host, board = split_board(type(lease.device).board)
            key = wire.lease_key(host, board, lease.device.name)
            held = book.held.get((key, lease.token))
            if held is None or held.lost is not None or held.opened:
                continue
            if held.record.policy is SharingPolicy.SINGLE:
                plans.append((i, key, lease, held.revision))
        writes = [(key, b"", {"KV-Operation": "DEL", LAST: str(last)})
                  for _i, key, _l, last in plans]  # fmt: skip
        for (i, key, lease, _last), marker in zip(
            plans, self._kv_many(writes, timeout), strict=True
        ):
            if isinstance(marker, int):
                book.held.pop((key, lease.token), None)
                self._marks[key] = marker  # the watch says so later: a next create needs it
                out[i] = 0
            else:
                out[i] = marker
        return out

    def call_many(self, calls: list[tuple[str, RemoteCall]], timeout: float) -> list[Any]:
        """Requests to hosts' fast lanes (``(host, call)``), pipelined on the blocking
        connection: each one's reply value, an error, or SLOW (not sent, or no
        responder: the full path)."""
        raw, cl = self._blocking(), self._cl
        if raw is None or not calls:
            return [SLOW] * len(calls)
        batch = [(cl.config.fast_subject(host), wire.encode(call), None) for host, call in calls]
        try:
            answers = raw.requests(
                batch, timeout=timeout + GRACE, tick=timeout + GRACE, check=lambda: None
            )
        except rawnats.NotSent:
            return [SLOW] * len(calls)
        out: list[Any] = []
        for (host, call), answer in zip(calls, answers, strict=True):
            if isinstance(answer, rawnats.NoResponder):
                out.append(SLOW)
            elif isinstance(answer, TimeoutError):
                out.append(TimedOutError(
                    f"host {host} did not answer within {call.timeout + GRACE:g} s",
                    timeout=call.timeout,
                ))  # fmt: skip
            elif isinstance(answer, BaseException):
                out.append(answer)
            else:
                try:
                    out.append(wire.raise_reply(wire.decode(answer, RemoteReply)))
                except ActorHwError as e:
                    out.append(e)
        return out

    def close(self) -> None:
        """Close the blocking connection."""
        if self._raw is not None:
            self._raw.close()

    async def start(self) -> None:
        """Subscribe to this client's reply inbox (on the loop)."""
        nc = self._cl._nc
        if nc is None:
            return
        prefix = nc.new_inbox() + "."
        await nc.subscribe(prefix + "*", cb=self._on_reply)
        self._inbox = prefix

    def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...],
        *,
        timeout: float,
        priority: Priority,
        wait: bool,
        exclusive: bool,
    ) -> Any:
        """Perform ``op`` on the leased device's host (from the caller's thread); its
        result, its error raised, or ``SLOW``: nothing was sent, take the full path."""
        cl, book = self._cl, self._cl._book
        if not self._inbox or book is None or not isinstance(lease, Lease):
            return SLOW
        host, board = split_board(type(lease.device).board)
        name = lease.device.name
        held = book.held.get((wire.lease_key(host, board, name), lease.token))
        # A lease not renewed for 2/3 of its TTL is renewed first (the full path does).
        if held is None or held.lost is not None or not held.opened:
            return SLOW
        if time.monotonic() - held.renewed > book.ttl * 2 / 3:
            return SLOW
        what = lease.device.key
        cl._require_online(host, what)
        call = RemoteCall(
            op="use", board=board, device=name, owner=lease.owner, token=lease.token,
            timeout=timeout, name=op, args=tuple(args), priority=int(priority), wait=wait,
            exclusive=exclusive,
        )  # fmt: skip
        data = wire.encode(call)
        raw = self._blocking()
        if raw is not None:
            try:
                answer = raw.request(
                    cl.config.fast_subject(host), data, timeout=timeout + GRACE,
                    tick=cl.config.heartbeat,
                    check=functools.partial(self._still_online, host, what),
                )  # fmt: skip
                return wire.decode_value_reply(answer)
            except rawnats.NoResponder:  # no fast lane there (yet): the full path
                return SLOW
            except TimeoutError:
                cl._require_online(host, what)
                raise TimedOutError(
                    f"{what}: host {host} did not answer within {timeout + GRACE:g} s",
                    device=what,
                    timeout=timeout,
                ) from None
            except rawnats.NotSent:  # no connection of its own now: through the loop
                self._raw_again = time.monotonic() + RAW_RETRY
        token = str(next(self._seq))
        waiter: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        self._waiters[token] = waiter
        subject = cl.config.call_subject(host)
        try:
            self._loop.call_soon_threadsafe(self._publish, subject, data, token, waiter)
            answer = self._wait(waiter, host, what, timeout)
        except _NoResponder:
            return SLOW
        except RuntimeError:  # the loop is closed
            return SLOW
        finally:
            self._waiters.pop(token, None)
        return wire.raise_reply(wire.decode(answer, RemoteReply))

    def _wait(
        self, waiter: concurrent.futures.Future[bytes], host: str, what: str, timeout: float
    ) -> bytes:
        """The reply; HostUnreachableError as soon as the host goes offline (checked
        every heartbeat interval), TimedOutError at the deadline (plus GRACE)."""
        cl = self._cl
        deadline = time.monotonic() + timeout + GRACE
        while True:
            left = deadline - time.monotonic()
            try:
                return waiter.result(max(0.0, min(left, cl.config.heartbeat)))
            except concurrent.futures.TimeoutError:
                if not cl.online(host):
                    raise HostUnreachableError(
                        f"{what}: host {host} went offline during the call",
                        host=host,
                        device=what,
                    ) from None
                if left <= cl.config.heartbeat:
                    raise TimedOutError(
                        f"{what}: host {host} did not answer within {timeout + GRACE:g} s",
                        device=what,
                        timeout=timeout,
                    ) from None

    def _publish(
        self, subject: str, data: bytes, token: str, waiter: concurrent.futures.Future[bytes]
    ) -> None:
        """Send the request (on the loop); a send that fails wakes its caller."""
        nc = self._cl._nc
        if nc is None:
            _settle(waiter, error=HostUnreachableError("this cluster client is closed", host=""))
            return
        sent = self._loop.create_task(nc.publish(subject, data, reply=self._inbox + token))

        def check(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                error = HostUnreachableError(
                    f"{subject}: the request could not be sent ({task.exception()!r})",
                    host=subject,
                )
                _settle(waiter, error=error)

        sent.add_done_callback(check)

    async def _on_reply(self, msg: Msg) -> None:
        waiter = self._waiters.pop(msg.subject[len(self._inbox) :], None)
        if waiter is None:
            return  # its caller gave up
        if msg.headers and msg.headers.get("Status") == "503":
            _settle(waiter, error=_NoResponder())
        else:
            _settle(waiter, value=msg.data)


def _settle(
    waiter: concurrent.futures.Future[bytes],
    *,
    value: bytes = b"",
    error: BaseException | None = None,
) -> None:
    if waiter.done():
        return
    try:
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(value)
    except concurrent.futures.InvalidStateError:
        pass  # settled meanwhile (the caller timed out)
