"""The resource monitor: a board's memory, storage and CPU figures, thresholds,
trends and their requests."""

from __future__ import annotations

import enum
from concurrent.futures import Future

import attrs

from actorhw.core.ids import DeviceId
from actorhw.core.messages.request import Request


class ResourceKind(enum.Enum):
    """What an allocation reserves on a board."""

    MEMORY = "memory"
    STORAGE = "storage"
    CPU_TIME = "cpu_time"


@attrs.frozen(kw_only=True)
class MemoryStatus:
    """A board's heap, in bytes; None where the firmware cannot tell."""

    total: int | None = None
    """Size of the heap."""
    used: int | None = None
    """Bytes allocated."""
    free: int | None = None
    """Bytes free."""
    largest_free_block: int | None = None
    """The largest contiguous free block (what one allocation can get at most)."""


@attrs.frozen(kw_only=True)
class StorageStatus:
    """A board's file system, in bytes; None where the firmware cannot tell."""

    total: int | None = None
    """Size of the file system."""
    used: int | None = None
    """Bytes in files."""
    free: int | None = None
    """Bytes free."""


@attrs.frozen(kw_only=True)
class CpuStatus:
    """A board's processor; None where the firmware cannot tell."""

    uptime_s: float | None = None
    """Seconds since the firmware started."""
    active_threads: int | None = None
    """Threads running on the board."""
    usage_percent: float | None = None
    """Processor load, where measurable."""


@attrs.frozen(kw_only=True)
class ResourceStatus:
    """One sample of a board's resources, read from the board itself."""

    device: DeviceId
    """The board device sampled (its BOARD id)."""
    memory: MemoryStatus
    """Heap figures."""
    storage: StorageStatus
    """File-system figures."""
    cpu: CpuStatus
    """Processor figures."""
    at: float
    """Wall-clock time of the sample (seconds since the epoch)."""


@attrs.frozen(kw_only=True)
class ResourceThresholdExceeded:
    """Event: a metric of a board crossed its threshold, or the board ran out of memory."""

    device: DeviceId
    """The board device."""
    metric: str
    """``memory.used``, ``memory.free``, ``storage.used``... or ``memory.error``."""
    value: float
    """The metric's value (for ``memory.error``: the bytes the failed allocation asked)."""
    threshold: float
    """The limit it crossed."""
    reason: str
    """Human-readable why."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


@attrs.frozen(kw_only=True)
class ResourceStatusChanged:
    """Event: a board's resource level changed (``ok``, ``exceeded``, ``unreachable``)."""

    device: DeviceId
    """The board device."""
    from_level: str
    """The level before."""
    to_level: str
    """The level now."""
    reason: str
    """Why (the metrics over their thresholds, or the error that made it unreachable)."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


@attrs.frozen(kw_only=True)
class ResourceTrend:
    """How one metric moved over a window of the history."""

    device: DeviceId
    """The board device."""
    metric: str
    """The metric, e.g. ``memory.used``."""
    window_s: float
    """The window asked for, in seconds."""
    samples: int
    """Samples in the window that had the metric."""
    first: float | None
    """The oldest value in the window."""
    last: float | None
    """The newest value in the window."""
    rate_per_s: float | None
    """(last - first) / elapsed; None with fewer than two samples."""


@attrs.frozen(kw_only=True)
class SampleResources(Request[Future[ResourceStatus]]):
    """Read a board's resources now. Answered with a pending `ResourceStatus`."""

    device: DeviceId
    """The board device (its BOARD id)."""


@attrs.frozen(kw_only=True)
class StartMonitoring(Request[None]):
    """Sample a board every ``interval`` seconds into its history."""

    device: DeviceId
    """The board device."""
    interval: float
    """Seconds between samples."""


@attrs.frozen(kw_only=True)
class StopMonitoring(Request[None]):
    """Stop sampling a board; its history stays."""

    device: DeviceId
    """The board device."""


@attrs.frozen(kw_only=True)
class GetHistory(Request[tuple[ResourceStatus, ...]]):
    """Answered with the newest samples of a board, oldest first."""

    device: DeviceId
    """The board device."""
    limit: int = 0
    """At most this many (0: all kept)."""


@attrs.frozen(kw_only=True)
class GetTrend(Request[ResourceTrend]):
    """Answered with a `ResourceTrend`."""

    device: DeviceId
    """The board device."""
    metric: str
    """e.g. ``memory.used``."""
    window_s: float
    """How far back, in seconds."""


@attrs.frozen(kw_only=True)
class SetThreshold(Request[None]):
    """Emit ResourceThresholdExceeded when ``metric`` crosses ``limit``."""

    device: DeviceId
    """The board device."""
    metric: str
    """e.g. ``memory.used`` (above) or ``memory.free`` (below)."""
    limit: float
    """The limit; ``*.free`` metrics are exceeded below it, others above it."""


@attrs.frozen(kw_only=True)
class ObserveDeviceError:
    """A device operation raised on the board; a MemoryError is a threshold event."""

    device: DeviceId
    """The device the operation ran on."""
    exc_name: str
    """The board's exception name."""
    message: str
    """Its message."""
