"""One exception hierarchy for actorhw.

Every error carries an errno-style ``code`` (a stable string a script can match on) and
its context: the keyword arguments it was raised with, each declared on its class as a
typed attribute (a [`Field`][actorhw.core.error_base.Field]), so ``e.owners`` is a
``Sequence[str]`` to the type checker and reads its default when the raiser did not give
it. Each docstring says when the error is raised and how it differs from its siblings.
Errors cross actor boundaries as exceptions set on futures, so context is ids, names and
numbers, never live objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from actorhw.core.error_base import ActorHwError as ActorHwError
from actorhw.core.error_base import Field as Field


class _OnDevice(ActorHwError):
    """An error about one device (or board): ``device`` is its key (``board.NAME``)."""

    device = Field[str]("")
    """The device's key, or "" when the error is not about one device."""
    needs_hand = Field[bool](False)
    """Only a person can help (power-cycle a hung board that has no power hook)."""
    path = Field[str]("")
    """A file on the board the error is about (file operations), or ""."""


# --- ownership and usage order -------------------------------------------------------


class DeviceBusyError(_OnDevice):
    """A SINGLE device already has an owner; raised at once by a second acquire.

    Attributes: device, owners (names), owners_count.
    """

    code = "device_or_resource_busy"
    owners = Field[Sequence[str]](())
    owners_count = Field[int](0)
    host = Field[str]("")
    """On a cluster: the host the board is on."""
    clients = Field[Sequence[str]](())
    """On a cluster: where each owner runs (machine:pid)."""


class NotOpenedError(_OnDevice):
    """A device was used before ``open()``; its state is left closed."""

    code = "operation_not_permitted"


class NotOwnerError(_OnDevice):
    """A release, open or close came from someone who does not hold the device."""

    code = "operation_not_permitted"
    owner = Field[str]("")


class AlreadyOpenedError(_OnDevice):
    """``open()`` on a lease that is already open; nothing changed."""

    code = "device_already_opened"
    owner = Field[str]("")


class StaleLeaseError(_OnDevice):
    """A lease that was released (or expired) was presented again."""

    code = "stale_lease"
    owner = Field[str]("")
    token = Field[int | None](None)


class DeviceResetError(_OnDevice):
    """The device was reset since this lease opened it; open it again."""

    code = "device_was_reset"
    generation = Field[int | None](None)
    opened_generation = Field[int | None](None)


# --- lookup ---------------------------------------------------------------------------


class NoSuchDeviceError(_OnDevice):
    """An id that no registered board holds; lists the valid ids of that board."""

    code = "no_such_device"
    valid_ids = Field[Sequence[str]](())

    def __init__(self, message: str, *, device: str, valid_ids: Iterable[str]) -> None:
        valid = sorted(valid_ids)
        super().__init__(
            f"{message}; valid ids: {', '.join(valid)}", device=device, valid_ids=valid
        )


class NoSuchBoardError(ActorHwError):
    """A board name that no board definition or running board has."""

    code = "no_such_board"
    board = Field[str]("")
    valid_boards = Field[Sequence[str]](())


class WrongKindError(_OnDevice):
    """A device was asked for as a kind it is not (a UART asked for as SPI)."""

    code = "wrong_device_kind"
    expected = Field[str]("")
    actual = Field[str]("")


# --- lifecycle and availability --------------------------------------------------------


class InvalidTransitionError(_OnDevice):
    """A lifecycle edge that the transition table does not have.

    Attributes: device, from_state, to_state.
    """

    code = "invalid_transition"
    from_state = Field[str]("")
    to_state = Field[str]("")


class DeviceUnavailableError(_OnDevice):
    """The device cannot take requests now (recovering, disconnected, quarantined).

    Raised at once, never queued. Attributes: device, state, reason, since.
    """

    code = "device_unavailable"
    state = Field[str]("")
    reason = Field[str]("")
    since = Field[float | None](None)
    port = Field[str]("")


class TimedOutError(_OnDevice):
    """A deadline passed with no answer: an ask, a link read, a board-side task."""

    code = "timed_out"
    board = Field[str]("")
    operation = Field[str]("")
    timeout = Field[float | None](None)
    resynced = Field[bool](False)
    busy = Field[bool](False)
    op_id = Field[int | None](None)
    job = Field[str]("")
    pid = Field[int | None](None)
    loops = Field[Sequence[str]](())
    boards = Field[Sequence[str]](())
    """The boards waited for (none of them came free in time)."""


class ActorDeadError(ActorHwError):
    """The actor that should answer is not running (stopped or crashed)."""

    code = "actor_dead"
    actor = Field[str]("")


class RuntimeStoppedError(_OnDevice):
    """A call reached a Runtime that is stopped or stopping."""

    code = "runtime_stopped"


class UnsupportedOperationError(_OnDevice):
    """A device or driver was asked for an operation it does not have."""

    code = "operation_not_supported"
    board = Field[str]("")
    actor = Field[str]("")
    driver = Field[str]("")
    command = Field[str]("")
    op = Field[str]("")
    supported = Field[Sequence[str]](())
    port = Field[str]("")


class InvalidArgumentError(_OnDevice):
    """A call's argument has the wrong type or value; nothing was changed."""

    code = "invalid_argument"
    argument = Field[str]("")
    """The argument's name."""
    board = Field[str]("")
    """The board the argument was for, where it names one."""
    value = Field[object](None)
    """The value refused, where it helps to see it."""
    candidates = Field[Sequence[Any]](())
    """What would have been accepted, where there are few."""


# --- links and boards ----------------------------------------------------------------


class LinkError(_OnDevice):
    """Base of errors on the wire to a board."""

    code = "link_error"
    board = Field[str]("")
    port = Field[str]("")
    returncode = Field[int | None](None)


class LinkLostError(LinkError):
    """The port closed or vanished (board unplugged, QEMU killed)."""

    code = "link_lost"


class RawReplError(LinkError):
    """The board did not enter the raw REPL within its deadline."""

    code = "could_not_enter_raw_repl"
    timeout = Field[float | None](None)


class ProtocolError(LinkError):
    """The board answered with bytes that break the raw-REPL framing (garbage)."""

    code = "protocol_error"
    expected = Field[str]("")
    max_output = Field[int | None](None)
    overflow = Field[bool](False)
    resynced = Field[bool](False)


class DeviceExceptionError(_OnDevice):
    """Code on the board raised; carries the exception name and the board's traceback.

    Attributes: exc_name (e.g. ``MemoryError``), traceback_text, device.
    """

    code = "device_exception"
    exc_name = Field[str]("")
    exc_message = Field[str]("")
    traceback_text = Field[str]("")
    stdout = Field[str]("")
    task = Field[str]("")


class ResultParseError(_OnDevice):
    """A board's result is not a Python literal that ast.literal_eval accepts."""

    code = "bad_result"
    text = Field[str]("")
    task = Field[str]("")


class BoardDefinitionError(ActorHwError):
    """A board file is malformed. Attributes: file, line, key."""

    code = "invalid_board_file"
    file = Field[str]("")
    line = Field[int | None](None)
    key = Field[str]("")


class DriverError(ActorHwError):
    """A driver plugin failed to load or misbehaved. Attributes: file, problem."""

    code = "driver_error"
    file = Field[str]("")
    line = Field[int](0)
    """The line of the board file's ``driver`` key, for a driver no plugin provides."""
    problem = Field[str]("")
    driver = Field[str]("")


class BoardsNotConnectedError(ActorHwError):
    """Several boards brought up together did not come up; every failing board is
    named with its own error, not only the first (ophyd-async's ``NotConnectedError``).

    The boards that came up stay up. One failing board raises its own error instead.
    Attributes: failed (board names, in the order given), errors (name -> error as plain
    data); ``sub_errors`` holds the errors themselves.
    """

    code = "boards_not_connected"
    failed = Field[Sequence[str]](())
    """The names of the boards that did not come up."""
    errors = Field[Mapping[str, Mapping[str, Any]]]({})
    """Each failing board's error, as
    [`ActorHwError.to_dict()`][actorhw.core.error_base.ActorHwError.to_dict] gives it."""

    sub_errors: dict[str, ActorHwError]
    """Each failing board's error, by board name."""

    def __init__(self, sub_errors: Mapping[str, ActorHwError]) -> None:
        lines = "; ".join(f"{name}: {error}" for name, error in sub_errors.items())
        super().__init__(
            f"{len(sub_errors)} boards did not come up: {lines}",
            failed=list(sub_errors),
            errors={name: error.to_dict() for name, error in sub_errors.items()},
        )
        self.sub_errors = dict(sub_errors)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.sub_errors,))


#: Errors that refuse a request before anything changed (the caller's mistake: a bad
#: argument, an operation the device lacks, a state the lifecycle table forbids), as
#: opposed to failures of the hardware; the device manager raises these and reports
#: the others as ``{"status": "error", ...}`` results.
REFUSALS: tuple[type[ActorHwError], ...] = (
    InvalidArgumentError,
    UnsupportedOperationError,
    InvalidTransitionError,
    NoSuchBoardError,
    NoSuchDeviceError,
)


# --- codec ---------------------------------------------------------------------------


class CodecError(ActorHwError):
    """Base of errors decoding a message; the input is refused whole."""

    code = "codec_error"


class UnknownMessageTypeError(CodecError):
    """The type tag names no message class."""

    code = "unknown_message_type"
    tag = Field[str]("")


class SchemaVersionError(CodecError):
    """The payload was written with a schema version this codec does not read."""

    code = "schema_version_mismatch"
    expected = Field[int | None](None)
    version = Field[object](None)


class MessageTooLargeError(CodecError):
    """The payload is larger than the codec's size limit."""

    code = "message_too_large"
    size = Field[int | None](None)
    max_size = Field[int | None](None)


class TruncatedMessageError(CodecError):
    """The payload ends before the message does."""

    code = "truncated_message"
    size = Field[int | None](None)


class MalformedMessageError(CodecError):
    """The payload decodes but is not a valid message (wrong fields, ext types, ...)."""

    code = "malformed_message"
    tag = Field[str]("")
    size = Field[int | None](None)
    ext_code = Field[int | None](None)
    errors = Field[Sequence[str]](())


# --- jobs and scenarios --------------------------------------------------------------


class JobTargetError(ActorHwError):
    """A job's function raised a non-actorhw exception on one target; the original is
    the ``__cause__``. Attributes: target, exc_type."""

    code = "job_target_failed"
    target = Field[str]("")
    exc_type = Field[str]("")


class JobCancelledError(ActorHwError):
    """A job's target never started: the job was cancelled or its runner closed."""

    code = "job_cancelled"


class JobFailedError(ActorHwError):
    """Some targets of a job failed (JobResult.raise_for_errors); the others' results
    are kept. Attributes: job, failed (target names), errors (name -> error dict)."""

    code = "job_failed"
    job = Field[str]("")
    failed = Field[Sequence[str]](())
    errors = Field[Mapping[str, Any]]({})


class ScenarioFileError(ActorHwError):
    """A scenario file is malformed; raised before anything runs.

    Attributes: file, line, key.
    """

    code = "invalid_scenario_file"
    file = Field[str]("")
    line = Field[int | None](None)
    key = Field[str]("")
    problems = Field[Sequence[Mapping[str, Any]]](())
    """Every problem of the file as plain data (code, message, file, line, key), when
    there is more than one; the message lists them all."""


class ScenarioStepError(ActorHwError):
    """A scenario step's expectation did not hold; says what was expected and what came.

    Attributes: step, expected, actual.
    """

    code = "scenario_step_failed"
    step = Field[str]("")
    expected = Field[object](None)
    actual = Field[object](None)


# --- resources: limiter, allocation, sessions -------------------------------------------


class PreemptedError(_OnDevice):
    """A Low operation was interrupted on the board to let a High or Critical one run.

    Unlike TimedOutError the operation did nothing wrong; retry it later.
    Attributes: device, op_id, by_priority.
    """

    code = "preempted"
    op_id = Field[int | None](None)
    by_priority = Field[str]("")


class LimiterFullError(_OnDevice):
    """The limiter had no free slot and the operation asked not to wait.

    Attributes: device, active, max_global, max_per_device.
    """

    code = "too_many_operations"
    active = Field[int](0)
    max_global = Field[int](0)
    max_per_device = Field[int](0)


class AllocationRefusedError(_OnDevice):
    """A board has not that much left: the allocatable amount is its free amount minus
    a 10% reserve of its total, minus what is already allocated.

    Attributes: device, kind, requested, allocatable (None when the board cannot tell).
    """

    code = "allocation_refused"
    kind = Field[str]("")
    requested = Field[int](0)
    allocatable = Field[int | None](None)


class QuotaExceededError(ActorHwError):
    """A session's allocations would go over its quota; the board may still have room.

    Attributes: session, kind, requested, held, quota.
    """

    code = "quota_exceeded"
    session = Field[str]("")
    kind = Field[str]("")
    requested = Field[int](0)
    held = Field[int](0)
    quota = Field[int](0)


class NoSuchSessionError(ActorHwError):
    """A session that never existed or has ended (heartbeat after expiry, ...).

    Attributes: session.
    """

    code = "no_such_session"
    session = Field[str]("")


# --- cluster --------------------------------------------------------------------------


class HostUnreachableError(_OnDevice):
    """A cluster host is offline (no heartbeat, no responder) or the cluster's server
    cannot be reached; raised at once, never queued.

    Attributes: host, and board or device when a call named one.
    """

    code = "host_unreachable"
    host = Field[str]("")
    """The host's name (or the servers' URLs when the cluster itself is unreachable)."""
