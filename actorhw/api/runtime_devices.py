"""RuntimeDevices: a Runtime's calls about devices: typed handles, leases, the usage order
acquire, open, use, close, release, sessions and listings. Part of `Runtime`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any, TypeVar, overload

from actorhw.api.handles import HANDLES, Handle
from actorhw.api.inflight import UseInFlight, raise_device_exception, settle
from actorhw.api.runtime_routes import RuntimeRoutes, lease_of, quarantined
from actorhw.api.sessions import Session, next_session_name, quota_fields
from actorhw.core.errors import (
    ActorDeadError,
    ActorHwError,
    DeviceExceptionError,
    DeviceUnavailableError,
    InvalidArgumentError,
    NoSuchDeviceError,
    TimedOutError,
    WrongKindError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import (
    Acquire,
    Close,
    DeviceInfo,
    GetInfo,
    Lease,
    ListDevices,
    Open,
    OpenSession,
    Priority,
    Release,
    ResourceKind,
    StateChanged,
    Use,
)
from actorhw.drivers.board_driver import PendingIO
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ask, ask_later, ask_now, by_urn
from actorhw.tree.device_views import BY_MAILBOX, fast_use, published_info
from actorhw.tree.limiter import next_op_id

H = TypeVar("H", bound=Handle)
_monotonic = time.monotonic
#: Pause before a release asks again for a board whose actor is restarting, s.
_RETRY_S = 0.02


class RuntimeDevices(RuntimeRoutes):
    """The Runtime's calls about devices (a part of `Runtime`)."""

    @overload
    def get(self, kind: type[H], device: DeviceId, *, timeout: float = ...) -> H: ...
    @overload
    def get(self, kind: DeviceId, device: None = None, *, timeout: float = ...) -> Handle: ...

    def get(self, kind: Any, device: Any = None, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> Handle:
        """A handle of ``device``, not yet acquired; its kind is checked.

        ``get(Uart, ids.UART0)`` returns a Uart (WrongKindError if UART0 is not a UART);
        ``get(ids.UART0)`` returns the handle class of the device's kind.
        """
        if device is None:
            kind, device = None, kind
        entry, _ref = self._route(device, timeout=timeout)
        handle_class = HANDLES[entry.kind]
        if kind is not None:
            if not (isinstance(kind, type) and issubclass(kind, Handle)):
                raise InvalidArgumentError(
                    f"kind must be a handle class such as Uart, not {kind!r}", argument="kind"
                )
            if kind.kind is not entry.kind:
                raise WrongKindError(
                    f"{device.key} is a {entry.kind.value} device, not {kind.kind.value} "
                    f"(use {handle_class.__name__})",
                    device=device.key,
                    expected=kind.kind.value,
                    actual=entry.kind.value,
                )
            handle_class = kind
        handle: Handle = handle_class(self, device, timeout=timeout)
        return handle

    @overload
    def lease(self, kind: type[H], device: DeviceId, *, owner: str, timeout: float = ...) -> H: ...
    @overload
    def lease(
        self, kind: DeviceId, device: None = None, *, owner: str, timeout: float = ...
    ) -> Handle: ...

    def lease(
        self, kind: Any, device: Any = None, *, owner: str, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> Handle:
        """Acquire and open a device; use the handle as a context manager.

        On leaving the ``with`` block (also on an exception) the device is closed and
        released.
        """
        handle: Handle = self.get(kind, device, timeout=timeout)
        return handle.take(owner)

    def acquire(
        self, device: DeviceId, *, owner: str, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> Lease:
        """Become an owner of ``device``; returns the lease."""
        return self._ask(device, Acquire(owner=owner), timeout)

    def release(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> int:
        """End ``lease``; returns the device's owners_count after it.

        A release is never lost to a crash: while the device's actor restarts (or stays
        down, quarantined) the board applies it to the leases its successor starts with.
        """
        device = lease_of(lease).device
        deadline = time.monotonic() + timeout
        try:
            return self._ask(device, Release(lease=lease), timeout)
        except (DeviceUnavailableError, ActorDeadError, NoSuchDeviceError) as e:
            if not self._restarting(e, device):
                raise
        return self._release_through_board(lease, deadline)

    def _restarting(self, error: ActorHwError, device: DeviceId) -> bool:
        """Whether ``error`` means the device's actor (or its board's) is down now."""
        if isinstance(error, DeviceUnavailableError):
            return error.state == "RESTARTING"
        return type(device).board in self._boards

    def _release_through_board(self, lease: Lease, deadline: float) -> int:
        """Hand the release to the device's board, which applies it when it can."""
        board = type(lease.device).board
        while True:
            left = max(0.0, deadline - time.monotonic())
            try:
                try:
                    target = self._board_ref(board)
                except DeviceUnavailableError as e:
                    if not quarantined(e):
                        raise
                    target = self._sup()  # it keeps a quarantined board's leases
                # The board answers at once, or with a future if it waits for a crash.
                answer: int | concurrent.futures.Future[int] = ask(
                    target, Release(lease=lease), timeout=left
                )
                if isinstance(answer, concurrent.futures.Future):
                    try:
                        answer = answer.result(timeout=max(0.0, deadline - time.monotonic()))
                    except concurrent.futures.TimeoutError:
                        raise TimedOutError(
                            f"release of {lease.device.key} ({lease.owner}): its actor is "
                            f"restarting; the release is applied when it is back",
                            device=lease.device.key,
                            timeout=left,
                        ) from None
                return answer
            except ActorDeadError:  # the board's actor restarts: its successor, by name
                if time.monotonic() >= deadline:
                    raise
                self._stopped.wait(_RETRY_S)

    def open(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """Open the device for ``lease``."""
        return self._ask(lease_of(lease).device, Open(lease=lease), timeout)

    def close(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """Close the device for ``lease``."""
        return self._ask(lease_of(lease).device, Close(lease=lease), timeout)

    def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float = DEFAULT_ASK_TIMEOUT,
        priority: Priority = Priority.NORMAL,
        wait: bool = True,
        exclusive: bool = False,
    ) -> Any:
        """Perform ``op`` on the leased device; waits for board I/O up to ``timeout``.

        The operation passes the limiter first (``rt.limiter``): it waits for a slot up
        to ``timeout`` (or is refused at once with ``wait=False``), runs alone on the
        device if ``exclusive``, and a Low one may be preempted (PreemptedError).
        """
        if not isinstance(lease, Lease):
            lease_of(lease)  # raises
        device = lease.device
        deadline = _monotonic() + timeout
        if op == "interrupt":  # a control operation: it must reach a full board at once
            return self._ask(device, Use(lease=lease, op=op, args=args), timeout)
        ref = self._routes.get(device)
        if ref is None or ref.actor_stopped.is_set():  # (is_alive, one call less)
            ref = self._route(device, timeout=timeout)[1]
        pair = self._limiter_pair  # (_limiter_now, inline)
        limiter = (
            pair[1] if pair is not None and not pair[0].actor_stopped.is_set()
            else self._limiter_now()
        )  # fmt: skip
        lane = limiter.lane  # the common case, a slot free: a function call, no message
        ticket = (
            lane.admit_here(next_op_id(), device, priority, op, exclusive, lease,
                            ref.actor_urn, then_ask=False)
            if lane is not None and isinstance(priority, Priority)
            else None
        )  # fmt: skip
        if ticket is None:  # wait, queue, preempt or refuse: the limiter's actor decides
            ticket = limiter.admit(
                device, priority=priority, what=op, wait=wait, exclusive=exclusive,
                lease=lease, actor_urn=ref.actor_urn, timeout=timeout,
            )  # fmt: skip
        try:
            # A Low call may be preempted: it waits on the I/O thread, where a preemption
            # cancels it if it has not started (see _stop_revoked).
            result = fast_use(
                ref, lease, op, args, run_here=priority is not Priority.LOW, deadline=deadline
            )
            if result is BY_MAILBOX:
                left = max(0.0, deadline - _monotonic())
                result = self._ask(device, Use(lease=lease, op=op, args=args), left, ref)
            elif (  # the common case of settle: run here, succeeded, not revoked
                type(result) is PendingIO
                and result.ran_here
                and result.error is None
                and ticket.revoked_error() is None
            ):
                return result.value
            return settle(self, lease, ticket, result, deadline - _monotonic())
        except DeviceExceptionError as e:
            raise_device_exception(self, lease, ticket, e)
        finally:
            if lane is not None:
                lane.finish_now(ticket.op_id)
            else:
                limiter.finish(ticket)

    def start_use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        priority: Priority = Priority.NORMAL,
        exclusive: bool = False,
        run_here: bool = False,
        timeout: float | None = None,
    ) -> UseInFlight | None:
        """Start ``op`` as `use` would, without waiting for the limiter, when it can:
        the device's route is known, the limiter admits it at once and the device hands
        it to the board's I/O thread from this thread (an opened lease, a peripheral that
        submits to the board's I/O lane; not run here, even on an idle lane: this thread
        may be an event loop's).  With ``run_here`` (a thread that would only wait for
        it anyway) a non-Low operation on an idle lane runs in this thread, as in `use`,
        and comes back ended.  ``timeout``, the caller's, bounds the operation's exchanges
        with the board (else the driver's own bound).  Its `UseInFlight` says when it
        ends; None: nothing was started (call `use`)."""
        device = lease_of(lease).device
        ref = self._routes.get(device)
        if op == "interrupt" or ref is None or not ref.is_alive():
            return None
        ticket = self._limiter_now().admit_now(
            device, priority=priority, what=op, exclusive=exclusive, lease=lease,
            actor_urn=ref.actor_urn,
        )  # fmt: skip
        if ticket is None:
            return None
        try:
            here = run_here and priority is not Priority.LOW  # Low: preemptible, see use()
            deadline = None if timeout is None else _monotonic() + timeout
            result = fast_use(ref, lease, op, args, run_here=here, deadline=deadline)
        except BaseException:
            self._limiter_now().finish(ticket)
            raise
        if result is BY_MAILBOX:  # nothing submitted: the caller asks through use()
            self._limiter_now().finish(ticket)
            return None
        return UseInFlight(self, lease, ticket, result)

    def _stop_revoked(self, lease: Lease, future: concurrent.futures.Future[Any]) -> None:
        """A preempted or timed-out call may have started on the board only after the
        limiter's interrupt: cancel it if it has not started, else interrupt it again
        until it ends (bounded)."""
        deadline = time.monotonic() + DEFAULT_ASK_TIMEOUT
        while not future.cancel() and not future.done() and time.monotonic() < deadline:
            with contextlib.suppress(ActorHwError):
                self._ask(lease.device, Use(lease=lease, op="interrupt"), 1.0)
            concurrent.futures.wait([future], timeout=0.2)

    def session(
        self,
        owner: str,
        *,
        ttl: float | None = None,
        quotas: Mapping[ResourceKind, int] | None = None,
        watch_thread: bool = True,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> Session:
        """A session for ``owner``: its leases and allocations are released together when
        it ends, when the thread that opened it dies (``watch_thread``), or when it
        misses its heartbeat for ``ttl`` s.  Use it as a context manager."""
        if not isinstance(owner, str) or not owner:
            raise InvalidArgumentError("owner must be a non-empty string", argument="owner")
        if ttl is not None and (not isinstance(ttl, int | float) or ttl <= 0):
            raise InvalidArgumentError(f"ttl must be > 0 seconds, not {ttl!r}", argument="ttl")
        message = OpenSession(
            session=next_session_name(owner),
            owner=owner,
            thread_id=threading.get_ident() if watch_thread else 0,
            ttl=ttl,
            **quota_fields(quotas),
        )
        return Session(self.monitor, self, self.monitor.open_session(message, timeout=timeout))

    def info(self, device: DeviceId, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """The device's state, policy and owners now."""
        return self._ask(device, GetInfo(), timeout)

    def info_now(self, device: DeviceId) -> DeviceInfo | None:
        """`info`, if it can be had without blocking: the device's route is known and its
        actor, idle, answers in this thread (its info handler never blocks).  None: call
        `info`.  For a thread that must not block (`AsyncRuntime.info` on its loop)."""
        ref = self._routes.get(device) if isinstance(device, DeviceId) else None
        if ref is None or ref.actor_stopped.is_set():
            return None
        return ask_now(ref, GetInfo())

    def wait_for_device(
        self, device: DeviceId, state: DeviceState, *, timeout: float
    ) -> DeviceInfo:
        """Wait until ``device`` is in ``state``; its info then.

        Raises:
            TimedOutError: not within ``timeout`` s (says where it is).
        """
        deadline = time.monotonic() + timeout
        with self.events.subscribe(maxsize=1024) as events:
            info = self.info(device, timeout=timeout)
            if info.state is state:
                return info
            with contextlib.suppress(TimedOutError):
                events.wait_for(
                    lambda e: (
                        isinstance(e, StateChanged) and e.device is device and e.to_state is state
                    ),
                    timeout=max(0.0, deadline - time.monotonic()),
                )
            info = self.info(device, timeout=timeout)
        if info.state is not state:
            raise TimedOutError(
                f"{device.key} not {state.name} within {timeout:g} s; it is {info.state.name}",
                device=device.key,
                timeout=timeout,
            )
        return info

    def devices(
        self, board: str | None = None, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> list[DeviceInfo]:
        """Every device (of ``board``) with id, kind, state, policy and owners."""
        if board is not None:
            self._board_ref(board)
        entries = ask(self._registry_ref(), ListDevices(board=board), timeout=timeout)
        # Each device actor publishes its info as it changes (an immutable DeviceInfo):
        # listing 20,000 devices reads them, rather than 20,000 asks. An actor not
        # running (restarting) is asked, and answers or errors as an ask does.
        found = [published_info(by_urn(e.actor_urn)) for e in entries]
        futures = {
            i: ask_later(self._by_urn(e.actor_urn), GetInfo())
            for i, (e, info) in enumerate(zip(entries, found, strict=True))
            if info is None
        }
        deadline = time.monotonic() + timeout
        for i, future in futures.items():
            found[i] = future.wait(timeout=deadline - time.monotonic())
        return [info for info in found if info is not None]
