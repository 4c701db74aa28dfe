"""The registry's entries and requests: which actor serves which device id."""

from __future__ import annotations

import attrs

from actorhw.core.ids import DeviceId, DeviceKind
from actorhw.core.lifecycle import SharingPolicy
from actorhw.core.messages.request import Request


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
class Register(Request[None]):
    """Add or replace devices in the registry (the supervisor sends it)."""

    entries: tuple[RegistryEntry, ...]
    """The devices to (re)register."""


@attrs.frozen(kw_only=True)
class Unregister(Request[None]):
    """Remove every device of a board from the registry."""

    board: str
    """The board instance's name."""


@attrs.frozen(kw_only=True)
class Lookup(Request[RegistryEntry]):
    """Find a device by id. Answered with a `RegistryEntry`."""

    device: DeviceId
    """The id to look up, an enum member (hashed, never compared as a string)."""


@attrs.frozen(kw_only=True)
class ListDevices(Request[tuple[RegistryEntry, ...]]):
    """List registered devices. Answered with a tuple of `RegistryEntry`."""

    board: str | None = None
    """Only this board's devices, or all when None."""


@attrs.frozen(kw_only=True)
class ListBoards(Request[tuple[str, ...]]):
    """List the names of the registered board instances. Answered with a tuple of str."""
