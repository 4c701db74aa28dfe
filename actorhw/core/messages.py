"""Every message between actorhw's actors, and nothing else.

Each message is an immutable ``attrs`` class with keyword-only fields, built only from
values msgpack can carry (see :mod:`actorhw.codec`): str, int, float, bool, bytes, None,
tuples and dicts of those, enums of this package, device ids and other messages.
Actors are named by their URN string, never by a live reference.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from actorhw.core.ids import DeviceId, DeviceKind
from actorhw.core.lifecycle import DeviceState, SharingPolicy

# --- ownership ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Lease:
    """Proof that ``owner`` holds ``device``: a token, refused once released."""

    device: DeviceId
    """The device held."""
    owner: str
    """Who holds it, as the caller named itself (a module, a job, a session)."""
    token: int
    """Unique per acquire on this device; a released token is stale forever."""
    generation: int
    """The device's generation at acquire time; it grows with every reset of the board."""


@attrs.frozen(kw_only=True)
class Acquire:
    """Ask a device for ownership. Answered with a :class:`Lease`."""

    owner: str
    """Who asks; shown in busy errors and listings."""


@attrs.frozen(kw_only=True)
class Release:
    """Give a lease back. Answered with the device's new owners_count."""

    lease: Lease
    """The lease to end; stale or foreign leases are refused."""


@attrs.frozen(kw_only=True)
class Open:
    """Open the device for this lease: the usage order is acquire, open, use."""

    lease: Lease
    """The lease that opens; each lease opens once."""


@attrs.frozen(kw_only=True)
class Close:
    """Close the device for this lease; it stays acquired."""

    lease: Lease
    """The lease that closes."""


@attrs.frozen(kw_only=True)
class Use:
    """Perform one operation of the device's kind (``uart.write``, ``gpio.read``...).

    Answered with the operation's result, or with a pending I/O the caller waits on.
    """

    lease: Lease
    """An open lease of the device."""
    op: str
    """The operation's name within the device's kind (``write``, ``read``...)."""
    args: tuple[Any, ...] = ()
    """Positional arguments: msgpack values (nested sequences travel as lists)."""


@attrs.frozen(kw_only=True)
class Inspect:
    """Perform a read-only operation that needs no lease (the resource monitor's sample
    of a board): it leaves no owner and no state behind. Answered as :class:`Use` is."""

    op: str
    """The operation; only those a device kind lists as inspectable (``resources``)."""


@attrs.frozen(kw_only=True)
class GetInfo:
    """Ask a device for its :class:`DeviceInfo`."""


@attrs.frozen(kw_only=True)
class DeviceInfo:
    """A device's state, policy and owners at one moment."""

    device: DeviceId
    """Which device."""
    kind: DeviceKind
    """What it is."""
    state: DeviceState
    """Where it is in its lifecycle."""
    policy: SharingPolicy
    """SINGLE or SHARED, fixed at construction."""
    owners: tuple[str, ...]
    """Owner names, in acquire order."""
    owners_count: int
    """Number of leases held."""
    open_count: int
    """Number of leases that have the device open."""
    generation: int
    """Grows with every reset of the device's board."""
    last_error: str | None = None
    """The last fault seen, for listings and the monitor."""


# --- lifecycle ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Transition:
    """Move a device along one edge of the lifecycle table. Answered with DeviceInfo."""

    to: DeviceState
    """The target state; the edge must be in the table."""
    reason: str
    """Why, for the event stream and the logs."""
    attempt: int = 0
    """Recovery attempt number, 0 outside recovery."""


@attrs.frozen(kw_only=True)
class StateChanged:
    """Event: a device moved along one lifecycle edge."""

    device: DeviceId
    """Which device."""
    from_state: DeviceState
    """The state it left."""
    to_state: DeviceState
    """The state it entered."""
    reason: str
    """Why it moved."""
    attempt: int
    """Recovery attempt number, 0 outside recovery."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


# --- registry -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RegistryEntry:
    """One device as the registry knows it."""

    device: DeviceId
    """Its id."""
    kind: DeviceKind
    """Its kind."""
    policy: SharingPolicy
    """Its sharing policy."""
    actor_urn: str
    """The URN of the actor that serves it now; a restart registers a new one."""


@attrs.frozen(kw_only=True)
class Register:
    """Add or replace devices in the registry (the supervisor sends it)."""

    entries: tuple[RegistryEntry, ...]
    """The devices to (re)register."""


@attrs.frozen(kw_only=True)
class Unregister:
    """Remove every device of a board from the registry."""

    board: str
    """The board instance's name."""


@attrs.frozen(kw_only=True)
class Lookup:
    """Find a device by id. Answered with a :class:`RegistryEntry`."""

    device: DeviceId
    """The id to look up, an enum member (hashed, never compared as a string)."""


@attrs.frozen(kw_only=True)
class ListDevices:
    """List registered devices. Answered with a tuple of :class:`RegistryEntry`."""

    board: str | None = None
    """Only this board's devices, or all when None."""


@attrs.frozen(kw_only=True)
class ListBoards:
    """List the names of the registered board instances. Answered with a tuple of str."""


# --- boards and supervision -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class BringUp:
    """Take a board and all its devices from UNKNOWN to CONNECTED. Answered with
    :class:`BoardStatus`."""

    timeout: float
    """Seconds the whole bring-up may take."""


@attrs.frozen(kw_only=True)
class GetBoardStatus:
    """Ask a board actor for its :class:`BoardStatus`."""


@attrs.frozen(kw_only=True)
class BoardStatus:
    """A board instance at one moment."""

    board: str
    """The instance's name."""
    definition: str
    """The board definition it was built from."""
    driver: str
    """The driver plugin that attaches it."""
    state: DeviceState
    """The board's own lifecycle state."""
    reason: str
    """Why it is in that state."""
    devices: int
    """How many devices it has."""
    restarts: int = 0
    """Recoveries so far."""
    quarantined: bool = False
    """Recovery gave up; only an operator's reset retries it."""


@attrs.frozen(kw_only=True)
class DeviceFault:
    """A device saw its link fail (lost, hung, protocol garbage); sent to its board."""

    device: DeviceId
    """The device that saw it."""
    code: str
    """The error's code (link_lost, timed_out...)."""
    message: str
    """The error's text."""


@attrs.frozen(kw_only=True)
class StartBoard:
    """Ask the supervisor to start a board actor. Answered with its actor URN."""

    board: str
    """The instance's name."""
    definition: str
    """The board definition's name."""


@attrs.frozen(kw_only=True)
class GetTree:
    """Ask the supervisor for the URNs of its children. Answered with :class:`Tree`."""


@attrs.frozen(kw_only=True)
class Tree:
    """The supervisor's children, by URN."""

    registry_urn: str
    """The registry actor."""
    boards: tuple[tuple[str, str], ...]
    """(board name, board actor URN) pairs."""
    monitor_urn: str = ""
    """The resource monitor actor."""
    limiter_urn: str = ""
    """The operation limiter actor."""


@attrs.frozen(kw_only=True)
class Recover:
    """A board actor's note to itself: try to bring the board back now."""

    attempt: int
    """1 for the first try after a fault."""
    hung: bool
    """The fault was a deadline with no answer: escalate to a power cycle sooner."""


@attrs.frozen(kw_only=True)
class ResetBoard:
    """An operator's reset: retry a quarantined board. Answered with BoardStatus."""

    timeout: float
    """Seconds the bring-up may take."""


@attrs.frozen(kw_only=True)
class BoardEvent:
    """Event: a board faulted, recovered, or was quarantined."""

    board: str
    """The board instance."""
    what: str
    """``fault``, ``fault_injected``, ``recovering``, ``escalation_failed`` (one step of
    the ladder failed), ``recovered``, ``recovery_failed``, ``quarantined``,
    ``actor_restarted`` or ``actor_crashed``."""
    reason: str
    """Why."""
    attempt: int
    """Recovery attempt number."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


@attrs.frozen(kw_only=True)
class InjectFault:
    """Test and scenario hook: make a board fail as hardware does.

    Answered with None, or for ``memory_error`` with the error line the board printed.
    """

    fault: str
    """``unplug``: the link vanishes (the QEMU process is killed, the sim link drops);
    ``hang``: the firmware stops answering (``microbit.temperature()`` in QEMU);
    ``power_cycle``: the board restarts and loses its state; ``memory_error``: code on
    the board allocates past its heap (answered with the board's MemoryError line)."""


@attrs.frozen(kw_only=True)
class ConnectScript:
    """Code a board runs after every connect, before its devices are CONNECTED.

    Device classes register their definitions and setups here, so a board recovered
    from a fault is in the state they expect.  Empty ``codes`` removes the script.
    """

    key: str
    """Who registered it (one script per key)."""
    codes: tuple[str, ...]
    """MicroPython sources, run in order, each as one exec."""
    timeout: float
    """Deadline of each exec, s."""


# --- data streams and the device manager ----------------------------------------------


class StreamSource(enum.Enum):
    """Where a stream message comes from."""

    DEVICE = "device"
    """Sampled from hardware by a driver's acquisition loop."""
    SERVER = "server"
    """Made by the runtime (start, stop and error notices)."""
    CLIENT = "client"
    """Sent by a subscriber (reserved for services that relay streams)."""


class StreamAction(enum.Enum):
    """What a stream message says."""

    DATA = "data"
    """A sample; ``data`` holds it."""
    START = "start"
    """The acquisition started; ``data`` lists the channels."""
    STOP = "stop"
    """The acquisition stopped; ``data`` holds the number of samples published."""
    ERROR = "error"
    """The acquisition loop failed and stopped; ``data`` holds (code, message)."""


@attrs.frozen(kw_only=True)
class StreamData:
    """One message of a data stream (the seeds' StreamData)."""

    stream_type: str
    """What the samples are (``sine``, ``accelerometer``, ``can_frame``...), per driver."""
    channel: str
    """``"<board>.<channel>"``: the board instance and the driver's channel name."""
    timestamp: float
    """Wall-clock time of the sample (seconds since the epoch)."""
    source: StreamSource
    """DEVICE for samples, SERVER for the runtime's notices."""
    action: StreamAction
    """DATA, START, STOP or ERROR."""
    data: tuple[Any, ...]
    """The sample: msgpack values (a reading, (x, y, z), a CAN frame's fields...)."""
    seq: int = 0
    """Per board and acquisition, 1 for the first sample: a gap shows a loss."""


@attrs.frozen(kw_only=True)
class BoardStep:
    """One manager operation on a board, refused by the lifecycle table in the wrong
    state. Answered with :class:`BoardStatus`."""

    operation: str
    """``scan``, ``initialize``, ``connect``, ``reset`` or ``close``."""
    timeout: float
    """Seconds the driver hook may take."""


@attrs.frozen(kw_only=True)
class BoardCommand:
    """Run one of the driver's supported commands on a board (``start``/``stop`` of a
    stream among them). Answered with the command's result."""

    command: str
    """The command's name, one of the driver's ``supported_commands``."""
    args: dict[str, Any]
    """Keyword arguments of the command: msgpack values with str keys."""
    timeout: float
    """Seconds the command may take."""


@attrs.frozen(kw_only=True)
class AcquisitionEnded:
    """A board's acquisition thread ended on its own; sent to its board actor."""

    code: str | None
    """The error's code if the loop failed, None if it simply returned."""
    message: str
    """What happened."""


# --- jobs -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class JobProgress:
    """Event: a target of a multi-device job started or ended (see actorhw.jobs)."""

    job: str
    """The job's name."""
    total: int
    """How many targets the job has."""
    running: int
    """How many run now."""
    succeeded: int
    """How many returned a value."""
    failed: int
    """How many raised."""
    target: str
    """The target this event is about ("" for a snapshot)."""
    what: str
    """``started``, ``succeeded``, ``failed``, or "" for a snapshot."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


# --- resources: monitor, allocation, sessions, operation limiter ----------------------


class Priority(enum.IntEnum):
    """An operation's priority at the limiter; a higher one is admitted first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


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
class Allocation:
    """A reservation of a board's memory, storage or CPU time, held by a session."""

    allocation_id: int
    """Unique in the runtime."""
    session: str
    """The session that holds it."""
    device: DeviceId
    """The board device."""
    kind: ResourceKind
    """What is reserved."""
    amount: int
    """Bytes (memory, storage) or milliseconds (CPU time)."""
    at: float
    """Wall-clock time it was granted."""


@attrs.frozen(kw_only=True)
class SessionInfo:
    """A session as the monitor keeps it."""

    session: str
    """The session's unique name."""
    owner: str
    """Who opened it; its leases are acquired in this name."""
    ttl: float | None
    """Seconds without a heartbeat after which it expires; None: no heartbeat needed."""
    leases: tuple[Lease, ...]
    """Leases it holds."""
    allocations: tuple[Allocation, ...]
    """Allocations it holds."""


@attrs.frozen(kw_only=True)
class SessionEnded:
    """Event: a session ended and everything it held was released."""

    session: str
    """The session."""
    owner: str
    """Its owner."""
    reason: str
    """``ended``, ``owner thread died``, ``heartbeat expired`` or ``runtime stopped``."""
    leases: int
    """Leases released."""
    allocations: int
    """Allocations released."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


@attrs.frozen(kw_only=True)
class ActiveOperation:
    """One operation the limiter admitted and that has not finished."""

    op_id: int
    """Unique in the runtime."""
    device: DeviceId
    """The device it runs on."""
    priority: Priority
    """Its priority."""
    what: str
    """What it does (``exec``, ``write``...)."""
    exclusive: bool
    """It runs alone on its device."""
    started_at: float
    """Wall-clock time it was admitted."""


@attrs.frozen(kw_only=True)
class LimiterStatistics:
    """A snapshot of the operation limiter."""

    max_global: int
    """Operations that may run at once in the runtime."""
    max_per_device: int
    """Operations that may run at once on one device."""
    operation_timeout: float
    """Seconds an operation may run before it is interrupted."""
    active: int
    """Operations running now."""
    waiting: int
    """Operations queued now."""
    admitted: int
    """Operations admitted so far."""
    refused: int
    """Operations refused at once (full, and they asked not to wait)."""
    preempted: int
    """Operations preempted by a higher priority so far."""
    timed_out: int
    """Operations interrupted by the operation timeout so far."""
    cancelled: int
    """Waits given up (deadline passed) so far."""


@attrs.frozen(kw_only=True)
class OperationPreempted:
    """Event: a Low operation was interrupted to admit a High or Critical one."""

    op_id: int
    """The preempted operation."""
    device: DeviceId
    """Its device."""
    by_op_id: int
    """The operation admitted in its place."""
    by_priority: Priority
    """That operation's priority."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


# --- resources: requests ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Admit:
    """Ask the limiter to run an operation. Answered with None once admitted, or with a
    pending admission the caller waits on; refused at once if full and ``wait`` is False."""

    op_id: int
    """Unique in the runtime (the caller draws it)."""
    device: DeviceId
    """The device the operation runs on."""
    priority: Priority = Priority.NORMAL
    """Higher runs first; High and Critical may preempt a Low one."""
    what: str = ""
    """What it does, for listings."""
    wait: bool = True
    """Queue when full (True), or be refused at once (False)."""
    exclusive: bool = False
    """Run alone on the device (Belay ``exclusive`` tasks)."""
    lease: Lease | None = None
    """The caller's open lease: the limiter interrupts the board through it."""
    actor_urn: str = ""
    """The device actor's URN, to reach it for an interrupt."""


@attrs.frozen(kw_only=True)
class Finish:
    """Tell the limiter an operation ended (or its caller stopped waiting)."""

    op_id: int
    """The operation."""


@attrs.frozen(kw_only=True)
class CheckTimeouts:
    """The limiter's note to itself: interrupt operations past the operation timeout."""


@attrs.frozen(kw_only=True)
class GetLimiterStatistics:
    """Answered with :class:`LimiterStatistics`."""


@attrs.frozen(kw_only=True)
class ListOperations:
    """Answered with a tuple of :class:`ActiveOperation`."""


@attrs.frozen(kw_only=True)
class SampleResources:
    """Read a board's resources now. Answered with a pending :class:`ResourceStatus`."""

    device: DeviceId
    """The board device (its BOARD id)."""


@attrs.frozen(kw_only=True)
class StartMonitoring:
    """Sample a board every ``interval`` seconds into its history."""

    device: DeviceId
    """The board device."""
    interval: float
    """Seconds between samples."""


@attrs.frozen(kw_only=True)
class StopMonitoring:
    """Stop sampling a board; its history stays."""

    device: DeviceId
    """The board device."""


@attrs.frozen(kw_only=True)
class GetHistory:
    """Answered with the newest samples of a board, oldest first."""

    device: DeviceId
    """The board device."""
    limit: int = 0
    """At most this many (0: all kept)."""


@attrs.frozen(kw_only=True)
class GetTrend:
    """Answered with a :class:`ResourceTrend`."""

    device: DeviceId
    """The board device."""
    metric: str
    """e.g. ``memory.used``."""
    window_s: float
    """How far back, in seconds."""


@attrs.frozen(kw_only=True)
class SetThreshold:
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


@attrs.frozen(kw_only=True)
class Allocate:
    """Reserve part of a board for a session. Answered with an :class:`Allocation`."""

    session: str
    """The session that will hold it."""
    device: DeviceId
    """The board device."""
    kind: ResourceKind
    """Memory, storage or CPU time."""
    amount: int
    """Bytes, or milliseconds of CPU time."""


@attrs.frozen(kw_only=True)
class ReleaseAllocation:
    """Give an allocation back. Answered with None."""

    allocation_id: int
    """The allocation."""


@attrs.frozen(kw_only=True)
class ListAllocations:
    """Answered with a tuple of :class:`Allocation`."""

    session: str | None = None
    """Only this session's, or all."""


@attrs.frozen(kw_only=True)
class OpenSession:
    """Start a session. Answered with its :class:`SessionInfo`."""

    session: str
    """Unique name."""
    owner: str
    """Owner name for its leases."""
    thread_id: int
    """The owner thread's ident: the session ends if that thread dies (0: not watched)."""
    ttl: float | None = None
    """Heartbeat period after which it expires; None: no heartbeat."""
    memory_quota: int | None = None
    """Bytes of memory its allocations may hold in all."""
    storage_quota: int | None = None
    """Bytes of storage its allocations may hold in all."""
    cpu_quota: int | None = None
    """Milliseconds of CPU time its allocations may hold in all."""


@attrs.frozen(kw_only=True)
class Heartbeat:
    """The session is alive. Answered with None; stale_session if it already ended."""

    session: str
    """The session."""


@attrs.frozen(kw_only=True)
class TrackLease:
    """Record that a session holds a lease (released when it ends)."""

    session: str
    """The session."""
    lease: Lease
    """The lease it acquired."""


@attrs.frozen(kw_only=True)
class UntrackLease:
    """A session released a lease itself."""

    session: str
    """The session."""
    lease: Lease
    """The lease."""


@attrs.frozen(kw_only=True)
class EndSession:
    """End a session and release all it holds. Answered with :class:`SessionEnded`."""

    session: str
    """The session."""
    reason: str = "ended"
    """Why."""


@attrs.frozen(kw_only=True)
class GetSession:
    """Answered with a session's :class:`SessionInfo`."""

    session: str
    """The session."""


@attrs.frozen(kw_only=True)
class ReapSessions:
    """The monitor's note to itself: end sessions whose owner died or heartbeat stopped."""


@attrs.frozen(kw_only=True)
class ConfigureLimiter:
    """Change the limiter's limits; running operations keep their slots. Answered with
    :class:`LimiterStatistics`."""

    max_global: int | None = None
    """Operations at once in the runtime (None: unchanged)."""
    max_per_device: int | None = None
    """Operations at once on one device (None: unchanged)."""
    operation_timeout: float | None = None
    """Seconds an operation may run (None: unchanged)."""


# --- supervision ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Crash:
    """Fault injection: the actor that receives this (as a tell) raises and crashes."""

    reason: str
    """Why, for the crash report."""


@attrs.frozen(kw_only=True)
class HeldLease:
    """One lease a device actor holds, carried over its restart."""

    token: int
    owner: str
    opened_generation: int | None
    """The generation the lease opened the device in, or None if not open."""


@attrs.frozen(kw_only=True)
class DeviceSnapshot:
    """A device actor's ownership, taken as it crashed, for its successor."""

    name: str
    """The device's name on its board."""
    holders: tuple[HeldLease, ...]
    generation: int


@attrs.frozen(kw_only=True)
class Resolve:
    """Ask the supervisor for the URN of a child by its stable name; answered with a str."""

    name: str
    """``registry``, ``board:<instance>``, or another core service's name."""


@attrs.frozen(kw_only=True)
class ChildCrashed:
    """A child actor crashed; sent to its supervisor from the child's thread."""

    name: str
    """The child's stable name."""
    error: str
    """The exception, as text."""
    snapshots: tuple[DeviceSnapshot, ...] = ()
    """Leases to carry into the restarted child: a device's own, a board's devices'."""
    entries: tuple[RegistryEntry, ...] = ()
    """A crashed registry's entries, for its successor (the actors they name live on)."""


@attrs.frozen(kw_only=True)
class TakeSnapshot:
    """Ask a device actor for its DeviceSnapshot (its board is about to restart)."""


@attrs.frozen(kw_only=True)
class Reregister:
    """Tell a board that the registry restarted: register its devices again there."""

    registry_urn: str


@attrs.frozen(kw_only=True)
class Revive:
    """Tell a restarted board to come up again; on failure, recovery takes over."""

    timeout: float
