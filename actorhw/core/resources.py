"""The resource monitor's facade (``rt.monitor``) and its pure helpers: figures to a
ResourceStatus, metrics by name, thresholds, trends."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterable, Mapping
from typing import Any

from actorhw.core.errors import InvalidArgumentError
from actorhw.core.ids import DeviceId
from actorhw.core.messages import (
    CpuStatus,
    MemoryStatus,
    ResourceStatus,
    ResourceTrend,
    StorageStatus,
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
