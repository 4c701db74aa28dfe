"""One exception hierarchy for actorhw.

Every error carries an errno-style ``code`` (a stable string a script can match on)
and its context as attributes.  Each docstring says when the error is raised and how it
differs from its siblings.  Errors cross actor boundaries as exceptions set on futures,
so they must stay picklable-free of live objects: context is ids, names and numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class ActorHwError(Exception):
    """Base of every error actorhw raises on purpose.

    Attributes:
        code: errno-style name of the error, stable across releases.
        context: the keyword arguments the error was raised with.
    """

    code: ClassVar[str] = "actorhw_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        for key, value in context.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, for --json output and event streams."""
        return {"code": self.code, "message": self.message, **_plain(self.context)}


def _plain(context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [str(v) if not isinstance(v, str | int | float) else v for v in value]
        else:
            out[key] = str(value)
    return out


# --- ownership and usage order -------------------------------------------------------


class DeviceBusyError(ActorHwError):
    """A SINGLE device already has an owner; raised at once by a second acquire.

    Attributes: device, owners (names), owners_count.
    """

    code = "device_or_resource_busy"


class NotOpenedError(ActorHwError):
    """A device was used before ``open()``; its state is left closed."""

    code = "operation_not_permitted"


class NotOwnerError(ActorHwError):
    """A release, open or close came from someone who does not hold the device."""

    code = "operation_not_permitted"


class AlreadyOpenedError(ActorHwError):
    """``open()`` on a lease that is already open; nothing changed."""

    code = "device_already_opened"


class StaleLeaseError(ActorHwError):
    """A lease that was released (or expired) was presented again."""

    code = "stale_lease"


class DeviceResetError(ActorHwError):
    """The device was reset since this lease opened it; open it again."""

    code = "device_was_reset"


# --- lookup ---------------------------------------------------------------------------


class NoSuchDeviceError(ActorHwError):
    """An id that no registered board holds; lists the valid ids of that board."""

    code = "no_such_device"

    def __init__(self, message: str, *, device: str, valid_ids: Iterable[str]) -> None:
        valid = sorted(valid_ids)
        super().__init__(
            f"{message}; valid ids: {', '.join(valid)}", device=device, valid_ids=valid
        )


class NoSuchBoardError(ActorHwError):
    """A board name that no board definition or running board has."""

    code = "no_such_board"


class WrongKindError(ActorHwError):
    """A device was asked for as a kind it is not (a UART asked for as SPI)."""

    code = "wrong_device_kind"


# --- lifecycle and availability --------------------------------------------------------


class InvalidTransitionError(ActorHwError):
    """A lifecycle edge that the transition table does not have.

    Attributes: device, from_state, to_state.
    """

    code = "invalid_transition"


class DeviceUnavailableError(ActorHwError):
    """The device cannot take requests now (recovering, disconnected, quarantined).

    Raised at once, never queued. Attributes: device, state, reason, since.
    """

    code = "device_unavailable"


class TimedOutError(ActorHwError):
    """A deadline passed with no answer: an ask, a link read, a board-side task."""

    code = "timed_out"


class ActorDeadError(ActorHwError):
    """The actor that should answer is not running (stopped or crashed)."""

    code = "actor_dead"


class RuntimeStoppedError(ActorHwError):
    """A call reached a Runtime that is stopped or stopping."""

    code = "runtime_stopped"


class UnsupportedOperationError(ActorHwError):
    """A device or driver was asked for an operation it does not have."""

    code = "operation_not_supported"


class InvalidArgumentError(ActorHwError):
    """A call's argument has the wrong type or value; nothing was changed."""

    code = "invalid_argument"


# --- links and boards ----------------------------------------------------------------


class LinkError(ActorHwError):
    """Base of errors on the wire to a board."""

    code = "link_error"


class LinkLostError(LinkError):
    """The port closed or vanished (board unplugged, QEMU killed)."""

    code = "link_lost"


class RawReplError(LinkError):
    """The board did not enter the raw REPL within its deadline."""

    code = "could_not_enter_raw_repl"


class ProtocolError(LinkError):
    """The board answered with bytes that break the raw-REPL framing (garbage)."""

    code = "protocol_error"


class DeviceExceptionError(ActorHwError):
    """Code on the board raised; carries the exception name and the board's traceback.

    Attributes: exc_name (e.g. ``MemoryError``), traceback_text, device.
    """

    code = "device_exception"


class ResultParseError(ActorHwError):
    """A board's result is not a Python literal that ast.literal_eval accepts."""

    code = "bad_result"


class BoardDefinitionError(ActorHwError):
    """A board file is malformed. Attributes: file, line, key."""

    code = "invalid_board_file"


class DriverError(ActorHwError):
    """A driver plugin failed to load or misbehaved. Attributes: file, problem."""

    code = "driver_error"


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


class SchemaVersionError(CodecError):
    """The payload was written with a schema version this codec does not read."""

    code = "schema_version_mismatch"


class MessageTooLargeError(CodecError):
    """The payload is larger than the codec's size limit."""

    code = "message_too_large"


class TruncatedMessageError(CodecError):
    """The payload ends before the message does."""

    code = "truncated_message"


class MalformedMessageError(CodecError):
    """The payload decodes but is not a valid message (wrong fields, ext types, ...)."""

    code = "malformed_message"


# --- jobs and scenarios --------------------------------------------------------------


class JobTargetError(ActorHwError):
    """A job's function raised a non-actorhw exception on one target; the original is
    the ``__cause__``. Attributes: target, exc_type."""

    code = "job_target_failed"


class JobCancelledError(ActorHwError):
    """A job's target never started: the job was cancelled or its runner closed."""

    code = "job_cancelled"


class JobFailedError(ActorHwError):
    """Some targets of a job failed (JobResult.raise_for_errors); the others' results
    are kept. Attributes: job, failed (target names), errors (name -> error dict)."""

    code = "job_failed"


class ScenarioFileError(ActorHwError):
    """A scenario file is malformed; raised before anything runs.

    Attributes: file, line, key.
    """

    code = "invalid_scenario_file"


class ScenarioStepError(ActorHwError):
    """A scenario step's expectation did not hold; says what was expected and what came.

    Attributes: step, expected, actual.
    """

    code = "scenario_step_failed"


# --- resources: limiter, allocation, sessions -------------------------------------------


class PreemptedError(ActorHwError):
    """A Low operation was interrupted on the board to let a High or Critical one run.

    Unlike TimedOutError the operation did nothing wrong; retry it later.
    Attributes: device, op_id, by_priority.
    """

    code = "preempted"


class LimiterFullError(ActorHwError):
    """The limiter had no free slot and the operation asked not to wait.

    Attributes: device, active, max_global, max_per_device.
    """

    code = "too_many_operations"


class AllocationRefusedError(ActorHwError):
    """A board has not that much left: the allocatable amount is its free amount minus
    a 10% reserve of its total, minus what is already allocated.

    Attributes: device, kind, requested, allocatable (None when the board cannot tell).
    """

    code = "allocation_refused"


class QuotaExceededError(ActorHwError):
    """A session's allocations would go over its quota; the board may still have room.

    Attributes: session, kind, requested, held, quota.
    """

    code = "quota_exceeded"


class NoSuchSessionError(ActorHwError):
    """A session that never existed or has ended (heartbeat after expiry, ...).

    Attributes: session.
    """

    code = "no_such_session"
