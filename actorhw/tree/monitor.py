"""ResourceMonitorActor: board resources read from the boards, history, thresholds,
and the books of sessions and allocations.

A sample is one ``resources`` operation on a board's BOARD device, which the driver
runs on the board's I/O thread (a PendingIO): the monitor's mailbox never waits on the
wire.  A sample needs no lease (an :class:`~actorhw.messages.Inspect`): sampling leaves
no owner and no state behind on the board.  Samples go into a bounded ring buffer per
board; thresholds are edge-triggered (one ResourceThresholdExceeded per crossing) and a
change of a board's level (``ok``, ``exceeded``, ``unreachable``) is a
ResourceStatusChanged.  A MemoryError raised on a board by any operation is a
ResourceThresholdExceeded of ``memory.error``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from actorhw.core import resources as api
from actorhw.core.errors import (
    ActorDeadError,
    ActorHwError,
    DeviceUnavailableError,
    InvalidArgumentError,
    UnsupportedOperationError,
)
from actorhw.core.events import EventBus
from actorhw.core.ids import DeviceId, DeviceKind
from actorhw.core.log import logger
from actorhw.core.messages import (
    Allocate,
    EndSession,
    GetHistory,
    GetSession,
    GetTrend,
    Heartbeat,
    Inspect,
    Lease,
    ListAllocations,
    Lookup,
    ObserveDeviceError,
    OpenSession,
    ReapSessions,
    Release,
    ReleaseAllocation,
    ResourceStatus,
    ResourceStatusChanged,
    ResourceThresholdExceeded,
    ResourceTrend,
    SampleResources,
    SessionEnded,
    SetThreshold,
    StartMonitoring,
    StopMonitoring,
    TrackLease,
    UntrackLease,
)
from actorhw.drivers.board_driver import PendingIO
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ask, by_urn
from actorhw.tree.books import SessionBooks, live_thread_ids
from actorhw.tree.dispatch import DispatchActor

__all__ = ["ResourceMonitorActor"]

_ALLOCATING = re.compile(r"allocating (\d+) bytes")

#: How long a session's lease whose device's actor is down is kept for a retry, s.
UNRELEASED_FOR = 60.0

Callback = Callable[[ResourceStatus | None, BaseException | None], None]


@attrs.frozen
class _Tick:
    """The ticker's note: sample what is due, reap sessions."""


@attrs.frozen
class _Sampled:
    device: DeviceId
    future: concurrent.futures.Future[Any]


@attrs.define
class _Watch:
    device: DeviceId
    history: collections.deque[ResourceStatus]
    ref: pykka.ActorRef[Any] | None = None
    interval: float | None = None
    due: float = 0.0
    inflight: bool = False
    waiters: list[Callback] = attrs.field(factory=list)
    thresholds: dict[str, float] = attrs.field(factory=dict)
    over: set[str] = attrs.field(factory=set)
    level: str = "unknown"


class ResourceMonitorActor(DispatchActor):
    """Samples boards, keeps their history and thresholds, and keeps session books."""

    label = "monitor"

    def __init__(
        self,
        *,
        events: EventBus,
        registry: pykka.ActorRef[Any],
        history: int = 600,
        tick: float | None = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._events = events
        self._registry = registry
        self._history = history
        self._tick_s = tick
        self._tick_base = tick  # the tick when no watch asks for a faster one
        self._clock = clock
        self._watches: dict[DeviceId, _Watch] = {}
        self._books = SessionBooks()
        # Session leases whose device's actor was down (restarting) when the session
        # ended: token -> (lease, give up at); retried at every tick until taken.
        self._unreleased: dict[int, tuple[Lease, float]] = {}
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._log = logger.bind(device="monitor")
        self.handle(
            {
                _Tick: self._tick,
                _Sampled: lambda m: self._complete(self._watch(m.device), m.future),
                SampleResources: self._sample_request,
                StartMonitoring: self._start_monitoring,
                StopMonitoring: self._stop_monitoring,
                GetHistory: self._get_history,
                GetTrend: self._get_trend,
                SetThreshold: self._set_threshold,
                ObserveDeviceError: self._observe_error,
                Allocate: self._allocate,
                ReleaseAllocation: lambda m: self._books.release_allocation(m.allocation_id),
                ListAllocations: lambda m: self._books.allocations(m.session),
                OpenSession: lambda m: self._books.open(m, self._clock()),
                Heartbeat: self._heartbeat,
                TrackLease: self._track,
                UntrackLease: self._untrack,
                EndSession: lambda m: self._end(m.session, m.reason),
                GetSession: lambda m: self._books.info(m.session),
                ReapSessions: lambda _m: self._reap(),
            }
        )

    def on_start(self) -> None:
        if self._tick_s is not None:
            self._ticker = threading.Thread(target=self._ticking, name="monitor-tick", daemon=True)
            self._ticker.start()

    def _ticking(self) -> None:
        while not self._ticker_stop.wait(self._tick_s):
            if self.actor_ref.is_alive():
                self.actor_ref.tell(_Tick())

    def on_stop(self) -> None:
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join(DEFAULT_ASK_TIMEOUT)
        for name in self._books.names():
            self._end(name, "runtime stopped")

    # --- sampling -----------------------------------------------------------------------

    def _watch(self, device: DeviceId) -> _Watch:
        watch = self._watches.get(device)
        if watch is None:
            if not isinstance(device, DeviceId):
                raise InvalidArgumentError(
                    f"expected a DeviceId, not {device!r}", argument="device"
                )
            watch = _Watch(device, collections.deque(maxlen=self._history))
            self._watches[device] = watch
        return watch

    def _sample(self, watch: _Watch, callback: Callback | None = None) -> None:
        if callback is not None:
            watch.waiters.append(callback)
        if watch.inflight:
            return
        try:
            ref = self._target(watch)
            result = ask(ref, Inspect(op="resources"), timeout=DEFAULT_ASK_TIMEOUT)
        except ActorHwError as e:
            self._finish(watch, None, e)
            return
        if isinstance(result, PendingIO):
            watch.inflight = True
            me = self.actor_ref
            result.future.add_done_callback(lambda f: me.tell(_Sampled(watch.device, f)))
        else:
            self._finish(watch, result, None)

    def _target(self, watch: _Watch) -> pykka.ActorRef[Any]:
        """The actor of the watched BOARD device now (its successor after a restart)."""
        if watch.ref is not None and watch.ref.is_alive():
            return watch.ref
        entry = ask(self._registry, Lookup(device=watch.device), timeout=DEFAULT_ASK_TIMEOUT)
        if entry.kind is not DeviceKind.BOARD:
            raise InvalidArgumentError(
                f"{watch.device.key} is a {entry.kind.value} device; the monitor samples "
                "boards: pass the board's BOARD id",
                device=watch.device.key,
            )
        ref = by_urn(entry.actor_urn)
        if ref is None:
            raise DeviceUnavailableError(
                f"{watch.device.key} is restarting",
                device=watch.device.key,
                state="RESTARTING",
                reason="actor restarting",
                since=time.time(),
            )
        watch.ref = ref
        return ref

    def _complete(self, watch: _Watch, future: concurrent.futures.Future[Any]) -> None:
        watch.inflight = False
        error = future.exception()
        self._finish(watch, None if error else future.result(), error)

    def _finish(self, watch: _Watch, figures: Any, error: BaseException | None) -> None:
        status = None
        if error is not None:
            self._level(watch, "unreachable", str(error))
        elif not isinstance(figures, dict):
            error = UnsupportedOperationError(
                f"{watch.device.key}: the driver's resources answered {type(figures).__name__}",
                device=watch.device.key,
            )
        else:
            status = api.status_of(watch.device, figures, time.time())
            watch.history.append(status)
            self._check(watch, status)
        waiters, watch.waiters = watch.waiters, []
        for callback in waiters:
            callback(status, error)

    def _check(self, watch: _Watch, status: ResourceStatus) -> None:
        for metric, limit in watch.thresholds.items():
            value = api.metric(status, metric)
            if value is None:
                continue
            if api.exceeds(metric, value, limit):
                if metric not in watch.over:
                    watch.over.add(metric)
                    self._events.publish(
                        ResourceThresholdExceeded(
                            device=watch.device,
                            metric=metric,
                            value=value,
                            threshold=limit,
                            reason=f"{metric} = {value:g}, threshold {limit:g}",
                            at=status.at,
                        )
                    )
            else:
                watch.over.discard(metric)
        reason = ", ".join(sorted(watch.over)) or "every metric within its threshold"
        self._level(watch, "exceeded" if watch.over else "ok", reason)

    def _level(self, watch: _Watch, level: str, reason: str) -> None:
        if level != watch.level:
            self._events.publish(
                ResourceStatusChanged(
                    device=watch.device,
                    from_level=watch.level,
                    to_level=level,
                    reason=reason,
                    at=time.time(),
                )
            )
            watch.level = level

    def _sample_request(self, message: SampleResources) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._sample(self._watch(message.device), api.resolver(future))
        return future

    def _tick(self, _message: _Tick) -> None:
        now = self._clock()
        for watch in self._watches.values():
            if watch.interval is not None and now >= watch.due:
                watch.due = max(watch.due + watch.interval, now)
                self._sample(watch)
        self._reap()

    def _start_monitoring(self, message: StartMonitoring) -> None:
        if not isinstance(message.interval, int | float) or message.interval <= 0:
            raise InvalidArgumentError(
                f"interval must be > 0 seconds, not {message.interval!r}", argument="interval"
            )
        watch = self._watch(message.device)
        self._target(watch)  # refuse a non-board at once
        # Sampled now, so next due an interval from now (due now, the next tick sampled
        # the board a second time within a tick of the first).
        watch.interval = float(message.interval)
        watch.due = self._clock() + watch.interval
        self._retick()
        self._sample(watch)

    def _stop_monitoring(self, message: StopMonitoring) -> None:
        self._watch(message.device).interval = None
        self._retick()

    def _retick(self) -> None:
        """Tick as often as the fastest watch now needs (a quarter of its interval), and
        at the base rate again once it stops: each tick costs a message and a reap."""
        if self._tick_base is not None:
            self._tick_s = min(
                [self._tick_base]
                + [w.interval / 4 for w in self._watches.values() if w.interval is not None]
            )

    def _get_history(self, message: GetHistory) -> tuple[ResourceStatus, ...]:
        history = tuple(self._watch(message.device).history)
        return history[-message.limit :] if message.limit > 0 else history

    def _get_trend(self, message: GetTrend) -> ResourceTrend:
        api.check_metric(message.metric)
        return api.trend(
            message.device, message.metric, message.window_s, self._watch(message.device).history
        )

    def _set_threshold(self, message: SetThreshold) -> None:
        api.check_metric(message.metric)
        self._watch(message.device).thresholds[message.metric] = float(message.limit)

    def _observe_error(self, message: ObserveDeviceError) -> None:
        if message.exc_name != "MemoryError":
            return
        match = _ALLOCATING.search(message.message)
        watch = self._watches.get(message.device)
        last = watch.history[-1].memory.free if watch and watch.history else None
        self._events.publish(
            ResourceThresholdExceeded(
                device=message.device,
                metric="memory.error",
                value=float(match.group(1)) if match else 0.0,
                threshold=float(last) if last is not None else 0.0,
                reason=f"MemoryError on the board: {message.message}",
                at=time.time(),
            )
        )

    # --- sessions and allocations -------------------------------------------------------

    def _allocate(self, message: Allocate) -> concurrent.futures.Future[Any]:
        self._books.book(message.session)  # an unknown session is refused before sampling
        if not isinstance(message.amount, int) or message.amount <= 0:
            raise InvalidArgumentError(
                f"amount must be a positive int, not {message.amount!r}", argument="amount"
            )
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def grant(status: ResourceStatus | None, error: BaseException | None) -> None:
            if status is None:
                future.set_exception(error or RuntimeError("no status"))
                return
            try:
                allocation = self._books.allocate(
                    message.session, message.device, message.kind, message.amount, status
                )
            except ActorHwError as e:
                future.set_exception(e)
            else:
                future.set_result(allocation)

        self._sample(self._watch(message.device), grant)
        return future

    def _heartbeat(self, message: Heartbeat) -> None:
        self._books.book(message.session).last_beat = self._clock()

    def _track(self, message: TrackLease) -> None:
        self._books.book(message.session).leases[message.lease.token] = message.lease

    def _untrack(self, message: UntrackLease) -> None:
        self._books.book(message.session).leases.pop(message.lease.token, None)

    def _end(self, session: str, reason: str) -> SessionEnded:
        book, leases, allocations = self._books.close(session)
        for lease in leases:
            self._release(lease)
        event = SessionEnded(
            session=session, owner=book.info.owner, reason=reason, leases=len(leases),
            allocations=allocations, at=time.time(),
        )  # fmt: skip
        self._log.info("session {} ended ({}): {} leases released", session, reason, len(leases))
        self._events.publish(event)
        return event

    def _release(self, lease: Lease) -> None:
        """Release a session's lease; if its device's actor is down (a restart), keep
        it and try again at every tick until the actor is back: never lost."""
        try:
            entry = ask(self._registry, Lookup(device=lease.device), timeout=DEFAULT_ASK_TIMEOUT)
            ref = by_urn(entry.actor_urn)
            if ref is None:
                raise ActorDeadError(f"{lease.device.key} is restarting", actor=entry.actor_urn)
            ask(ref, Release(lease=lease), timeout=DEFAULT_ASK_TIMEOUT)
        except ActorDeadError as e:  # its actor restarts: the successor takes it later
            self._log.debug("session lease {} kept to release later: {}", lease.token, e)
            kept = self._unreleased.get(lease.token)
            self._unreleased[lease.token] = (
                lease,
                kept[1] if kept else self._clock() + UNRELEASED_FOR,
            )
            return
        except ActorHwError as e:  # released already, or the board is gone: nothing held
            self._log.debug("session lease {} not released: {}", lease.token, e)
        self._unreleased.pop(lease.token, None)

    def _retry_releases(self) -> None:
        for token, (lease, give_up) in list(self._unreleased.items()):
            if self._clock() > give_up:
                del self._unreleased[token]
                self._log.error("session lease {} of {} never taken back", token, lease.owner)
                continue
            self._release(lease)

    def _reap(self) -> list[SessionEnded]:
        self._retry_releases()
        expired = self._books.expired(self._clock(), live_thread_ids())
        return [self._end(name, reason) for name, reason in expired]
