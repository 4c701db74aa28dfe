"""AsyncCluster: the Runtime's API over every host of a cluster, for asyncio.

    async with await AsyncCluster.connect("nats://lab:4222", owner="ci-17") as cl:
        ids = cl.ids("lab-1/microbit-qemu")
        async with cl.lease(ids.BOARD) as board:
            print(await board.exec("print(1)"))

Boards are named ``host/board``; their ids are enums like a local runtime's, and a
:class:`~actorhw.core.messages.Lease` holds the cluster's fencing token.  The hosts'
heartbeats (a watch of the hosts bucket) say which boards are online; a call to an
offline host fails at once with HostUnreachableError.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import attrs

from actorhw.cluster import wire
from actorhw.cluster.board_calls import BoardCalls
from actorhw.cluster.config import Buckets, ClusterConfig
from actorhw.cluster.directory import Seen
from actorhw.cluster.host import client_name
from actorhw.cluster.leases import LeaseBook
from actorhw.cluster.views import device_info
from actorhw.core.errors import (
    HostUnreachableError,
    InvalidArgumentError,
    TimedOutError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.messages import DeviceInfo, Lease, Priority
from actorhw.core.messages.cluster import (
    HostAnnounce,
    HostDevice,
    LeaseRecord,
    RemoteCall,
    RemoteReply,
    ReservationRequest,
)

if TYPE_CHECKING:
    from nats.aio.client import Client

    from actorhw.cluster.reservations import Reservation

#: Seconds a request waits beyond the operation's own deadline (the host's error wins).
GRACE = 2.0
DEFAULT_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 1.0
"""How long closing a client that did not finish connecting may take."""


class AsyncCluster(BoardCalls):
    """A connection to a cluster. Build it with :meth:`connect`."""

    def __init__(self, config: ClusterConfig, *, owner: str | None) -> None:
        self.config = config
        self.owner = owner
        self.client = client_name()
        self._nc: Client | None = None
        self._buckets: Buckets | None = None
        self._book: LeaseBook | None = None
        self._hosts: dict[str, Seen] = {}
        self._records = wire.Records()
        self.waiting: dict[str, tuple[int, ReservationRequest]] = {}
        """The reservations queue: key -> (arrival revision, request)."""
        self._last: dict[str, int] = {}  # key -> revision of its delete/expiry marker
        self._enums: dict[tuple[str, tuple[str, ...]], type[DeviceId]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._calls: dict[asyncio.Task[Any], str] = {}  # requests in flight -> their host
        self._cut: set[asyncio.Task[Any]] = set()  # ... cut by _ticks: the host went offline
        self._watchers: list[Any] = []
        self.changed = asyncio.Condition()
        """Notified on every heartbeat and lease change (``wait_for`` waits on it)."""

    @classmethod
    async def connect(
        cls,
        url: str | ClusterConfig,
        *,
        owner: str | None = None,
        timeout: float = 10.0,
        **options: Any,
    ) -> AsyncCluster:
        """Connect to the cluster at ``url`` (or a ClusterConfig; ``options`` are its
        fields: prefix, user, password, token, creds, tls_ca...).

        Raises:
            HostUnreachableError: no server answered.
        """
        config = url if isinstance(url, ClusterConfig) else ClusterConfig.of(url, **options)
        self = cls(config, owner=owner)
        try:
            await asyncio.wait_for(self._start(), timeout)
        except TimeoutError:
            with contextlib.suppress(Exception):  # the answer is due now, closed or not
                await asyncio.wait_for(self.aclose(), _CLOSE_TIMEOUT)
            raise HostUnreachableError(
                f"the cluster at {', '.join(config.servers)} did not answer within {timeout:g} s",
                host=",".join(config.servers),
            ) from None
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _start(self) -> None:
        nc = self._nc = await self.config.connect(f"actorhw-client-{self.client}")
        buckets = self._buckets = await self.config.buckets(nc.jetstream())
        status = await buckets.leases.status()
        self._book = LeaseBook(
            buckets.leases, ttl=status.ttl or self.config.lease_ttl, client=self.client
        )
        await nc.subscribe(self.config.beat_subject("*"), cb=self._on_beat)
        hosts = await buckets.hosts.watchall()
        leases = await buckets.leases.watchall()
        queue = await buckets.queue.watchall()
        self._watchers = [hosts, leases, queue]
        initial = [asyncio.Event(), asyncio.Event(), asyncio.Event()]
        self._tasks = [
            asyncio.ensure_future(self._watch_hosts(hosts, initial[0])),
            asyncio.ensure_future(self._watch_leases(leases, initial[1])),
            asyncio.ensure_future(self._watch_queue(queue, initial[2])),
            asyncio.ensure_future(self._renewals()),
            asyncio.ensure_future(self._ticks()),
        ]
        for event in initial:
            await event.wait()

    @property
    def buckets(self) -> Buckets:
        """The cluster's buckets, bound."""
        if self._buckets is None:
            raise HostUnreachableError("this cluster client is closed", host="")
        return self._buckets

    async def reserve(
        self,
        pattern: str,
        *,
        count: int = 1,
        wait: float = 60.0,
        priority: int = 0,
        owner: str | None = None,
    ) -> Reservation:
        """Wait for ``count`` boards matching ``pattern`` and hold every device of them;
        see actorhw.cluster.reservations. TimedOutError after ``wait`` s."""
        from actorhw.cluster.reservations import reserve

        return await reserve(
            self, pattern, count=count, wait=wait, priority=priority, owner=self._owner(owner)
        )

    @property
    def ttl(self) -> float:
        """The leases' TTL in seconds (the bucket's)."""
        return self._lease_book().ttl

    async def aclose(self) -> None:
        """Release every lease held and disconnect. Safe to call twice."""
        book = self._book
        if book is not None and self._nc is not None and self._nc.is_connected:
            for held in list(book.held.values()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(book.release(held.key, held.token), 2.0)
        for task in self._tasks:
            task.cancel()
        for watcher in self._watchers:
            with contextlib.suppress(Exception):
                await watcher.stop()
        self._tasks, self._watchers = [], []
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- watches ---------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _watch_hosts(self, watcher: Any, initial: asyncio.Event) -> None:
        async for entry in watcher:
            if entry is None:
                initial.set()
                continue
            if entry.operation is None and entry.value:
                announce = wire.decode(entry.value, HostAnnounce)
                seen = self._hosts.get(announce.host)
                if seen is not None and seen.announce.at == announce.at:
                    continue  # the same heartbeat again (a watch re-created on reconnect)
                # Its age by the wall clocks (the lab's machines keep NTP time): a watch
                # re-created on reconnect delivers the last heartbeat again, maybe old.
                age = max(0.0, time.time() - announce.at)
                self._hosts[announce.host] = Seen(announce, time.monotonic() - age)
            else:
                self._hosts.pop(entry.key, None)
            await self._notify()

    async def _on_beat(self, msg: Any) -> None:
        """A host's plain heartbeat: it is alive (its state comes through the bucket)."""
        beat = wire.decode(msg.data, HostAnnounce)
        seen = self._hosts.get(beat.host)
        if seen is not None and beat.started == seen.announce.started:
            seen.at = max(seen.at, time.monotonic() - max(0.0, time.time() - beat.at))
            seen.announce = attrs.evolve(seen.announce, stopping=beat.stopping)
            await self._notify()

    async def _watch_leases(self, watcher: Any, initial: asyncio.Event) -> None:
        async for entry in watcher:
            if entry is None:
                initial.set()
                continue
            if entry.operation is None and entry.value:
                self._records.put(entry.key, entry.value, int(entry.revision))
                self._last.pop(entry.key, None)
            else:
                self._records.pop(entry.key)
                self._last[entry.key] = int(entry.revision)
            await self._notify()

    async def _watch_queue(self, watcher: Any, initial: asyncio.Event) -> None:
        async for entry in watcher:
            if entry is None:
                initial.set()
                continue
            if entry.operation is None and entry.value:
                request = wire.decode(entry.value, ReservationRequest)
                first = self.waiting.get(entry.key, (int(entry.revision), request))[0]
                self.waiting[entry.key] = (first, request)
            else:  # served, given up, or vanished (its entry expired)
                self.waiting.pop(entry.key, None)
            await self._notify()

    async def _renewals(self) -> None:
        book = self._lease_book()
        while True:
            await asyncio.sleep(book.ttl / 3)
            await book.renew_all()

    async def _ticks(self) -> None:
        """Wake waiters now and then: a host falls silent without any event. A request
        in flight to a host that has gone offline is cut (it fails with
        HostUnreachableError now, not at its deadline)."""
        while True:
            await asyncio.sleep(self.config.heartbeat)
            for task, host in list(self._calls.items()):
                if not self.online(host) and task not in self._cut:
                    self._cut.add(task)
                    task.cancel()
            await self._notify()

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        """Wait until ``predicate()`` holds; it is checked at every heartbeat and lease
        change (and every heartbeat interval).

        Raises:
            TimedOutError: not within ``timeout`` s.
        """
        try:
            async with self.changed:
                await asyncio.wait_for(self.changed.wait_for(predicate), timeout)
        except TimeoutError:
            raise TimedOutError(f"not so within {timeout:g} s", timeout=timeout) from None

    async def _request(self, host: str, call: RemoteCall, what: str) -> Any:
        """Send ``call`` to ``host``; its reply's value (or its error, raised).

        An offline host fails at once. A host that heartbeated lately but has no
        responder (it is reconnecting to a restarted server) gets one more try after its
        next heartbeat, or fails when it turns offline (``offline_after`` at most)."""
        from nats.errors import NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        assert self._nc is not None
        task = asyncio.current_task()
        assert task is not None
        for attempt in (1, 2):
            self._require_online(host, what)
            asked = time.monotonic()
            self._calls[task] = host  # _ticks cuts it if the host goes offline meanwhile
            try:
                msg = await self._nc.request(
                    self.config.call_subject(host), wire.encode(call), timeout=call.timeout + GRACE
                )
            except asyncio.CancelledError:
                if task not in self._cut:
                    raise
                raise HostUnreachableError(
                    f"{what}: host {host} went offline during the call", host=host, device=what
                ) from None
            except NoRespondersError:
                msg = None
            except (NatsTimeout, TimeoutError):
                self._require_online(host, what)
                raise TimedOutError(
                    f"{what}: host {host} did not answer within {call.timeout + GRACE:g} s",
                    device=what,
                    timeout=call.timeout,
                ) from None
            finally:
                self._calls.pop(task, None)
                if task in self._cut:  # cut: the cancellation is spent here, not later
                    self._cut.discard(task)
                    task.uncancel()
            if msg is not None:
                return wire.raise_reply(wire.decode(msg.data, RemoteReply))
            if attempt == 2:
                break
            with contextlib.suppress(TimedOutError):
                await self.wait_for(
                    functools.partial(self._beat_since, host, asked),
                    timeout=self.config.offline_after,
                )
        raise HostUnreachableError(
            f"{what}: host {host} does not answer (no responder)", host=host, device=what
        )

    def _beat_since(self, host: str, since: float) -> bool:
        """Whether ``host`` heartbeated after ``since`` (monotonic), or is offline."""
        return not self.online(host) or self._hosts[host].at > since

    def _lease_book(self) -> LeaseBook:
        if self._book is None:
            raise HostUnreachableError("this cluster client is closed", host="")
        return self._book

    def _owner(self, owner: str | None) -> str:
        owner = owner or self.owner
        if not isinstance(owner, str) or not owner:
            raise InvalidArgumentError(
                "owner must be a non-empty string (or connect with owner=...)", argument="owner"
            )
        return owner

    async def acquire(
        self, device: DeviceId, *, owner: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Lease:
        """Become a holder of ``device`` in the leases bucket; the lease's token is the
        bucket revision that made it (the fencing token every command carries)."""
        owner = self._owner(owner)
        host, board, d = self._where(device)
        record = LeaseRecord(host=host, board=board, device=d.name, policy=d.policy)
        key = wire.lease_key(host, board, d.name)
        held = await self._lease_book().acquire(
            key, owner=owner, record=record, name=device.key, timeout=timeout,
            last=self._last.get(key, 0),
        )  # fmt: skip
        return Lease(device=device, owner=owner, token=held.token, generation=d.generation)

    async def release(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> int:
        """End ``lease`` (closing it on its host first if open); the holders left."""
        host, board, _d = self._where(lease.device)
        key = wire.lease_key(host, board, lease.device.name)
        book = self._lease_book()
        held = book.held.get((key, lease.token))
        left = await book.release(key, lease.token)
        if held is not None and held.opened and self.online(host):
            call = RemoteCall(
                op="release", board=board, device=lease.device.name, owner=lease.owner,
                token=lease.token, timeout=timeout,
            )  # fmt: skip
            with contextlib.suppress(HostUnreachableError):
                await self._request(host, call, lease.device.key)
        return left

    async def _lease_call(
        self, lease: Lease, op: str, *, timeout: float, **fields: Any
    ) -> tuple[Any, str]:
        if not isinstance(lease, Lease):
            raise InvalidArgumentError(f"expected a Lease, not {lease!r}", argument="lease")
        host, board, _d = self._where(lease.device)
        held = await self._lease_book().check(
            wire.lease_key(host, board, lease.device.name), lease.token, lease.device.key
        )
        call = RemoteCall(
            op=op, board=board, device=lease.device.name, owner=lease.owner, token=lease.token,
            timeout=timeout, **fields,
        )  # fmt: skip
        value = await self._request(host, call, lease.device.key)
        if op == "open":
            held.opened = True
        return value, host

    async def open(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        """Open the device for ``lease`` on its host."""
        d = wire.structure((await self._lease_call(lease, "open", timeout=timeout))[0], HostDevice)
        return device_info(lease.device, d, self._owners_of(lease.device))

    async def close(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        """Close the device for ``lease``; it stays held."""
        d = wire.structure((await self._lease_call(lease, "close", timeout=timeout))[0], HostDevice)
        return device_info(lease.device, d, self._owners_of(lease.device))

    async def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
        priority: Priority = Priority.NORMAL,
        wait: bool = True,
        exclusive: bool = False,
    ) -> Any:
        """Perform ``op`` on the leased device, on its host (through its limiter)."""
        value, _host = await self._lease_call(
            lease, "use", timeout=timeout, name=op, args=tuple(args),
            priority=int(priority), wait=wait, exclusive=exclusive,
        )  # fmt: skip
        return value

    async def info(self, device: DeviceId, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        """The device's state now, asked of its host."""
        host, board, _d = self._where(device)
        call = RemoteCall(op="info", board=board, device=device.name, timeout=timeout)
        d = wire.structure(await self._request(host, call, device.key), HostDevice)
        return device_info(device, d, await self._owners_now(device))

    def _owners_of(self, device: DeviceId) -> tuple[str, ...]:
        record = self.holders(device)
        return tuple(h.owner for h in record.holders) if record else ()

    async def exec(
        self, board: str, code: str, *, owner: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> str:
        """Run ``code`` on ``board``'s BOARD device (lease, open, exec, release)."""
        lease = await self.acquire(self.device(board, "BOARD"), owner=owner, timeout=timeout)
        try:
            await self.open(lease, timeout=timeout)
            return str(await self.use(lease, "exec", (code, float(timeout)), timeout=timeout + 2))
        finally:
            await self.release(lease, timeout=timeout)

    def lease(
        self, device: DeviceId, *, owner: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> AsyncClusterLease:
        """``async with cl.lease(id) as dev:``: acquired and opened, released after."""
        return AsyncClusterLease(self, device, owner=self._owner(owner), timeout=timeout)


class AsyncClusterLease:
    """A device held for one ``async with`` block."""

    def __init__(self, cl: AsyncCluster, device: DeviceId, *, owner: str, timeout: float) -> None:
        self.cluster = cl
        self.device = device
        self.owner = owner
        self.timeout = timeout
        self.lease: Lease | None = None

    async def __aenter__(self) -> Self:
        self.lease = await self.cluster.acquire(self.device, owner=self.owner, timeout=self.timeout)
        try:
            await self.cluster.open(self.lease, timeout=self.timeout)
        except BaseException:
            await self.cluster.release(self.lease, timeout=self.timeout)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        lease, self.lease = self.lease, None
        if lease is not None:
            await self.cluster.release(lease, timeout=self.timeout)

    def _held(self) -> Lease:
        if self.lease is None:
            raise InvalidArgumentError("use the lease inside its async with block")
        return self.lease

    async def use(
        self, op: str, args: tuple[Any, ...] = (), *, timeout: float | None = None
    ) -> Any:
        """Perform ``op`` on the device."""
        return await self.cluster.use(self._held(), op, args, timeout=timeout or self.timeout)

    async def exec(self, code: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run ``code`` (a BOARD device); its output."""
        return str(await self.use("exec", (code, float(timeout)), timeout=timeout + 2))
