"""Every message between actorhw's actors, and nothing else.

Each message is an immutable ``attrs`` class with keyword-only fields, built only from
values msgpack can carry (see :mod:`actorhw.codec`): str, int, float, bool, bytes, None,
tuples and dicts of those, enums of this package, device ids and other messages.
Actors are named by their URN string, never by a live reference.
"""

from __future__ import annotations

from typing import Any

import attrs

from actorhw.ids import DeviceId, DeviceKind
from actorhw.lifecycle import DeviceState, SharingPolicy

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
    """``fault``, ``recovering``, ``recovered``, ``recovery_failed`` or ``quarantined``."""
    reason: str
    """Why."""
    attempt: int
    """Recovery attempt number."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


@attrs.frozen(kw_only=True)
class InjectFault:
    """Test and scenario hook: make a board fail as hardware does. Answered with None."""

    fault: str
    """``unplug``: the link vanishes (the QEMU process is killed, the sim link drops)."""
