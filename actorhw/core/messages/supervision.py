"""The supervisor and crashes: starting boards, the tree, stable names, crash
reports and the state carried over a restart."""

from __future__ import annotations

from typing import Any

import attrs

from actorhw.core.messages.registry import RegistryEntry
from actorhw.core.messages.request import Request


@attrs.frozen(kw_only=True)
class StartBoard(Request[str]):
    """Ask the supervisor to start a board actor. Answered with its actor URN."""

    board: str
    """The instance's name."""
    definition: str
    """The board definition's name."""
    options: dict[str, Any] = attrs.field(factory=dict)
    """Options of this instance, over the definition's (``port``, ``power_hook``...)."""
    timeout: float = 5.0
    """The caller's deadline: the board's internal asks (registering its devices) get
    at least this long."""


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
class ReviveBoard(Request[str]):
    """An operator's reset of a board quarantined by the supervisor (its actor crashed
    past its restart intensity): start its actor again. Answered with its actor URN."""

    board: str
    """The instance's name."""


@attrs.frozen(kw_only=True)
class GetTree(Request[Tree]):
    """Ask the supervisor for the URNs of its children. Answered with `Tree`."""


@attrs.frozen(kw_only=True)
class PrepareStop(Request[None]):
    """The runtime is about to stop the tree within ``timeout`` s: the supervisor gives
    its children that long to stop (never less than its default)."""

    timeout: float


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
class Resolve(Request[str]):
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
class TakeSnapshot(Request[DeviceSnapshot]):
    """Ask a device actor for its DeviceSnapshot (its board is about to restart)."""


@attrs.frozen(kw_only=True)
class Reregister:
    """Tell a board that the registry restarted: register its devices again there."""

    registry_urn: str


@attrs.frozen(kw_only=True)
class Revive:
    """Tell a restarted board to come up again; on failure, recovery takes over."""

    timeout: float
