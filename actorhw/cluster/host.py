"""A host: one Runtime exported to the cluster.

It heartbeats its boards and devices into the hosts bucket, watches the leases of its
own devices, and answers requests (``<prefix>.call.<host>``) with the codec's messages.
Every operation that touches a device must carry the fencing token of a current lease
(a holder in the device's LeaseRecord); anything else is refused as ``stale_lease``
before the runtime sees it.  On behalf of each cluster holder the host takes a local
lease of the device (owner: the holder's name), so the Runtime's own ownership rules
(SINGLE, SHARED, open before use) hold as they do in one process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from actorhw.api.runtime import Runtime
from actorhw.api.steps import Steps, perform
from actorhw.cluster import wire
from actorhw.cluster.config import Buckets, ClusterConfig, check_name
from actorhw.cluster.host_boards import BOARD_OPS, answer_board_call
from actorhw.cluster.host_fast import FastLane, priority_of, step_call
from actorhw.cluster.views import host_device
from actorhw.core.errors import (
    ActorHwError,
    DeviceResetError,
    InvalidArgumentError,
    NoSuchDeviceError,
    StaleLeaseError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.log import logger
from actorhw.core.messages import DeviceInfo, Lease
from actorhw.core.messages.cluster import (
    HostAnnounce,
    HostBoard,
    LeaseRecord,
    RemoteCall,
    RemoteReply,
    RemoteTarget,
)

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.kv import KeyValue

T = TypeVar("T")

#: Worker threads running blocking Runtime calls for requests.
WORKERS = 32
#: Seconds a host waits for its fast lane to subscribe before it announces itself
#: (clients use the full path until it has).
FAST_START = 2.0
#: Heartbeats between two snapshots of the boards and devices (states in listings lag
#: by up to this many heartbeats; liveness does not).
SNAPSHOT_EVERY = 4


class Host:
    """Exports ``runtime``'s boards to the cluster as host ``name``.

    Run it with ``await host.serve(stop)``; it returns once ``stop`` is set and it has
    said goodbye (its boards go offline at once for every client).
    """

    def __init__(self, runtime: Runtime, config: ClusterConfig, name: str) -> None:
        self.runtime = runtime
        self.config = config
        self.name = check_name(name, "host")
        self.started = time.time()
        self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="host")
        # key -> (record, revision): the leases of this host's devices, from the watch.
        self._leases: dict[str, tuple[LeaseRecord, int]] = {}
        # (key, token) -> the local lease taken for that cluster holder.
        self._local: dict[tuple[str, int], Lease] = {}
        # The highest revision the watch has delivered (and acted on); notified on each.
        self._watched = threading.Condition()
        self._seen_revision = 0
        self._ids: dict[str, type[DeviceId]] = {}
        self._boards: tuple[HostBoard, ...] | None = None
        self._snapshotting: asyncio.Future[None] | None = None
        self._beats = 0
        self._nc: Client | None = None
        self._kv: Buckets | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ready = asyncio.Event()

    # --- running ------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Connect, export, and answer until ``stop`` is set."""
        for status in await self._run(self.runtime.boards):
            check_name(status.board, "board")
        nc = self._nc = await self.config.connect(f"actorhw-host-{self.name}")
        loop = asyncio.get_running_loop()
        fast = FastLane(self, loop)
        try:
            buckets = self._kv = await self.config.buckets(nc.jetstream())
            watcher = await buckets.leases.watch(f"{self.name}.>")
            self._spawn(self._watch(watcher))
            await nc.subscribe(self.config.call_subject(self.name), cb=self._on_call)
            fast.start()
            await loop.run_in_executor(self._pool, fast.subscribed.wait, FAST_START)
            await self._heartbeat(buckets.hosts)
            self.ready.set()
            logger.info("host {} serving", self.name)
            while not stop.is_set():
                with_timeout = asyncio.wait_for(stop.wait(), self.config.heartbeat)
                try:
                    await with_timeout
                except TimeoutError:
                    await self._heartbeat(buckets.hosts)
            await self._heartbeat(buckets.hosts, stopping=True)
            await watcher.stop()  # type: ignore[no-untyped-call]
        finally:
            await loop.run_in_executor(None, fast.stop)
            for task in [*self._tasks, *([self._snapshotting] if self._snapshotting else [])]:
                task.cancel()
            await nc.close()
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    # --- heartbeat ------------------------------------------------------------------------

    async def _heartbeat(self, hosts: KeyValue, *, stopping: bool = False) -> None:
        """Put the heartbeat now, with the latest snapshot of the boards; a new snapshot
        is taken beside it (a slow board never delays the heartbeat)."""
        self._beats += 1
        idle = self._snapshotting is None or self._snapshotting.done()
        if idle and (self._boards is None or self._beats % SNAPSHOT_EVERY == 0):
            self._snapshotting = asyncio.ensure_future(self._refresh())
        if self._boards is None and self._snapshotting is not None:
            await asyncio.shield(self._snapshotting)  # the first heartbeat has the boards
        boards = () if stopping else self._boards or ()
        announce = HostAnnounce(
            host=self.name,
            started=self.started,
            at=time.time(),
            interval=self.config.heartbeat,
            boards=boards,
            stopping=stopping,
        )
        assert self._nc is not None
        try:  # liveness first, on plain NATS; then the state, in the hosts bucket
            beat = attrs.evolve(announce, boards=())
            await self._nc.publish(self.config.beat_subject(self.name), wire.encode(beat))
            await hosts.put(self.name, wire.encode(announce))
        except Exception as e:  # the server is away: the next heartbeat retries
            logger.warning("host {}: heartbeat failed: {!r}", self.name, e)

    async def _refresh(self) -> None:
        try:
            self._boards = await self._run(self._snapshot)
        except ActorHwError as e:
            logger.warning("host {}: snapshot failed: {}", self.name, e)

    def _snapshot(self) -> tuple[HostBoard, ...]:
        rt = self.runtime
        boards = []
        for status in rt.boards(timeout=self.config.heartbeat * 2):
            try:
                devices = tuple(host_device(i) for i in rt.devices(status.board, timeout=1.0))
            except ActorHwError:  # a board restarting: its devices come next time
                devices = ()
            boards.append(
                HostBoard(
                    board=status.board,
                    definition=status.definition,
                    driver=status.driver,
                    state=status.state,
                    reason=status.reason,
                    restarts=status.restarts,
                    quarantined=status.quarantined,
                    devices=devices,
                )
            )
        return tuple(boards)

    # --- the leases of this host's devices -------------------------------------------------

    async def _watch(self, watcher: Any) -> None:
        async for entry in watcher:
            if entry is None:  # the end of the initial values
                continue
            if entry.operation is None and entry.value:
                self._leases[entry.key] = (wire.record_of(entry.value), int(entry.revision))
            else:  # deleted, or expired (the server's marker)
                self._leases.pop(entry.key, None)
            await self._revoke_stale(entry.key)
            with self._watched:
                self._seen_revision = max(self._seen_revision, int(entry.revision))
                self._watched.notify_all()

    def _tokens(self, key: str) -> set[int]:
        held = self._leases.get(key)
        return wire.tokens(*held) if held else set()

    async def _revoke_stale(self, key: str) -> None:
        """Release the local leases of holders that no longer hold ``key``."""
        current = self._tokens(key)
        for (k, token), lease in list(self._local.items()):
            if k == key and token not in current:
                del self._local[(k, token)]
                try:
                    await self._run(self.runtime.release, lease, timeout=5.0)
                except ActorHwError as e:
                    logger.debug("host {}: release of stale {} failed: {}", self.name, key, e)

    async def _check(self, call: RemoteCall) -> str:
        """The call's lease key, if its token is current; else StaleLeaseError."""
        key = wire.lease_key(self.name, call.board, call.device)
        if call.token in self._tokens(key):
            return key
        # The watch may lag a write the caller has already seen: ask the bucket.
        assert self._kv is not None
        value, revision = await wire.read(self._kv.leases, key)
        if value is not None:
            self._leases[key] = (wire.record_of(value), revision)
        else:
            self._leases.pop(key, None)
        if call.token in self._tokens(key):
            return key
        await self._revoke_stale(key)
        holders = self._leases[key][0].holders if key in self._leases else ()
        now = ", ".join(f"{h.owner} (token {h.token})" for h in holders) or "nobody"
        raise StaleLeaseError(
            f"{self.name}/{call.board}.{call.device}: lease token {call.token} of "
            f"{call.owner!r} is not current (held by {now})",
            device=f"{self.name}/{call.board}.{call.device}",
            owner=call.owner,
            token=call.token,
        )

    # --- requests ---------------------------------------------------------------------------

    async def _on_call(self, msg: Msg) -> None:
        # One task per request: a long exec never holds up the others.
        self._spawn(self._answer(msg))

    async def _answer(self, msg: Msg) -> None:
        try:
            call = wire.decode(msg.data, RemoteCall)
            reply = RemoteReply(value=(await self._dispatch(call),))
        except ActorHwError as e:
            reply = wire.error_reply(e)
        except Exception as e:
            logger.opt(exception=e).error("host {}: request failed: {!r}", self.name, e)
            reply = wire.error_reply(ActorHwError(f"host {self.name} failed: {e!r}"))
        try:
            data = wire.encode(reply)
        except ActorHwError as e:  # a result msgpack cannot carry
            data = wire.encode(wire.error_reply(e))
        await msg.respond(data)

    def _device(self, call: RemoteCall) -> DeviceId:
        ids = self._ids.get(call.board)
        if ids is None:
            ids = self._ids[call.board] = self.runtime.ids(call.board)
        try:
            return ids[call.device]
        except KeyError:
            raise NoSuchDeviceError(
                f"{self.name}/{call.board} has no device {call.device!r}",
                device=f"{self.name}/{call.board}.{call.device}",
                valid_ids=[d.name for d in ids],
            ) from None

    def _on(self, call: RemoteCall, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(device, ...)`` for the call's device (in a worker thread)."""
        return fn(self._device(call), *args, **kwargs)

    async def _dispatch(self, call: RemoteCall) -> Any:
        rt = self.runtime
        if call.op in BOARD_OPS:
            return await answer_board_call(self, call)
        if call.op == "status":
            return await self._run(self._snapshot)
        if call.op == "info":
            return host_device(await self._run(self._on, call, rt.info, timeout=call.timeout))
        if call.op == "release":
            return await self._release(call)
        if call.op == "steps":
            return await asyncio.gather(*(self._steps(call, t) for t in call.targets))
        key = await self._check(call)
        local = self._local.get((key, call.token))
        if call.op == "open":
            if local is None:
                await self._revoke_stale(key)
                taken: Lease = await self._run(
                    self._on, call, rt.acquire, owner=call.owner, timeout=call.timeout
                )
                local = self._local[(key, call.token)] = taken
            return host_device(await self._run(rt.open, local, timeout=call.timeout))
        if local is None:
            await self._run(self._device, call)  # an unknown device says so first
            raise DeviceResetError(
                f"{self.name}/{call.board}.{call.device} is not open for this lease here "
                "(the host restarted?): open it again",
                device=f"{self.name}/{call.board}.{call.device}",
            )
        if call.op == "close":
            return host_device(await self._run(rt.close, local, timeout=call.timeout))
        if call.op == "use":
            return await self._use(local, call)
        raise InvalidArgumentError(f"unknown cluster operation {call.op!r}", argument="op")

    async def _use(self, local: Lease, call: RemoteCall) -> Any:
        """A device operation.  Started in the loop's thread when the runtime can (an
        opened lease, a free slot, a board whose I/O thread answers): no worker thread
        between this loop and the board.  Anything else runs on a worker."""
        rt, priority, args = self.runtime, priority_of(call), tuple(call.args)
        started = rt.start_use(
            local, call.name, args, priority=priority, exclusive=call.exclusive,
            timeout=call.timeout,
        )  # fmt: skip
        if started is None:
            return await self._run(
                rt.use, local, call.name, args, timeout=call.timeout, priority=priority,
                wait=call.wait, exclusive=call.exclusive,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + call.timeout
        if not started.ready():
            await _first_done(started.futures, call.timeout)
        if started.ready():
            return started.result(0.0)
        # Revoked (preempted, timed out) or overdue: stopping it on the board blocks.
        return await self._run(started.result, max(0.0, deadline - loop.time()))

    async def _steps(self, call: RemoteCall, target: RemoteTarget) -> RemoteReply:
        """A batched job step on one device, for the target's lease (fenced as any
        request); the reply carries the steps' results or the typed error that stopped
        them."""
        one = step_call(call, target)
        try:
            key = await self._check(one)
            await self._revoke_stale(key)
        except ActorHwError as e:
            return wire.error_reply(e)
        return await self._run(self._perform_reply, one, key, Steps.of(call.steps))

    def _perform_reply(self, call: RemoteCall, key: str, steps: Steps) -> RemoteReply:
        """`_perform`'s values as a reply, or the typed error that stopped them."""
        try:
            return RemoteReply(value=(self._perform(call, key, steps),))
        except ActorHwError as e:
            return wire.error_reply(e)

    def _perform(self, call: RemoteCall, key: str, steps: Steps) -> list[Any]:
        """Open the device for the holder, run ``steps`` on it and release it (in one
        worker thread, next to the board).  Before every step the lease's token must
        still be current (fencing, as for every request); a lease revoked meanwhile
        also loses its local lease, which the next step meets."""
        rt, held = self.runtime, (key, call.token)
        local = self._local.get(held)
        taken = local is None
        if local is None:
            local = self._local[held] = self._on(
                call, rt.acquire, owner=call.owner, timeout=call.timeout
            )
        try:
            rt.open(local, timeout=call.timeout)
            handle = rt.get(local.device, timeout=call.timeout)
            handle.lease = local
            values = []
            for step in steps.steps:
                if call.token not in self._tokens(key):
                    raise StaleLeaseError(
                        f"{self.name}/{call.board}.{call.device}: lease token {call.token} "
                        f"of {call.owner!r} stopped being current during a job step",
                        device=f"{self.name}/{call.board}.{call.device}",
                        owner=call.owner,
                        token=call.token,
                    )
                values.append(perform(handle, step))
            return values
        finally:
            if taken and self._local.pop(held, None) is not None:
                with contextlib.suppress(ActorHwError):
                    rt.release(local, timeout=call.timeout)

    async def _release(self, call: RemoteCall) -> int:
        """Release the local lease of a holder (it is leaving the bucket's record)."""
        key = wire.lease_key(self.name, call.board, call.device)
        local = self._local.pop((key, call.token), None)
        if local is not None:
            return await self._run(self.runtime.release, local, timeout=call.timeout)
        info: DeviceInfo = await self._run(self._on, call, self.runtime.info, timeout=call.timeout)
        return info.owners_count


async def _first_done(futures: Sequence[concurrent.futures.Future[Any]], timeout: float) -> None:
    """Wait until one of ``futures`` is done (set by other threads), or ``timeout`` s."""
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_done: concurrent.futures.Future[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_settle, woken)

    for future in futures:
        future.add_done_callback(wake)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(woken, timeout)


def _settle(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


def client_name() -> str:
    """Where this process runs, for lease records and busy errors."""
    return f"{socket.gethostname()}:{os.getpid()}"
