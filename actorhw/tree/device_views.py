"""What a device actor publishes on its ref, and the readers of it that do not queue.

A device actor replaces, after each message that changed it, an immutable DeviceInfo
(`published_info`: `Runtime.devices()` lists 20,000 devices without 20,000 asks) and,
for a peripheral that lets callers perform, a `UseView` (`fast_use`: an opened lease's
operation as a function call in the caller's thread).  Ownership and lifecycle stay
the actor's: these are reads of what it published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from actorhw.core.ids import DeviceId
from actorhw.core.messages import DeviceInfo, Lease
from actorhw.drivers.board_driver import PendingIO
from actorhw.drivers.io_lane import TURN
from actorhw.tree.scheduler import ScheduledRef


class DeviceRef(ScheduledRef):
    """A device actor's ref, with what the actor publishes for readers that do not queue
    (see DeviceActor._publish_info)."""

    __slots__ = ("published_info", "use_view")


def published_info(ref: Any) -> DeviceInfo | None:
    """The info a running device actor last published, without asking it (None: not a
    device actor, or not running)."""
    info = getattr(ref, "published_info", None)
    return info if isinstance(info, DeviceInfo) and ref.is_alive() else None


@attrs.frozen(kw_only=True)
class UseView:
    """What a caller's thread needs to perform an operation without the mailbox: the
    device's leases and state as its actor last published them (immutable)."""

    device: DeviceId
    available: bool
    open_now: dict[int, str]
    """token -> owner of the leases that have the device open in this generation."""
    methods: Mapping[str, Callable[..., Any]]
    """The peripheral's operations (`Peripheral.operations`)."""
    watch: Callable[[Any], None]
    report: Callable[[BaseException | None], None]


#: fast_use found a reason to go through the mailbox (which answers it properly).
BY_MAILBOX: Any = object()


def fast_use(
    ref: Any,
    lease: Lease,
    op: str,
    args: tuple[Any, ...],
    *,
    run_here: bool = True,
    deadline: float | None = None,
) -> Any:
    """Perform ``op`` for ``lease`` in the caller's thread when the device's peripheral
    allows it (``callers_may_perform``) and the published view says the lease has the
    device open in this generation and the device is available: a function call
    instead of two thread hops; and when the board's I/O lane is idle the caller runs
    the exchange itself (:func:`~actorhw.drivers.io_lane.in_callers_turn`), with no hop
    to the I/O thread either (unless ``run_here`` is False: a call that may be preempted
    is left on the I/O thread, where a preemption can still cancel it before it
    starts).  ``deadline`` is the caller's: the peripheral's exchanges take their
    timeouts from it (:func:`~actorhw.drivers.io_lane.op_timeout`).  Anything else, a
    refusal or an error of the
    peripheral included, answers :data:`BY_MAILBOX`, and the caller asks the device
    actor, which performs (or refuses) it with its usual errors and fault handling.
    Ownership and lifecycle stay the actor's: only a read of what it published."""
    view = getattr(ref, "use_view", None)
    if (
        view is None
        or lease.device is not view.device
        or not view.available
        or view.open_now.get(lease.token) != lease.owner
        or ref.actor_stopped.is_set()  # not is_alive()
    ):
        return BY_MAILBOX
    method = view.methods.get(op)
    if method is None:
        return BY_MAILBOX
    turn = TURN
    before, was = turn.here, turn.deadline
    try:
        # in_callers_turn(method, args), inline (one call less), with the deadline
        turn.here, turn.deadline = run_here, deadline
        try:
            result = method(*args)
        finally:
            turn.here, turn.deadline = before, was
    except Exception:
        return BY_MAILBOX  # nothing was submitted: the actor performs it, and judges
    if isinstance(result, PendingIO):
        if result.ran_here:
            if result.error is not None:
                view.report(result.error)
        else:
            result.future.add_done_callback(view.watch)
    return result
