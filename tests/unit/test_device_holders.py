"""Devices that nobody holds share one empty holders table (never written): an acquire
gives the actor a table of its own, the last release hands the shared one back, and a
crash-restart with no leases keeps sharing it.  No device's leases leak into another's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actorhw import Runtime
from actorhw.api.handles import Uart
from actorhw.core.errors import DeviceBusyError
from actorhw.core.messages import BoardEvent
from actorhw.tree import device as device_module

BOARD = "same70-xplained"


@pytest.fixture
def rt() -> Iterator[Runtime]:
    with Runtime.start(boards=[BOARD]) as rt:
        yield rt


def _holders(rt: Runtime, device: object) -> object:
    ref = rt._route(device, timeout=5.0)[1]  # type: ignore[arg-type]
    return ref.actor_inbox._actor._holders


def test_idle_devices_share_the_empty_table_and_leases_stay_their_own(rt: Runtime) -> None:
    ids = rt.ids(BOARD)
    shared = device_module._NO_HOLDERS
    assert _holders(rt, ids.UART0) is shared and _holders(rt, ids.UART1) is shared
    first = rt.acquire(ids.UART0, owner="a")
    assert _holders(rt, ids.UART0) is not shared
    assert shared == {}  # the shared table was not written
    assert rt.info(ids.UART1).owners == () and rt.info(ids.UART1).owners_count == 0
    with pytest.raises(DeviceBusyError):  # SINGLE: its own table says it is held
        rt.acquire(ids.UART0, owner="b")
    assert rt.info(ids.UART0).owners == ("a",)
    rt.release(first)
    assert _holders(rt, ids.UART0) is shared and shared == {}
    assert rt.info(ids.UART0).owners_count == 0
    again = rt.acquire(ids.UART0, owner="c")  # a table of its own once more
    assert rt.info(ids.UART0).owners == ("c",) and shared == {}
    rt.release(again)


def test_a_restarted_device_keeps_its_leases_or_shares_the_empty_table(rt: Runtime) -> None:
    ids = rt.ids(BOARD)
    with rt.subscribe() as events:
        uart = rt.lease(Uart, ids.UART0, owner="a")
        rt.inject_crash(ids.UART0, reason="bug")
        rt.inject_crash(ids.UART1, reason="bug")
        for _ in range(2):
            events.wait_for(
                lambda e: isinstance(e, BoardEvent) and e.what == "actor_restarted", timeout=5.0
            )
    assert rt.info(ids.UART0).owners == ("a",)
    assert _holders(rt, ids.UART1) is device_module._NO_HOLDERS
    uart.close()
    uart.release()
    assert _holders(rt, ids.UART0) is device_module._NO_HOLDERS == {}
