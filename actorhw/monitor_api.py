"""The resource monitor's facade (``rt.monitor``) and its pure helpers: figures to a
ResourceStatus, metrics by name, thresholds, trends."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pykka

from actorhw.asks import DEFAULT_ASK_TIMEOUT, ask
from actorhw.errors import InvalidArgumentError, TimedOutError
from actorhw.ids import DeviceId
from actorhw.messages import (
    Allocate,
    Allocation,
    CpuStatus,
    EndSession,
    GetHistory,
    GetSession,
    GetTrend,
    Heartbeat,
    Lease,
    ListAllocations,
    MemoryStatus,
    ObserveDeviceError,
    OpenSession,
    ReapSessions,
    ReleaseAllocation,
    ResourceKind,
    ResourceStatus,
    ResourceTrend,
    SampleResources,
    SessionEnded,
    SessionInfo,
    SetThreshold,
    StartMonitoring,
    StopMonitoring,
    StorageStatus,
    TrackLease,
    UntrackLease,
)

#: Metrics by name; ``*.free`` and ``memory.largest_free_block`` are exceeded below
#: their threshold, the others above it.
METRICS = (
    "memory.total", "memory.used", "memory.free", "memory.largest_free_block",
    "storage.total", "storage.used", "storage.free",
    "cpu.uptime_s", "cpu.active_threads", "cpu.usage_percent",
)  # fmt: skip
_BELOW = frozenset({"memory.free", "memory.largest_free_block", "storage.free"})


def status_of(device: DeviceId, figures: Mapping[str, Any], at: float) -> ResourceStatus:
    """A driver's figures (missing keys unknown) as a ResourceStatus."""

    def get(key: str, kind: type) -> Any:
        value = figures.get(key)
        return None if value is None else kind(value)

    return ResourceStatus(
        device=device,
        memory=MemoryStatus(
            total=get("memory.total", int),
            used=get("memory.used", int),
            free=get("memory.free", int),
            largest_free_block=get("memory.largest_free_block", int),
        ),
        storage=StorageStatus(
            total=get("storage.total", int),
            used=get("storage.used", int),
            free=get("storage.free", int),
        ),
        cpu=CpuStatus(
            uptime_s=get("cpu.uptime_s", float),
            active_threads=get("cpu.active_threads", int),
            usage_percent=get("cpu.usage_percent", float),
        ),
        at=at,
    )


def check_metric(metric: str) -> None:
    """InvalidArgumentError naming the valid metrics if ``metric`` is not one."""
    if metric not in METRICS:
        raise InvalidArgumentError(
            f"unknown metric {metric!r}; valid: {', '.join(METRICS)}", argument="metric"
        )


def metric(status: ResourceStatus, name: str) -> float | None:
    """One metric of a sample by name; None if unknown."""
    group, field = name.split(".", 1)
    value = getattr(getattr(status, group), field)
    return None if value is None else float(value)


def exceeds(name: str, value: float, limit: float) -> bool:
    """Whether ``value`` is past ``limit`` for metric ``name``."""
    return value < limit if name in _BELOW else value > limit


def trend(
    device: DeviceId, name: str, window_s: float, history: Iterable[ResourceStatus]
) -> ResourceTrend:
    """Rate of change of one metric over the samples of the last ``window_s`` seconds."""
    if window_s <= 0:
        raise InvalidArgumentError(f"window must be > 0 s, not {window_s!r}", argument="window_s")
    since = time.time() - window_s
    points = [(s.at, v) for s in history if s.at >= since and (v := metric(s, name)) is not None]
    rate = None
    if len(points) >= 2 and points[-1][0] > points[0][0]:
        rate = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
    return ResourceTrend(
        device=device,
        metric=name,
        window_s=window_s,
        samples=len(points),
        first=points[0][1] if points else None,
        last=points[-1][1] if points else None,
        rate_per_s=rate,
    )


def resolver(future: concurrent.futures.Future[Any]) -> Any:
    """A monitor callback that settles ``future`` with the sample or its error."""

    def settle(status: ResourceStatus | None, error: BaseException | None) -> None:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(status)

    return settle


def _wait(future: concurrent.futures.Future[Any], deadline: float, what: str) -> Any:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        raise TimedOutError(f"{what}: no answer from the board in time", operation=what) from None


class ResourceMonitor:
    """The typed facade of the resource monitor actor (``rt.monitor``)."""

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self._ref = ref

    def _ask(self, message: Any, timeout: float) -> Any:
        return ask(self._ref, message, timeout=timeout)

    def status(self, device: DeviceId, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> ResourceStatus:
        """Read a board's resources now (``device`` is its BOARD id)."""
        deadline = time.monotonic() + timeout
        future = self._ask(SampleResources(device=device), timeout)
        return _wait(future, deadline, f"{device.key} resources")  # type: ignore[no-any-return]

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
        return self._ask(GetHistory(device=device, limit=limit), timeout)  # type: ignore[no-any-return]

    def trend(
        self, device: DeviceId, metric: str, *, window: float = 60.0,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> ResourceTrend:  # fmt: skip
        """How ``metric`` moved over the last ``window`` seconds of history."""
        return self._ask(GetTrend(device=device, metric=metric, window_s=window), timeout)  # type: ignore[no-any-return]

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
        return self._ask(message, timeout)  # type: ignore[no-any-return]

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
        return _wait(self._ask(message, timeout), deadline, f"allocate on {device.key}")  # type: ignore[no-any-return]

    def release_allocation(
        self, allocation: Allocation, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> None:
        """Give an allocation back."""
        self._ask(ReleaseAllocation(allocation_id=allocation.allocation_id), timeout)

    def allocations(
        self, session: str | None = None, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> tuple[Allocation, ...]:
        """Every allocation held (by ``session``)."""
        return self._ask(ListAllocations(session=session), timeout)  # type: ignore[no-any-return]

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
        return self._ask(EndSession(session=session, reason=reason), timeout)  # type: ignore[no-any-return]

    def session_info(self, session: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> SessionInfo:
        """What ``session`` holds now."""
        return self._ask(GetSession(session=session), timeout)  # type: ignore[no-any-return]

    def reap_sessions(self, *, timeout: float = 10.0) -> tuple[SessionEnded, ...]:
        """End now the sessions whose owner thread died or heartbeat stopped."""
        return tuple(self._ask(ReapSessions(), timeout))
