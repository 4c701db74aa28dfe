"""Ownership and lifecycle of one device: leases, their requests, device info and
state changes."""

from __future__ import annotations

from typing import Any

import attrs

from actorhw.core.ids import DeviceId, DeviceKind
from actorhw.core.lifecycle import DeviceState, SharingPolicy
from actorhw.core.messages.request import Request


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


@attrs.frozen(kw_only=True)
class Acquire(Request[Lease]):
    """Ask a device for ownership. Answered with a
    [`Lease`][actorhw.core.messages.devices.Lease]."""

    owner: str
    """Who asks; shown in busy errors and listings."""


@attrs.frozen(kw_only=True)
class Release(Request[int]):
    """Give a lease back. Answered with the device's new owners_count."""

    lease: Lease
    """The lease to end; stale or foreign leases are refused."""


@attrs.frozen(kw_only=True)
class Open(Request[DeviceInfo]):
    """Open the device for this lease: the usage order is acquire, open, use."""

    lease: Lease
    """The lease that opens; each lease opens once."""


@attrs.frozen(kw_only=True)
class Close(Request[DeviceInfo]):
    """Close the device for this lease; it stays acquired."""

    lease: Lease
    """The lease that closes."""


@attrs.frozen(kw_only=True)
class Use(Request[Any]):
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
class Inspect(Request[Any]):
    """Perform a read-only operation that needs no lease (the resource monitor's sample
    of a board): it leaves no owner and no state behind. Answered as `Use` is."""

    op: str
    """The operation; only those a device kind lists as inspectable (``resources``)."""


@attrs.frozen(kw_only=True)
class GetInfo(Request[DeviceInfo]):
    """Ask a device for its [`DeviceInfo`][actorhw.core.messages.devices.DeviceInfo]."""


@attrs.frozen(kw_only=True)
class Transition(Request[DeviceInfo]):
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
