"""A host's fast lane for device operations (``<prefix>.fast.<host>``).

The host's asyncio client answers every request; for the hot path, an opened lease's
operation, it costs the loop's turns (reader, subscription queue, task, the wake from
the board's I/O thread, the flusher).  This lane has a blocking connection of its own
(actorhw.cluster.rawnats_subscriber), read by a few reader threads of its own:

- a ``use`` whose token is current and whose device this host has opened for it is
  started by the reader that read it (`Runtime.start_use`); on an idle board, while
  another reader is free to read on, the reader runs the exchange itself and answers
  it (as `Runtime.use` runs it in its caller's thread), else it is answered from the
  board's I/O thread the moment it ends;
- a job's ``steps`` whose tokens are all current (and no stale holder's local lease is
  left on their devices) run in the host's worker threads, one of them in the reader's,
  and are answered when the last one ends.

Anything else, including a token the lease watch does not show as current yet (the
full path asks the bucket, then refuses a stale one), is handed to the host's loop,
which answers it exactly as a request on ``<prefix>.call.<host>``.

Fencing is the same check as the full path's: the token must be one of the device's
current lease tokens, and the local lease taken for that holder must be there (for
steps, every step checks the token again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import TYPE_CHECKING, Any, Protocol

from actorhw.api.steps import Steps
from actorhw.cluster import rawnats, wire
from actorhw.cluster.rawnats_subscriber import BlockingSubscriber
from actorhw.core.errors import ActorHwError, InvalidArgumentError
from actorhw.core.log import logger
from actorhw.core.messages import Priority
from actorhw.core.messages.cluster import RemoteCall, RemoteReply, RemoteTarget

if TYPE_CHECKING:
    from actorhw.api.inflight import UseInFlight
    from actorhw.api.runtime import Runtime
    from actorhw.cluster.config import ClusterConfig
    from actorhw.core.messages import Lease


class Host(Protocol):
    """What the lane needs of its host (actorhw.cluster.host.Host), named here so that
    the host may import the lane without an import cycle."""

    name: str
    config: ClusterConfig
    runtime: Runtime
    _local: dict[tuple[str, int], Lease]
    _pool: concurrent.futures.ThreadPoolExecutor
    _watched: threading.Condition
    _seen_revision: int

    def _tokens(self, key: str) -> set[int]: ...

    def _perform_reply(self, call: RemoteCall, key: str, steps: Steps) -> RemoteReply: ...

    async def _dispatch(self, call: RemoteCall) -> Any: ...


#: Reader threads of the lane: up to READERS - 1 operations run in readers at once.
READERS = 4
#: The limiter's priorities by their wire value.
PRIORITIES: dict[int, Priority] = {int(p): p for p in Priority}
#: Seconds a reader waits for the lease watch to show a job's fresh token (the client
#: sends the job once its creates are acknowledged, and the watch may be a little behind).
WATCH_WAIT = 1.0


class FastLane:
    """The fast lane of ``host``, whose loop is ``loop``; `start` it, `stop` it."""

    def __init__(self, host: Host, loop: asyncio.AbstractEventLoop) -> None:
        self._host = host
        self._loop = loop
        self._conn = BlockingSubscriber(host.config, host.config.fast_subject(host.name))
        self._thread = threading.Thread(
            target=self._serve, name=f"host-fast-{host.name}", daemon=True
        )
        self.subscribed = threading.Event()

    def start(self) -> None:
        """Connect and serve in the lane's thread (`subscribed` is set once it is)."""
        if rawnats.supports(self._host.config):
            self._thread.start()

    def stop(self) -> None:
        """Stop serving (the clients' next calls take the full path)."""
        self._conn.stop()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def _serve(self) -> None:
        try:
            self._conn.serve(self._on_call, self.subscribed.set, readers=READERS)
        except Exception as e:  # never silently: the full path still serves
            logger.opt(exception=e).error("host {}: fast lane ended: {!r}", self._host.name, e)

    # --- in the lane's thread ----------------------------------------------------------

    def _on_call(self, data: bytes, reply: str) -> None:
        try:
            call = wire.decode(data, RemoteCall)
        except ActorHwError as e:
            self._send(reply, wire.error_reply(e))
            return
        if call.op == "use":
            done = self._use(call, reply)
        elif call.op == "steps":
            done = self._steps(call, reply)
        else:
            done = False
        if not done:  # the full path decides (and fences) the rest
            asyncio.run_coroutine_threadsafe(self._answer(call, reply), self._loop)

    def _use(self, call: RemoteCall, reply: str) -> bool:
        """Start (or run) an opened lease's operation; False: not here."""
        host = self._host
        key = wire.lease_key(host.name, call.board, call.device)
        local = host._local.get((key, call.token))
        priority = PRIORITIES.get(call.priority)
        if local is None or priority is None or call.token not in host._tokens(key):
            return False
        try:
            started = host.runtime.start_use(
                local, call.name, call.args, priority=priority,
                exclusive=call.exclusive, run_here=self._conn.others_free(),
                timeout=call.timeout,
            )  # fmt: skip
        except ActorHwError as e:
            self._send(reply, wire.error_reply(e))
            return True
        if started is None:
            return False
        futures = started.futures
        if not futures:  # ran here, or answered at once
            self._end(started, call, reply)
            return True
        ended = threading.Lock()

        def end(_done: Any = None) -> None:
            if ended.acquire(blocking=False):  # the first of the futures to finish
                self._end(started, call, reply)

        for future in futures:
            future.add_done_callback(end)
        return True

    def _steps(self, call: RemoteCall, reply: str) -> bool:
        """Run a job's steps on this host's targets if every token is current and no
        stale holder's local lease is left on them; False: not here (the full path
        reads the bucket, releases stale local leases, and answers)."""
        host = self._host
        keys = [wire.lease_key(host.name, t.board, t.device) for t in call.targets]
        for key, target in zip(keys, call.targets, strict=True):
            if not self._current(key, target.token, min(call.timeout, WATCH_WAIT)):
                return False
            current = host._tokens(key)
            if any(k == key and token not in current for k, token in list(host._local)):
                return False
        steps = Steps.of(call.steps)
        replies: list[RemoteReply | None] = [None] * len(keys)
        left = [len(keys)]
        lock = threading.Lock()

        def one(i: int, target: RemoteTarget) -> None:
            try:
                replies[i] = host._perform_reply(step_call(call, target), keys[i], steps)
            except Exception as e:
                logger.opt(exception=e).error("host {}: steps failed: {!r}", host.name, e)
                replies[i] = wire.error_reply(ActorHwError(f"host {host.name} failed: {e!r}"))
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                self._send(reply, RemoteReply(value=(replies,)))

        if not keys:
            self._send(reply, RemoteReply(value=([],)))
            return True
        *others, (last, mine) = list(enumerate(call.targets))
        for i, target in others:
            host._pool.submit(one, i, target)
        if self._conn.others_free():
            one(last, mine)
        else:
            host._pool.submit(one, last, mine)
        return True

    def _current(self, key: str, token: int, timeout: float) -> bool:
        """Whether ``token`` is current for ``key`` by the lease watch, waiting up to
        ``timeout`` s for a watch that has not delivered revision ``token`` yet (it
        delivers in revision order: once past it, a token it does not show is not
        current).  False at once when no other reader is free to read meanwhile."""
        host = self._host
        if token in host._tokens(key):
            return True
        if not self._conn.others_free():
            return False
        with host._watched:
            host._watched.wait_for(
                lambda: token in host._tokens(key) or host._seen_revision >= token, timeout
            )
        return token in host._tokens(key)

    def _end(self, started: UseInFlight, call: RemoteCall, reply: str) -> None:
        """The operation ended (in the board's I/O thread, or revoked): answer."""
        if not started.ready():  # revoked: stopping it on the board blocks
            self._host._pool.submit(self._answer_blocking, started, call, reply)
            return
        self._answer_blocking(started, call, reply)

    def _answer_blocking(self, started: UseInFlight, call: RemoteCall, reply: str) -> None:
        try:
            value = started.result(call.timeout)
        except ActorHwError as e:
            self._send(reply, wire.error_reply(e))
        except Exception as e:
            logger.opt(exception=e).error("host {}: request failed: {!r}", self._host.name, e)
            self._send(
                reply, wire.error_reply(ActorHwError(f"host {self._host.name} failed: {e!r}"))
            )
        else:
            try:
                data = wire.encode_value_reply(value)
            except ActorHwError as e:  # a result msgpack cannot carry
                data = wire.encode(wire.error_reply(e))
            self._conn.publish(reply, data)

    def _send(self, reply: str, answer: RemoteReply) -> None:
        try:
            data = wire.encode(answer)
        except ActorHwError as e:  # a result msgpack cannot carry
            data = wire.encode(wire.error_reply(e))
        self._conn.publish(reply, data)

    # --- on the host's loop ------------------------------------------------------------

    async def _answer(self, call: RemoteCall, reply: str) -> None:
        """Answer as the full path does (its fencing, its errors)."""
        host = self._host
        try:
            answer = RemoteReply(value=(await host._dispatch(call),))
        except ActorHwError as e:
            answer = wire.error_reply(e)
        except Exception as e:
            logger.opt(exception=e).error("host {}: request failed: {!r}", host.name, e)
            answer = wire.error_reply(ActorHwError(f"host {host.name} failed: {e!r}"))
        self._send(reply, answer)


def priority_of(call: RemoteCall) -> Priority:
    """The call's priority; InvalidArgumentError if it names none."""
    priority = PRIORITIES.get(call.priority)
    if priority is None:
        raise InvalidArgumentError(
            f"priority must be one of {sorted(PRIORITIES)}, not {call.priority!r}",
            argument="priority",
        )
    return priority


def step_call(call: RemoteCall, target: RemoteTarget) -> RemoteCall:
    """A steps request's call for one of its targets (its device and lease token)."""
    return RemoteCall(
        op="steps", board=target.board, device=target.device, owner=call.owner,
        token=target.token, timeout=call.timeout,
    )  # fmt: skip
