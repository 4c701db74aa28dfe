"""A job whose work is Steps, run over devices of many hosts in a few round trips.

Every device is leased at once (the leases bucket's creates in flight together), each
host gets one request with the steps and its devices' lease tokens and runs them next
to its boards (its devices at once), the hosts all at the same time, and every lease
is released at once after.  Fencing is as for any request: the host opens each device
only for a current token and checks it again before every step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from actorhw.api.jobs import JobResult, TargetResult
from actorhw.api.steps import Steps
from actorhw.cluster import wire
from actorhw.cluster.views import split_board
from actorhw.core.errors import ActorHwError, JobTargetError
from actorhw.core.ids import DeviceId
from actorhw.core.messages import Lease
from actorhw.core.messages.cluster import RemoteCall, RemoteReply, RemoteTarget

if TYPE_CHECKING:
    from actorhw.cluster.client import AsyncCluster


async def run_steps(
    cl: AsyncCluster,
    devices: Sequence[DeviceId],
    steps: Steps,
    *,
    owner: str,
    timeout: float,
    name: str,
) -> JobResult[DeviceId, list[Any]]:
    """Run ``steps`` on every device (see the module's doc); one result per device, in
    order, a typed error for each that failed."""
    started = time.monotonic()
    results: dict[int, TargetResult[DeviceId, list[Any]]] = {}
    acquired = await asyncio.gather(
        *(cl.acquire(d, owner=owner, timeout=timeout) for d in devices), return_exceptions=True
    )
    by_host: dict[str, list[tuple[int, Lease]]] = {}
    for i, (device, got) in enumerate(zip(devices, acquired, strict=True)):
        if isinstance(got, Lease):
            by_host.setdefault(split_board(type(device).board)[0], []).append((i, got))
        else:
            results[i] = TargetResult(target=device, error=_typed(got, device))

    async def on_host(host: str, items: list[tuple[int, Lease]]) -> None:
        targets = tuple(
            RemoteTarget(
                board=split_board(type(lease.device).board)[1],
                device=lease.device.name,
                token=lease.token,
            )
            for _i, lease in items
        )
        call = RemoteCall(
            op="steps", owner=owner, timeout=timeout, targets=targets, steps=steps.steps
        )
        try:
            replies = await cl._request(host, call, f"{host}: job {name}")
        except ActorHwError as e:
            for i, lease in items:
                results[i] = TargetResult(target=lease.device, error=e)
            return
        elapsed = time.monotonic() - started
        for (i, lease), reply in zip(items, replies, strict=True):
            try:
                value = wire.raise_reply(wire.structure(reply, RemoteReply))
                results[i] = TargetResult(target=lease.device, value=value, elapsed=elapsed)
            except ActorHwError as e:
                results[i] = TargetResult(target=lease.device, error=e, elapsed=elapsed)

    try:
        await asyncio.gather(*(on_host(host, items) for host, items in by_host.items()))
    finally:
        leases = [lease for items in by_host.values() for _i, lease in items]
        await asyncio.gather(
            *(cl.release(lease, timeout=timeout) for lease in leases), return_exceptions=True
        )
    return JobResult(job=name, results=tuple(results[i] for i in range(len(devices))))


def _typed(error: BaseException, device: DeviceId) -> ActorHwError:
    if isinstance(error, ActorHwError):
        return error
    if not isinstance(error, Exception):
        raise error  # a cancellation or an interrupt: not a target's failure
    return JobTargetError(
        f"{device.key}: {type(error).__name__}: {error}",
        target=device.key,
        exc_type=type(error).__name__,
    )
