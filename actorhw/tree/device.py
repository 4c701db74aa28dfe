"""DeviceActor: one device's lifecycle and ownership, serialized by its mailbox.

Every acquire, release, open, close, use and transition of a device is a message to
its actor; the actor handles one at a time, so no lock guards device state.  A refused
request raises before anything is changed, so a refusal leaves the state as it was.
Work that may block (board I/O) is handed back to the caller as a PendingIO and never
holds the mailbox: status and ownership questions are answered while it runs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from actorhw.core.errors import (
    ActorHwError,
    AlreadyOpenedError,
    DeviceBusyError,
    DeviceResetError,
    DeviceUnavailableError,
    LinkError,
    NotOpenedError,
    NotOwnerError,
    StaleLeaseError,
    TimedOutError,
    UnsupportedOperationError,
)
from actorhw.core.events import EventBus
from actorhw.core.ids import DeviceId, DeviceKind
from actorhw.core.lifecycle import AVAILABLE, DeviceState, SharingPolicy, check_transition
from actorhw.core.log import logger
from actorhw.core.messages import (
    Acquire,
    Close,
    Crash,
    DeviceInfo,
    DeviceSnapshot,
    GetInfo,
    HeldLease,
    Inspect,
    Lease,
    Open,
    Release,
    StateChanged,
    TakeSnapshot,
    Transition,
    Use,
)
from actorhw.drivers.board_driver import OPERATIONS, PendingIO, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.tree.device_views import BY_MAILBOX, DeviceRef, UseView, fast_use, published_info
from actorhw.tree.scheduler import ScheduledActor
from actorhw.tree.supervision import SupervisedActor

__all__ = [
    "BY_MAILBOX",
    "FAULTS",
    "INSPECTABLE",
    "DeviceActor",
    "fast_use",
    "is_fault",
    "published_info",
]

#: Lease tokens are unique in the process, so a lease from before a restart is stale.
_tokens = itertools.count(1)

#: Read-only operations any runtime service may run without a lease (:class:`Inspect`).
INSPECTABLE: dict[DeviceKind, frozenset[str]] = {DeviceKind.BOARD: frozenset({"resources"})}

#: Errors of the link to the hardware: they are device faults, unlike a user's bad code.
FAULTS = (LinkError, TimedOutError)


def is_fault(error: BaseException | None) -> bool:
    """A link error, or a deadline after which the board did not answer again.

    A timeout the board recovered from at once (it answered Ctrl-C: ``resynced``) ended
    only the caller's code; the board is fine and is not recovered.
    """
    if isinstance(error, TimedOutError) and error.resynced:
        return False
    return isinstance(error, FAULTS)


@attrs.define
class _Holder:
    owner: str
    opened_generation: int | None = None


#: The holders of every device that has none (most, most of the time): shared, never
#: written (the first acquire gives the actor a dict of its own, the last release takes
#: it back), so an info or a check of an idle device reads no dict of its own (a cache
#: line per device when 2,000 are asked in turn) and 20,000 idle devices hold no dict.
_NO_HOLDERS: dict[int, _Holder] = {}


class DeviceActor(ScheduledActor, SupervisedActor):
    """The actor of one device. Construct through the board actor, not by hand."""

    # What an ask reads (the turn's checks, the dispatch, the info) held in the object
    # itself, a few cache lines, not spread through an instance dict's values: an ask
    # among 2,000 devices, whose state is out of the CPU's caches, then costs about
    # what it does among 20.  The rest stays in the instance dict.
    __slots__ = (
        "_actor_ref",
        "_device",
        "_generation",
        "_handlers",
        "_holders",
        "_kind",
        "_last_error",
        "_policy",
        "_state",
        "actor_stopped",
    )
    ref_class = DeviceRef

    def __init__(
        self,
        *,
        device: DeviceId,
        spec: DeviceSpec,
        peripheral: Peripheral,
        events: EventBus,
        on_fault: Callable[[DeviceId, ActorHwError], None] | None = None,
        restore: DeviceSnapshot | None = None,
    ) -> None:
        super().__init__()
        self._device = device
        self.label = device.key
        self._spec = spec
        self._kind = spec.kind
        self._policy: SharingPolicy = spec.policy  # fixed: no message changes it
        self._peripheral = peripheral
        self._events = events
        self._on_fault = on_fault
        self._state = DeviceState.UNKNOWN
        self._since = time.time()
        self._reason = "created"
        self._holders: dict[int, _Holder] = _NO_HOLDERS  # its own dict at the first acquire
        self._generation = 0
        self._last_error: str | None = None
        # The peripheral's operations as callables, for fast_use (made once per actor).
        self._methods = peripheral.operations() if peripheral.callers_may_perform else {}
        if restore is not None:  # the predecessor crashed: its leases carry over
            self._generation = restore.generation
            self._holders = {
                h.token: _Holder(h.owner, h.opened_generation) for h in restore.holders
            } or _NO_HOLDERS
        self._publish_info()

    # Named once for the class (see DispatchActor.methods): 20,000 devices, one table.
    methods: ClassVar[Mapping[type, Callable[[Any, Any], Any]]] = {}

    def _publish_info(self) -> DeviceInfo:
        """Publish the device's info for readers that do not queue (Runtime.devices()):
        an immutable DeviceInfo, replaced whole by each handler that changed it, so a
        reader sees one handled message's outcome or the next, never half of one."""
        info = self._info(None)
        ref: Any = self._actor_ref
        ref.published_info = info
        if self._peripheral.callers_may_perform:
            generation = self._generation
            ref.use_view = UseView(
                device=self._device,
                available=self._state in AVAILABLE,
                open_now={
                    t: h.owner
                    for t, h in self._holders.items()
                    if h.opened_generation == generation
                },
                methods=self._methods,
                watch=self._watch_pending,
                report=self._report_fault,
            )
        return info

    def snapshot(self) -> DeviceSnapshot:
        return DeviceSnapshot(
            name=self._device.name,
            holders=tuple(
                HeldLease(token=t, owner=h.owner, opened_generation=h.opened_generation)
                for t, h in self._holders.items()
            ),
            generation=self._generation,
        )

    # --- ownership -------------------------------------------------------------------

    def _acquire(self, message: Acquire) -> Lease:
        self._require_available("acquire")
        if self._policy is SharingPolicy.SINGLE and self._holders:
            owners = self._owners()
            raise DeviceBusyError(
                f"{self._device.key} is busy: SINGLE device held by {', '.join(owners)} "
                f"(owners_count={len(owners)})",
                device=self._device.key,
                owners=owners,
                owners_count=len(owners),
            )
        token = next(_tokens)
        if self._holders is _NO_HOLDERS:
            self._holders = {}
        self._holders[token] = _Holder(message.owner)
        self._publish_info()
        # Context as keywords (they reach record["extra"]), not bind(): a bound logger
        # is built even when actorhw's records are off, on every acquire and release.
        logger.debug("acquired by {}", message.owner, owner=message.owner, device=self.label)
        return Lease(
            device=self._device, owner=message.owner, token=token, generation=self._generation
        )

    def _release(self, message: Release) -> int:
        holder = self._holder(message.lease)
        del self._holders[message.lease.token]
        if holder.opened_generation is not None:
            self._after_close()
        if not self._holders:
            self._holders = _NO_HOLDERS
            # The last release puts the device back in its power-on state for reuse; a
            # failed reset must not undo a release that already happened.
            try:
                self._peripheral.reset()
            except Exception as e:
                self._last_error = f"reset after last release failed: {e}"
                logger.opt(exception=e).warning("{}", self._last_error, device=self.label)
                if isinstance(e, ActorHwError) and is_fault(e):
                    self._fault(e)
        logger.debug("released by {}", holder.owner, owner=holder.owner, device=self.label)
        self._publish_info()
        return len(self._holders)

    def _open(self, message: Open) -> DeviceInfo:
        holder = self._holder(message.lease)
        if holder.opened_generation == self._generation:
            raise AlreadyOpenedError(
                f"{self._device.key} is already opened by this lease ({holder.owner})",
                device=self._device.key,
                owner=holder.owner,
            )
        self._require_available("open")
        holder.opened_generation = self._generation
        if self._state is DeviceState.CONNECTED:
            self._move(DeviceState.ACTIVE, f"opened by {holder.owner}")
        return self._publish_info()

    def _close(self, message: Close) -> DeviceInfo:
        holder = self._holder(message.lease)
        if holder.opened_generation is None:
            raise NotOpenedError(
                f"{self._device.key}: device not opened - call open() first",
                device=self._device.key,
            )
        holder.opened_generation = None
        self._after_close()
        return self._publish_info()

    def _after_close(self) -> None:
        if self._state is DeviceState.ACTIVE and self._open_count() == 0:
            self._move(DeviceState.CONNECTED, "closed by its last user")

    def _use(self, message: Use) -> Any:
        holder = self._holder(message.lease)
        if holder.opened_generation is None:
            raise NotOpenedError(
                f"{self._device.key}: device not opened - call open() first",
                device=self._device.key,
            )
        if holder.opened_generation != self._generation:
            raise DeviceResetError(
                f"{self._device.key}: device was reset, open it again",
                device=self._device.key,
                opened_generation=holder.opened_generation,
                generation=self._generation,
            )
        self._require_available(message.op)
        if message.op not in OPERATIONS[self._spec.kind]:
            raise UnsupportedOperationError(
                f"{self._device.key} ({self._spec.kind.value}) has no operation "
                f"{message.op!r}; valid: {', '.join(sorted(OPERATIONS[self._spec.kind]))}",
                device=self._device.key,
                op=message.op,
            )
        return self._perform(message.op, message.args)

    def _inspect(self, message: Inspect) -> Any:
        """A read-only operation without a lease: no owner, no state change."""
        if message.op not in INSPECTABLE.get(self._spec.kind, frozenset()):
            raise UnsupportedOperationError(
                f"{self._device.key} ({self._spec.kind.value}): {message.op!r} needs a "
                "lease; inspectable without one: "
                + (", ".join(sorted(INSPECTABLE.get(self._spec.kind, ()))) or "nothing"),
                device=self._device.key,
                op=message.op,
            )
        self._require_available(message.op)
        return self._perform(message.op, ())

    def _perform(self, op: str, args: tuple[Any, ...]) -> Any:
        try:
            result = self._peripheral.perform(op, args)
        except FAULTS as e:
            if is_fault(e):
                self._fault(e)
            raise
        if isinstance(result, PendingIO):
            result.future.add_done_callback(self._watch_pending)
        return result

    def _watch_pending(self, future: Any) -> None:
        # Runs on the I/O thread: report faults through the mailbox, never touch state.
        if future.cancelled():  # a preempted call cancelled before it started
            return
        self._report_fault(future.exception())

    def _report_fault(self, error: BaseException | None) -> None:
        # Runs where the work ran (the I/O thread, a caller's): never touches state.
        if isinstance(error, ActorHwError) and is_fault(error) and self._on_fault is not None:
            self._on_fault(self._device, error)

    def _fault(self, error: ActorHwError) -> None:
        self._last_error = str(error)
        self._publish_info()
        if self._on_fault is not None:
            self._on_fault(self._device, error)

    # --- lifecycle -------------------------------------------------------------------

    def _transition(self, message: Transition) -> DeviceInfo:
        to, state = message.to, self._state
        if to is DeviceState.DISCONNECTED and state is DeviceState.ACTIVE:
            # A fault takes a device in use down through ERROR; decided here, in its own
            # mailbox, since a user may open or close it while the board goes down.
            self._last_error = message.reason
            self._move(DeviceState.ERROR, message.reason, message.attempt)
        elif state is DeviceState.DISCONNECTED and to is DeviceState.INITIALIZED:
            # The board lost its state: leases stay, but what they opened must be reopened.
            check_transition(self.label, state, to)
            self._generation += 1
        elif to is DeviceState.ERROR:
            check_transition(self.label, state, to)
            self._last_error = message.reason
        self._move(to, message.reason, message.attempt)
        if to is DeviceState.CONNECTED and self._holders and self._open_count():
            # Restored after a crash with leases that still have it open.
            self._move(DeviceState.ACTIVE, "still opened by its leases", message.attempt)
        return self._publish_info()

    def _move(self, to: DeviceState, reason: str, attempt: int = 0) -> None:
        was = self._state
        check_transition(self.label, was, to)  # before anything changes
        at = time.time()
        event = StateChanged(
            device=self._device, from_state=was, to_state=to, reason=reason, attempt=attempt, at=at
        )
        self._state, self._since, self._reason = to, at, reason
        was_name, now = was._name_, to._name_  # (not .name: a property, per call)
        logger.info(
            "{} -> {} ({})",
            was_name,
            now,
            reason,
            from_state=was_name,
            to_state=now,
            attempt=attempt,
            device=self.label,
        )
        self._events.publish(event)

    # --- helpers ---------------------------------------------------------------------

    def _holder(self, lease: Lease) -> _Holder:
        if lease.device is not self._device:
            raise NotOwnerError(
                f"lease of {lease.device} presented to {self._device.key}", device=self._device.key
            )
        holder = self._holders.get(lease.token)
        if holder is None:
            raise StaleLeaseError(
                f"{self._device.key}: lease {lease.token} of {lease.owner!r} is not held "
                "(released, expired, or from before a restart)",
                device=self._device.key,
                owner=lease.owner,
                token=lease.token,
            )
        if holder.owner != lease.owner:
            raise NotOwnerError(
                f"{self._device.key}: {lease.owner!r} is not the owner of lease {lease.token}",
                device=self._device.key,
                owner=lease.owner,
            )
        return holder

    def _require_available(self, what: str) -> None:
        if self._state not in AVAILABLE:
            raise DeviceUnavailableError(
                f"{self._device.key} cannot {what}: it is {self._state.name} since "
                f"{time.strftime('%H:%M:%S', time.localtime(self._since))} ({self._reason})",
                device=self._device.key,
                state=self._state.name,
                reason=self._reason,
                since=self._since,
            )

    def _owners(self) -> tuple[str, ...]:
        if not self._holders:  # most devices, most of the time (a generator costs)
            return ()
        return tuple(h.owner for h in self._holders.values())

    def _open_count(self) -> int:
        if not self._holders:
            return 0
        return sum(1 for h in self._holders.values() if h.opened_generation == self._generation)

    def _info(self, _message: GetInfo | None) -> DeviceInfo:
        holders = self._holders
        return DeviceInfo(
            device=self._device,
            kind=self._kind,
            state=self._state,
            policy=self._policy,
            owners=self._owners() if holders else (),
            owners_count=len(holders),
            open_count=self._open_count() if holders else 0,
            generation=self._generation,
            last_error=self._last_error,
        )


DeviceActor.methods = {
    Acquire: DeviceActor._acquire,
    Release: DeviceActor._release,
    Open: DeviceActor._open,
    Close: DeviceActor._close,
    Use: DeviceActor._use,
    Inspect: DeviceActor._inspect,
    GetInfo: DeviceActor._info,
    Transition: DeviceActor._transition,
    Crash: lambda actor, m: actor.crash(m.reason),
    TakeSnapshot: lambda actor, _m: actor.snapshot(),
}
