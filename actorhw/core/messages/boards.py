"""Board actors: bring-up, status, faults and recovery, fault injection, connect
scripts, and the device manager's steps and commands."""

from __future__ import annotations

from typing import Any

import attrs

from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages.request import Request


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
    """Recovery gave up on the board or on one of its devices (``quarantined_devices``);
    only an operator's reset retries it."""
    quarantined_devices: tuple[str, ...] = ()
    """Devices whose actor crashed past its restart intensity: kept DISCONNECTED."""


@attrs.frozen(kw_only=True)
class BringUp(Request[BoardStatus]):
    """Take a board and all its devices from UNKNOWN to CONNECTED. Answered with
    [`BoardStatus`][actorhw.core.messages.boards.BoardStatus]."""

    timeout: float
    """Seconds the whole bring-up may take."""


@attrs.frozen(kw_only=True)
class GetBoardStatus(Request[BoardStatus]):
    """Ask a board actor for its [`BoardStatus`][actorhw.core.messages.boards.BoardStatus]."""


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
class Recover:
    """A board actor's note to itself: try to bring the board back now."""

    attempt: int
    """1 for the first try after a fault."""
    hung: bool
    """The fault was a deadline with no answer: escalate to a power cycle sooner."""


@attrs.frozen(kw_only=True)
class ResetBoard(Request[BoardStatus]):
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
class InjectFault(Request[str | None]):
    """Test and scenario hook: make a board fail as hardware does.

    Answered with None, or for ``memory_error`` with the error line the board printed.
    """

    fault: str
    """``unplug``: the link vanishes (the QEMU process is killed, the sim link drops);
    ``hang``: the firmware stops answering (``microbit.temperature()`` in QEMU);
    ``power_cycle``: the board restarts and loses its state; ``memory_error``: code on
    the board allocates past its heap (answered with the board's MemoryError line)."""


@attrs.frozen(kw_only=True)
class ConnectScript(Request[None]):
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


@attrs.frozen(kw_only=True)
class BoardStep(Request[BoardStatus]):
    """One manager operation on a board, refused by the lifecycle table in the wrong
    state. Answered with [`BoardStatus`][actorhw.core.messages.boards.BoardStatus]."""

    operation: str
    """``scan``, ``initialize``, ``connect``, ``reset`` or ``close``."""
    timeout: float
    """Seconds the driver hook may take."""


@attrs.frozen(kw_only=True)
class BoardCommand(Request[Any]):
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
