"""A job whose work is Steps, run over devices of many hosts in a few round trips.

Every device is leased at once (the leases bucket's creates in flight together), each
host gets one request with the steps and its devices' lease tokens and runs them next
to its boards (its devices at once), the hosts all at the same time, and every lease
is released at once after.  Fencing is as for any request: the host opens each device
only for a current token and checks it again before every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from actorhw.api.jobs import JobResult, TargetResult
from actorhw.api.steps import Steps
from actorhw.cluster import wire
from actorhw.cluster.direct import SLOW, DirectCalls
from actorhw.cluster.views import split_board
from actorhw.core.errors import ActorHwError, JobTargetError
from actorhw.core.ids import DeviceId
from actorhw.core.messages import Lease
from actorhw.core.messages.cluster import RemoteCall, RemoteReply, RemoteTarget

if TYPE_CHECKING:
    from actorhw.cluster.client import AsyncCluster

T = TypeVar("T")


class Cluster(Protocol):
    """What a blocking job needs of its cluster (actorhw.cluster.sync.Cluster), named
    here so that the cluster may import this module without an import cycle."""

    @property
    def aio(self) -> AsyncCluster: ...

    def acquire(
        self, device: DeviceId, *, owner: str | None = ..., timeout: float = ...
    ) -> Lease: ...

    def release(self, lease: Lease, *, timeout: float = ...) -> int: ...

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T: ...


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
        call = _steps_call(items, steps, owner, timeout)
        try:
            replies: Any = await cl._request(host, call, f"{host}: job {name}")
        except ActorHwError as e:
            replies = e
        _record(results, items, replies, time.monotonic() - started)

    try:
        await asyncio.gather(*(on_host(host, items) for host, items in by_host.items()))
    finally:
        leases = [lease for items in by_host.values() for _i, lease in items]
        await asyncio.gather(
            *(cl.release(lease, timeout=timeout) for lease in leases), return_exceptions=True
        )
    return JobResult(job=name, results=tuple(results[i] for i in range(len(devices))))


def _steps_call(
    items: list[tuple[int, Lease]], steps: Steps, owner: str, timeout: float
) -> RemoteCall:
    """One host's request: the steps, and its devices with their lease tokens."""
    targets = tuple(
        RemoteTarget(
            board=split_board(type(lease.device).board)[1],
            device=lease.device.name,
            token=lease.token,
        )
        for _i, lease in items
    )
    return RemoteCall(op="steps", owner=owner, timeout=timeout, targets=targets, steps=steps.steps)


def _record(
    results: dict[int, TargetResult[DeviceId, list[Any]]],
    items: list[tuple[int, Lease]],
    replies: Any,
    elapsed: float,
) -> None:
    """One host's answer (a reply per target, or the error that stopped them all)."""
    if isinstance(replies, BaseException):
        error = replies if isinstance(replies, ActorHwError) else ActorHwError(repr(replies))
        for i, lease in items:
            results[i] = TargetResult(target=lease.device, error=error, elapsed=elapsed)
        return
    for (i, lease), reply in zip(items, replies, strict=True):
        try:
            value = wire.raise_reply(wire.structure(reply, RemoteReply))
            results[i] = TargetResult(target=lease.device, value=value, elapsed=elapsed)
        except ActorHwError as e:
            results[i] = TargetResult(target=lease.device, error=e, elapsed=elapsed)


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


def run_steps_blocking(
    cluster: Cluster,
    direct: DirectCalls,
    devices: Sequence[DeviceId],
    steps: Steps,
    *,
    owner: str,
    timeout: float,
    name: str,
) -> JobResult[DeviceId, list[Any]]:
    """`run_steps` from a blocking caller's thread, on its blocking connection: every
    create in one write, every host's request in one write, every delete in one write
    (each pipelined); whatever that connection cannot do takes the full path."""
    started = time.monotonic()
    results: dict[int, TargetResult[DeviceId, list[Any]]] = {}
    by_host: dict[str, list[tuple[int, Lease]]] = {}
    for i, (device, got) in enumerate(
        zip(devices, direct.acquire_many(list(devices), owner=owner, timeout=timeout), strict=True)
    ):
        if got is SLOW:
            try:
                got = cluster.acquire(device, owner=owner, timeout=timeout)
            except ActorHwError as e:
                got = e
        if isinstance(got, Lease):
            by_host.setdefault(split_board(type(device).board)[0], []).append((i, got))
        else:
            results[i] = TargetResult(target=device, error=_typed(got, device))
    try:
        calls = [
            (host, _steps_call(items, steps, owner, timeout)) for host, items in by_host.items()
        ]
        for (host, call), answer in zip(calls, direct.call_many(calls, timeout), strict=True):
            if answer is SLOW:
                try:
                    answer = cluster._run(
                        cluster.aio._request(host, call, f"{host}: job {name}"), timeout + 4
                    )
                except ActorHwError as e:
                    answer = e
            _record(results, by_host[host], answer, time.monotonic() - started)
    finally:
        leases = [lease for items in by_host.values() for _i, lease in items]
        for lease, left in zip(leases, direct.release_many(leases, timeout=timeout), strict=True):
            if left is SLOW:
                with contextlib.suppress(ActorHwError):
                    cluster.release(lease, timeout=timeout)
    return JobResult(job=name, results=tuple(results[i] for i in range(len(devices))))
