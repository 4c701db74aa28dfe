"""All-or-nothing acquire: several devices leased together in one global order, so two
callers never deadlock; `holding()` releases them all on the way out.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from actorhw.core.errors import (
    ActorHwError,
    DeviceBusyError,
    InvalidArgumentError,
    TimedOutError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.log import logger
from actorhw.core.messages import Lease

if TYPE_CHECKING:
    from actorhw.api.runtime import Runtime


def global_order(devices: Sequence[DeviceId]) -> list[DeviceId]:
    """``devices`` in the one order every multi-device acquire takes them."""
    return sorted(set(devices), key=lambda d: (type(d).board, d.name))


@attrs.frozen
class LeaseSet:
    """Leases of several devices taken together; release them together."""

    leases: Mapping[DeviceId, Lease]
    """Each device's lease."""

    def __getitem__(self, device: DeviceId) -> Lease:
        return self.leases[device]


def acquire_all(
    runtime: Runtime,
    devices: Sequence[DeviceId],
    *,
    owner: str,
    timeout: float = 10.0,
    retry_interval: float = 0.005,
) -> LeaseSet:
    """Acquire every device of ``devices`` or none, in `global_order()`.

    A busy device is retried (with a short jittered pause, the earlier ones kept)
    until ``timeout``; because every caller takes devices in the same order, the one
    holding the lowest contested device always gets the rest, and no two callers wait on
    each other in a cycle.

    Raises:
        TimedOutError: a device stayed busy until the deadline; nothing is held (the
            busy device's error is the cause).
        ActorHwError: any other failure of an acquire; nothing is held.
    """
    if not devices:
        raise InvalidArgumentError("acquire_all needs at least one device", argument="devices")
    deadline = time.monotonic() + timeout
    held: dict[DeviceId, Lease] = {}
    pause = threading.Event()  # never set: a deadline-bound pause, not a sleep loop
    try:
        for device in global_order(devices):
            while True:
                left = deadline - time.monotonic()
                try:
                    held[device] = runtime.acquire(device, owner=owner, timeout=max(0.1, left))
                    break
                except DeviceBusyError as e:
                    if left <= 0:
                        raise TimedOutError(
                            f"{owner}: {device.key} stayed busy for {timeout:.3g} s "
                            f"(held by {', '.join(e.owners or ('?',))})",
                            device=device.key,
                            timeout=timeout,
                        ) from e
                    pause.wait(min(left, retry_interval * (1 + random.random())))
    except BaseException:
        release_all(runtime, LeaseSet(held))
        raise
    return LeaseSet(held)


def release_all(runtime: Runtime, leases: LeaseSet, *, timeout: float = 5.0) -> None:
    """Release every lease of ``leases``, in reverse global order; errors are logged."""
    for device in reversed(global_order(list(leases.leases))):
        try:
            runtime.release(leases.leases[device], timeout=timeout)
        except ActorHwError as e:
            logger.warning("release of {} failed: {}", device.key, e)


@contextlib.contextmanager
def holding(
    runtime: Runtime, devices: Sequence[DeviceId], *, owner: str, timeout: float = 10.0
) -> Iterator[LeaseSet]:
    """[`acquire_all()`][actorhw.api.jobs.acquire_all] as a context manager that releases them all
    on exit."""
    leases = acquire_all(runtime, devices, owner=owner, timeout=timeout)
    try:
        yield leases
    finally:
        release_all(runtime, leases)
