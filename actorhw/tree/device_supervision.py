"""The board actor's supervision of its device actors (a part of BoardActor, a mixin).

It starts each device's actor (watched: its crash is reported to the board) and
registers it.  one_for_one: a crashed device actor is restarted from its snapshot (its leases carry
over), at most ``max_restarts`` times in ``window`` s (the board's RecoveryPolicy).  One
crash more escalates: the device is **quarantined**, kept DISCONNECTED by an actor that
refuses new work but still answers questions and releases; the board's status lists it
and a ``quarantined`` event says why.  An operator's reset (``rt.reset_board``) brings it
back with a fresh restart budget.  A quarantined device that crashes again stays down
(no actor) until that reset.

A release must never be lost to a restart: while a device has no actor, releases sent
to the board wait for the crash report and are applied to the snapshot the successor
starts from (or to the snapshot a device that stays down keeps).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from actorhw.core.errors import ActorDeadError, ActorHwError, NotOwnerError, StaleLeaseError
from actorhw.core.lifecycle import DeviceState, legal_path
from actorhw.core.messages import (
    ChildCrashed,
    DeviceFault,
    DeviceSnapshot,
    GetInfo,
    Lease,
    Register,
    RegistryEntry,
    Release,
    Transition,
)
from actorhw.core.recovery import RestartTracker
from actorhw.tree.asks import Pending, ask, ask_later, tell_if_alive
from actorhw.tree.device import DeviceActor
from actorhw.tree.supervision import report_to

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from actorhw.core.events import EventBus
    from actorhw.core.ids import DeviceId
    from actorhw.core.messages.request import Request
    from actorhw.core.recovery import RecoveryPolicy
    from actorhw.drivers.board_driver import Peripheral
    from actorhw.drivers.definitions import DeviceSpec

R = TypeVar("R")
S = DeviceState
#: Deadline of one control ask from the board to one of its devices.
DEVICE_TIMEOUT = 5.0
#: A release waiting for a device's crash report, and the caller's answer.
_Waiting = tuple[Lease, "concurrent.futures.Future[int]"]


class _FaultTo:
    """A device's fault, told to its board as a DeviceFault (one per board)."""

    __slots__ = ("board",)

    def __init__(self, board: pykka.ActorRef[Any]) -> None:
        self.board = board

    def __call__(self, device: DeviceId, error: ActorHwError) -> None:
        tell_if_alive(self.board, DeviceFault(device=device, code=error.code, message=str(error)))


class DeviceSupervision:
    """Restarts, quarantine and releases of a board's device actors."""

    if TYPE_CHECKING:
        _name: str
        _ids: type[DeviceId]
        _state: DeviceState
        _reason: str
        _stopping: bool
        _policy: RecoveryPolicy
        _devices: dict[DeviceId, pykka.ActorRef[Any]]
        _peripherals: dict[DeviceId, Peripheral]
        _log: Any

        _specs: dict[DeviceId, DeviceSpec]
        _events: EventBus
        _registry: pykka.ActorRef[Any]
        _ask_timeout: float
        actor_ref: pykka.ActorRef[Any]

        def _publish(self, what: str, reason: str, attempt: int) -> None: ...
        def _post(self) -> None: ...

    def _supervise_devices(self) -> dict[type, Callable[[Any], Any]]:
        """Set up the books; the messages this part handles."""
        self._device_restarts: dict[DeviceId, RestartTracker] = {}
        self._quarantined_devices: dict[DeviceId, str] = {}
        # Quarantined and crashed again: no actor; the snapshot keeps its leases.
        self._parked: dict[DeviceId, DeviceSnapshot | None] = {}
        self._waiting: dict[DeviceId, list[_Waiting]] = {}
        self._fault_to: _FaultTo | None = None
        return {ChildCrashed: self._device_crashed, Release: self._release_for}

    def _start_device(
        self, device: DeviceId, restore: DeviceSnapshot | None
    ) -> pykka.ActorRef[Any]:
        if self._fault_to is None:  # one for all the board's devices, not a closure each
            self._fault_to = _FaultTo(self.actor_ref)
        ref: pykka.ActorRef[Any] = DeviceActor.start_watched(
            report_to(self.actor_ref, device.name),
            device=device,
            spec=self._specs[device],
            peripheral=self._peripherals[device],
            events=self._events,
            on_fault=self._fault_to,
            restore=restore,
        )
        return ref

    def _register(self, devices: tuple[DeviceId, ...]) -> None:
        self._register_later(devices).wait(timeout=self._ask_timeout)

    def _register_later(self, devices: tuple[DeviceId, ...]) -> Pending[None]:
        """Send the devices' Register now; its answer is collected later (the board's
        start does not wait for the registry's thread: BringUp collects it)."""
        entries = tuple(
            RegistryEntry(
                device=d,
                kind=self._specs[d].kind,
                policy=self._specs[d].policy,
                actor_urn=self._devices[d].actor_urn,
            )
            for d in devices
        )
        return ask_later(self._registry, Register(entries=entries))

    def _serving(self) -> list[pykka.ActorRef[Any]]:
        """The device actors that follow the board's lifecycle: not the quarantined, nor
        one that just crashed (its successor starts in the board's state then)."""
        return [
            r
            for d, r in self._devices.items()
            if d not in self._quarantined_devices and r.is_alive()
        ]

    def _to_device(self, ref: pykka.ActorRef[Any], message: Request[R]) -> R | None:
        """Ask one device; None if its actor died meanwhile (its crash report follows,
        and its successor starts in the board's state then)."""
        try:
            return ask(ref, message, timeout=DEVICE_TIMEOUT)
        except ActorDeadError:
            return None

    # --- crashes -----------------------------------------------------------------------

    def _device_crashed(self, message: ChildCrashed) -> None:
        device = self._ids[message.name]
        snapshot = self._settle(device, message.snapshots[0] if message.snapshots else None)
        self._publish("actor_crashed", f"{device.key}: {message.error}", 0)
        if self._stopping:
            return
        if device in self._quarantined_devices:
            self._parked[device] = snapshot
            self._log.error("{} crashed while quarantined; it stays down", device.key)
            return
        tracker = self._device_restarts.setdefault(device, RestartTracker(self._policy))
        if tracker.exhausted():
            self._quarantine(device, snapshot, message.error)
            return
        tracker.record()
        self._restart(device, snapshot, self._state, "restarted after a crash")
        self._publish("actor_restarted", f"{device.key}: {message.error}", 0)

    def _restart(
        self, device: DeviceId, snapshot: DeviceSnapshot | None, goal: DeviceState, reason: str
    ) -> None:
        ref = self._start_device(device, snapshot)
        self._devices[device] = ref
        for to in legal_path(S.UNKNOWN, goal):
            ask(ref, Transition(to=to, reason=reason), timeout=DEVICE_TIMEOUT)
        self._register((device,))

    def _quarantine(self, device: DeviceId, snapshot: DeviceSnapshot | None, error: str) -> None:
        p = self._policy
        reason = (
            f"{device.key} quarantined: {p.max_restarts} restarts in {p.window:g} s and it "
            f"crashed again ({error}); rt.reset_board({self._name!r}) retries it"
        )
        self._quarantined_devices[device] = reason
        self._restart(device, snapshot, S.DISCONNECTED, reason)
        self._reason = reason
        self._log.error("{}", reason)
        self._publish("quarantined", reason, 0)

    def _revive_devices(self) -> None:
        """An operator's reset: every quarantined device back, with a fresh budget."""
        revived = list(self._quarantined_devices)
        goal = S.CONNECTED if self._state in (S.CONNECTED, S.ACTIVE) else S.DISCONNECTED
        for device in revived:
            del self._quarantined_devices[device]
            self._device_restarts[device] = RestartTracker(self._policy)
            reason = "revived by an operator's reset"
            if device in self._parked:
                self._restart(device, self._parked.pop(device), goal, reason)
                continue
            ref = self._devices[device]
            state = ask(ref, GetInfo(), timeout=DEVICE_TIMEOUT).state
            for to in legal_path(state, goal):
                ask(ref, Transition(to=to, reason=reason), timeout=DEVICE_TIMEOUT)
        if revived:
            keys = ", ".join(d.key for d in revived)
            self._reason = f"{keys} revived by an operator's reset"
            self._publish("actor_restarted", self._reason, 0)

    def _device_snapshots(self) -> list[DeviceSnapshot]:
        """The leases of the devices that have no actor now (for the board's successor)."""
        return [s for s in self._parked.values() if s is not None]

    # --- releases while a device has no actor --------------------------------------------

    def _release_for(self, message: Release) -> int | concurrent.futures.Future[int]:
        """A release the Runtime could not deliver (the device's actor was down): to
        the actor if it is back, to the kept snapshot if it stays down, else it waits
        for the crash report (answered with a future)."""
        lease = message.lease
        device = lease.device
        if device not in self._devices:
            raise NotOwnerError(
                f"lease of {device!r} presented to board {self._name}", device=str(device)
            )
        if device in self._parked:
            snapshot, left = self._without(device, self._parked[device], lease)
            self._parked[device] = snapshot
            return left
        ref = self._devices[device]
        if ref.is_alive():
            with contextlib.suppress(ActorDeadError):  # crashed just now: its report follows
                left_now: int = ask(ref, message, timeout=DEVICE_TIMEOUT)
                return left_now
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._waiting.setdefault(device, []).append((lease, future))
        return future

    def _settle(self, device: DeviceId, snapshot: DeviceSnapshot | None) -> DeviceSnapshot | None:
        """Apply the releases that waited for this crash report to its snapshot."""
        for lease, future in self._waiting.pop(device, []):
            try:
                snapshot, left = self._without(device, snapshot, lease)
            except ActorHwError as e:
                future.set_exception(e)
            else:
                future.set_result(left)
        return snapshot

    def _without(
        self, device: DeviceId, snapshot: DeviceSnapshot | None, lease: Lease
    ) -> tuple[DeviceSnapshot | None, int]:
        snapshot, left = release_from(snapshot, lease)
        if snapshot is not None and not left:  # the last release: back to power-on state
            try:
                self._peripherals[device].reset()
            except Exception as e:
                self._log.opt(exception=e).warning("{}: reset after release failed", device.key)
        return snapshot, left

    def _fail_waiting(self) -> None:
        """The board stops: releases still waiting are told so (the caller retries)."""
        for waiting in self._waiting.values():
            for _lease, future in waiting:
                future.set_exception(ActorDeadError(f"board {self._name} stopped"))
        self._waiting.clear()


def release_from(
    snapshot: DeviceSnapshot | None, lease: Lease
) -> tuple[DeviceSnapshot | None, int]:
    """``snapshot`` without ``lease``'s holder, and the holders left; refuses a stale or
    foreign lease as the device would.  No snapshot: the crash kept no leases."""
    if snapshot is None:
        return None, 0
    key = lease.device.key
    holder = next((h for h in snapshot.holders if h.token == lease.token), None)
    if holder is None:
        raise StaleLeaseError(
            f"{key}: lease {lease.token} of {lease.owner!r} is not held "
            "(released, expired, or from before a restart)",
            device=key,
            owner=lease.owner,
            token=lease.token,
        )
    if holder.owner != lease.owner:
        raise NotOwnerError(
            f"{key}: {lease.owner!r} is not the owner of lease {lease.token}",
            device=key,
            owner=lease.owner,
        )
    holders = tuple(h for h in snapshot.holders if h is not holder)
    return attrs.evolve(snapshot, holders=holders), len(holders)
