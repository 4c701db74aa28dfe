"""A host's answers to the board calls of actorhw.cluster.board_calls: a board's status,
a fault injected, a wait for a board's or a device's state (the Runtime's calls, run on
the host)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from actorhw.cluster import wire
from actorhw.cluster.views import host_device
from actorhw.core.errors import DeviceBusyError, InvalidArgumentError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages.cluster import RemoteCall

if TYPE_CHECKING:
    from actorhw.api.runtime import Runtime
    from actorhw.cluster.config import Buckets

T = TypeVar("T")


class Host(Protocol):
    """What these answers use of the host (actorhw.cluster.host.Host)."""

    name: str
    runtime: Runtime
    _kv: Buckets | None

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...
    def _on(self, call: RemoteCall, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


#: The operations answered here.
BOARD_OPS = frozenset({"board", "fault", "wait_board", "wait_device"})


def _state(name: str) -> DeviceState:
    try:
        return DeviceState[name]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown state {name!r}; valid: {', '.join(s.name for s in DeviceState)}",
            argument="state",
        ) from None


async def _may_fault(host: Host, call: RemoteCall) -> None:
    """Refuse a fault while an owner other than the caller holds a device of the board
    (read from the leases bucket now: the host's watch may lag a fresh acquire)."""
    assert host._kv is not None
    ids = await host._run(host.runtime.ids, call.board)
    keys = [wire.lease_key(host.name, call.board, d.name) for d in ids]
    values = await asyncio.gather(*(wire.read(host._kv.leases, key) for key in keys))
    for value, _revision in values:
        if value is None:
            continue
        record = wire.record_of(value)
        others = [h for h in record.holders if h.owner != call.owner]
        if others:
            device = f"{host.name}/{call.board}.{record.device}"
            raise DeviceBusyError(
                f"{host.name}/{call.board}: no {call.name} fault while {others[0].owner} "
                f"holds {device}",
                device=device,
                owners=[h.owner for h in others],
                owners_count=len(record.holders),
                host=host.name,
                clients=[h.client for h in others],
            )


async def answer_board_call(host: Host, call: RemoteCall) -> Any:
    """The value of a board call (run on the host's Runtime, in a worker thread)."""
    rt = host.runtime
    if call.op == "board":
        return await host._run(rt.board_status, call.board, timeout=call.timeout)
    if call.op == "wait_board":
        restarts = int(call.args[0]) if call.args else 0
        return await host._run(
            rt.wait_for_board, call.board, _state(call.name), timeout=call.timeout,
            restarts=restarts,
        )  # fmt: skip
    if call.op == "wait_device":
        state = _state(call.name)
        info = await host._run(host._on, call, rt.wait_for_device, state, timeout=call.timeout)
        return host_device(info)
    if call.op == "fault":
        # an unknown board says so first
        await host._run(rt.board_status, call.board, timeout=call.timeout)
        await _may_fault(host, call)
        return await host._run(rt.inject_fault, call.board, call.name, timeout=call.timeout)
    raise InvalidArgumentError(f"unknown board operation {call.op!r}", argument="op")
