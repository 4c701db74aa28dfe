"""The typed facade of the resource monitor actor (``rt.monitor``)."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any, TypeVar

from actorhw.core.errors import InvalidArgumentError, TimedOutError
from actorhw.core.ids import DeviceId
from actorhw.core.messages import (
    Allocate,
    Allocation,
    EndSession,
    GetHistory,
    GetSession,
    GetTrend,
    Heartbeat,
    Lease,
    ListAllocations,
    ObserveDeviceError,
    OpenSession,
    ReapSessions,
    ReleaseAllocation,
    Request,
    ResourceKind,
    ResourceStatus,
    ResourceTrend,
    SampleResources,
    SessionEnded,
    SessionInfo,
    SetThreshold,
    StartMonitoring,
    StopMonitoring,
    TrackLease,
    UntrackLease,
)
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ActorRef, ask

R = TypeVar("R")


def _wait(future: concurrent.futures.Future[R], deadline: float, what: str) -> R:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        raise TimedOutError(f"{what}: no answer from the board in time", operation=what) from None


class ResourceMonitor:
    """The typed facade of the resource monitor actor (``rt.monitor``)."""

    def __init__(self, ref: ActorRef[Any]) -> None:
        self._ref = ref

    def _ask(self, message: Request[R], timeout: float) -> R:
        return ask(self._ref, message, timeout=timeout)

    def status(self, device: DeviceId, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> ResourceStatus:
        """Read a board's resources now (``device`` is its BOARD id)."""
        deadline = time.monotonic() + timeout
        future = self._ask(SampleResources(device=device), timeout)
        return _wait(future, deadline, f"{device.key} resources")

    def start(
        self, device: DeviceId, *, interval: float = 1.0, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> None:
        """Sample a board every ``interval`` seconds into its history."""
        self._ask(StartMonitoring(device=device, interval=interval), timeout)

    def stop(self, device: DeviceId, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> None:
        """Stop sampling a board; its history stays."""
        self._ask(StopMonitoring(device=device), timeout)

    def history(
        self, device: DeviceId, *, limit: int = 0, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> tuple[ResourceStatus, ...]:
        """The newest samples (at most ``limit``; 0: all kept), oldest first."""
        return self._ask(GetHistory(device=device, limit=limit), timeout)

    def trend(
        self, device: DeviceId, metric: str, *, window: float = 60.0,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> ResourceTrend:  # fmt: skip
        """How ``metric`` moved over the last ``window`` seconds of history."""
        return self._ask(GetTrend(device=device, metric=metric, window_s=window), timeout)

    def set_threshold(
        self, device: DeviceId, metric: str, limit: float, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> None:
        """Emit ResourceThresholdExceeded when ``metric`` crosses ``limit``."""
        self._ask(SetThreshold(device=device, metric=metric, limit=limit), timeout)

    def observe_error(self, device: DeviceId, exc_name: str, message: str) -> None:
        """Report a board-side exception (a MemoryError becomes a threshold event)."""
        if self._ref.is_alive():
            self._ref.tell(ObserveDeviceError(device=device, exc_name=exc_name, message=message))

    # --- sessions and allocations -----------------------------------------------------------

    def open_session(
        self, message: OpenSession, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> SessionInfo:
        """Start keeping a session's books."""
        return self._ask(message, timeout)

    def allocate(
        self, session: str, device: DeviceId, kind: ResourceKind, amount: int, *,
        timeout: float = 10.0,
    ) -> Allocation:  # fmt: skip
        """Reserve part of a board for ``session``, against a fresh sample of it."""
        if not isinstance(kind, ResourceKind):
            raise InvalidArgumentError(
                f"kind must be a ResourceKind, not {kind!r}", argument="kind"
            )
        deadline = time.monotonic() + timeout
        message = Allocate(session=session, device=device, kind=kind, amount=amount)
        return _wait(self._ask(message, timeout), deadline, f"allocate on {device.key}")

    def release_allocation(
        self, allocation: Allocation, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> None:
        """Give an allocation back."""
        self._ask(ReleaseAllocation(allocation_id=allocation.allocation_id), timeout)

    def allocations(
        self, session: str | None = None, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> tuple[Allocation, ...]:
        """Every allocation held (by ``session``)."""
        return self._ask(ListAllocations(session=session), timeout)

    def heartbeat(self, session: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> None:
        """Keep ``session`` alive."""
        self._ask(Heartbeat(session=session), timeout)

    def track_lease(
        self, session: str, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> None:
        """Make ``session`` own ``lease``."""
        self._ask(TrackLease(session=session, lease=lease), timeout)

    def untrack_lease(
        self, session: str, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> None:
        """``session`` released ``lease`` itself."""
        self._ask(UntrackLease(session=session, lease=lease), timeout)

    def end_session(
        self, session: str, *, reason: str = "ended", timeout: float = 10.0
    ) -> SessionEnded:
        """Release all ``session`` holds."""
        return self._ask(EndSession(session=session, reason=reason), timeout)

    def session_info(self, session: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> SessionInfo:
        """What ``session`` holds now."""
        return self._ask(GetSession(session=session), timeout)

    def reap_sessions(self, *, timeout: float = 10.0) -> tuple[SessionEnded, ...]:
        """End now the sessions whose owner thread died or heartbeat stopped."""
        return tuple(self._ask(ReapSessions(), timeout))
