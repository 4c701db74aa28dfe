"""The awaitable facade cannot drift: every public Runtime method has an awaitable twin
with at least its parameters, and AsyncRuntime.start calls Runtime.start (no copy)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from actorhw import DeviceState, Runtime
from actorhw.api.aio import AsyncRuntime
from actorhw.api.aio_calls import Twin
from actorhw.core.errors import InvalidArgumentError
from actorhw.core.messages import BoardStatus

pytestmark = pytest.mark.timeout(30)

#: Public Runtime members with no awaitable twin, and why.
NO_TWIN = {
    "get": "a handle's calls block; AsyncRuntime.lease gives the awaitable device",
    "session": "a Session's calls block; asyncio services hold leases with AsyncRuntime.lease",
    "limiter": "a property holding the limiter's facade, not a method",
    "monitor": "a property holding the monitor's facade, not a method",
    "manager": "a property holding the device manager, not a method",
    "start_use": "never blocks already: it starts an operation (AsyncRuntime.use awaits one)",
    "info_now": "never blocks already: AsyncRuntime.info calls it in the loop's thread",
}
#: Parameters a hand-written twin leaves out on purpose, and why.
LEFT_OUT = {"lease": {"kind": "an AsyncLease serves every kind of device"}}
#: Twins that are not coroutine functions: what they return is awaited or entered.
NOT_COROUTINES = {
    "start": "returns an awaitable that is also an async context manager",
    "lease": "an async context manager",
    "subscribe": "an async subscription",
    "stream": "an async subscription",
    "on_stop": "registers a plain callback; nothing to wait for",
    "running": "a property",
}


def _public(cls: type) -> dict[str, Any]:
    """Public members of ``cls`` and its bases (Runtime is assembled from parts)."""
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):  # object left out; nearer classes win
        members.update((n, v) for n, v in vars(klass).items() if not n.startswith("_"))
    return members


def _params(func: Any) -> set[str]:
    return {n for n in inspect.signature(func).parameters if n not in ("self", "cls")}


def test_every_public_runtime_method_has_an_awaitable_twin() -> None:
    twins = _public(AsyncRuntime)
    missing = sorted(set(_public(Runtime)) - set(twins) - set(NO_TWIN))
    assert not missing, f"Runtime methods with no awaitable twin: {missing}"
    assert not set(NO_TWIN) & set(twins), "a twin exists now: take it off NO_TWIN"
    for name, member in _public(Runtime).items():
        if name in NO_TWIN or isinstance(member, property):
            continue
        twin = twins[name]
        if isinstance(twin, Twin):
            assert twin.method is member, name  # the very method, so the same parameters
            assert inspect.iscoroutinefunction(getattr(_facade(), name)), name
            continue
        method = member.__func__ if isinstance(member, classmethod) else member
        left_out = set(LEFT_OUT.get(name, {}))
        lacking = _params(method) - _params(getattr(AsyncRuntime, name)) - left_out
        assert not lacking, f"AsyncRuntime.{name} lacks parameters {sorted(lacking)}"
        assert name in NOT_COROUTINES or inspect.iscoroutinefunction(twin), name


def _facade() -> Any:
    """An AsyncRuntime shell, enough to bind twins (nothing runs)."""
    return object.__new__(AsyncRuntime)


def test_start_calls_runtime_start_with_its_very_parameters() -> None:
    assert inspect.signature(AsyncRuntime.start) == inspect.signature(Runtime.start)
    assert vars(AsyncRuntime)["start"]._start == Runtime.start
    with pytest.raises(TypeError):
        AsyncRuntime.start(no_such_option=1)  # type: ignore[call-arg]
    with pytest.raises(InvalidArgumentError, match="timeout"):
        AsyncRuntime.start(timeout=0)


def test_the_new_twins_answer_as_runtime_does() -> None:
    async def main() -> None:
        async with AsyncRuntime.start(["microbit"], timeout=10) as art:
            status = await art.board_status("microbit")
            assert isinstance(status, BoardStatus) and status.state is DeviceState.CONNECTED
            (added,) = await art.add_boards(["same70-xplained"], timeout=10)
            assert added.board == "same70-xplained" and added.state is DeviceState.CONNECTED
            name = await art.attach_board("microbit", name="spare")
            assert name == "spare"
            up = await art.wait_for_board("microbit", DeviceState.CONNECTED, timeout=5)
            assert up.board == "microbit"
            await art.set_connect_script("microbit", "k", (), timeout=1)
            assert (await art.reset_board("microbit", timeout=10)).state is DeviceState.CONNECTED
            with pytest.raises(InvalidArgumentError, match="timeout"):
                await art.board_status("microbit", timeout=-1)

    asyncio.run(asyncio.wait_for(main(), 25))
