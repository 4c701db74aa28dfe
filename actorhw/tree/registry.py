"""RegistryActor: device id -> the actor that serves it now; typed lookup; listing.

Lookup hashes the id's enum member (O(1), no string comparison); an id that is not
registered gets an error listing the valid ids of its board.  Entries name actors by
URN, so a restarted device re-registers under the same id.
"""

from __future__ import annotations

from typing import Any

from actorhw.core.errors import NoSuchDeviceError
from actorhw.core.ids import DeviceId
from actorhw.core.messages import (
    Crash,
    ListBoards,
    ListDevices,
    Lookup,
    Register,
    RegistryEntry,
    Unregister,
)
from actorhw.tree.supervision import SupervisedActor


class RegistryActor(SupervisedActor):
    """Knows every device of every running board."""

    label = "registry"

    def __init__(self, *, entries: tuple[RegistryEntry, ...] = ()) -> None:
        super().__init__()
        self._entries: dict[DeviceId, RegistryEntry] = {}
        self._boards: dict[str, dict[DeviceId, RegistryEntry]] = {}
        self._register(Register(entries=entries))  # a crashed predecessor's entries
        self.handle(
            {
                Lookup: self._lookup,
                Register: self._register,
                Unregister: self._unregister,
                ListDevices: self._list,
                ListBoards: lambda _m: tuple(self._boards),
                Crash: lambda m: self.crash(m.reason),
            }
        )

    def snapshot(self) -> tuple[RegistryEntry, ...]:
        return tuple(self._entries.values())

    def _lookup(self, message: Lookup) -> RegistryEntry:
        try:
            return self._entries[message.device]
        except (KeyError, TypeError):
            raise self._not_found(message.device) from None

    def _not_found(self, device: Any) -> NoSuchDeviceError:
        running = sorted(d.key for d in self._entries)  # every id a caller could mean
        if not isinstance(device, DeviceId):
            hint = (
                f"; the id of {device!r} is rt.device_id({device!r})"
                if isinstance(device, str) and device in running
                else ""
            )
            return NoSuchDeviceError(
                f"{device!r} is not a device id (a member of a board's id enum){hint}",
                device=repr(device),
                valid_ids=running,
            )
        board = type(device).board
        known = self._boards.get(board)
        if known is None:
            return NoSuchDeviceError(
                f"no device {device.key}: board {board!r} is not running "
                f"(running: {', '.join(self._boards) or 'none'})",
                device=device.key,
                valid_ids=running,
            )
        return NoSuchDeviceError(
            f"no device {device.key} on board {board!r}",
            device=device.key,
            valid_ids=[d.name for d in known],
        )

    def _register(self, message: Register) -> None:
        for entry in message.entries:
            self._entries[entry.device] = entry
            self._boards.setdefault(type(entry.device).board, {})[entry.device] = entry

    def _unregister(self, message: Unregister) -> None:
        for device in self._boards.pop(message.board, {}):
            self._entries.pop(device, None)

    def _list(self, message: ListDevices) -> tuple[RegistryEntry, ...]:
        if message.board is None:
            return tuple(self._entries.values())
        return tuple(self._boards.get(message.board, {}).values())
