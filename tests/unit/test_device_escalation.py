"""A device actor's restart loses no release; one past its intensity is quarantined
(issue 13 items 1 and 2), on simulated boards.

Crashes are real exceptions inside the device's actor (``rt.inject_crash``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actorhw import Runtime
from actorhw.api.handles import Led, Uart
from actorhw.core.errors import DeviceUnavailableError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardEvent
from actorhw.core.recovery import RecoveryPolicy

pytestmark = pytest.mark.timeout(60)
WAIT = 10.0
S = DeviceState
BOARD = "same70-xplained"


def _event(what: str, board: str = BOARD, about: str = "") -> Any:
    def match(e: object) -> bool:
        return (
            isinstance(e, BoardEvent) and e.what == what and e.board == board and about in e.reason
        )

    return match


@pytest.fixture
def rt() -> Iterator[Runtime]:
    policy = RecoveryPolicy(max_restarts=2, window=60)
    with Runtime.start(boards=[BOARD, "microbit"], recovery=policy) as rt:
        yield rt


def test_a_release_right_after_a_device_actor_crashed_is_not_lost() -> None:
    """Released in the restart's window: the release is applied, the next owner gets it."""
    with Runtime.start([BOARD], recovery=RecoveryPolicy(max_restarts=100, window=60)) as rt:
        uart0 = rt.ids(BOARD).UART0  # a SINGLE device: a leaked lease makes it busy
        with rt.subscribe() as sub:
            for n in range(20):
                lease = rt.acquire(uart0, owner=f"a{n}")
                rt.inject_crash(uart0, reason=f"crash {n}")
                assert rt.release(lease) == 0
                sub.wait_for(_event("actor_restarted", about=f"crash {n}"), timeout=WAIT)
                assert rt.info(uart0).owners == ()
                rt.release(rt.acquire(uart0, owner=f"b{n}"))  # not busy


def test_a_device_past_its_intensity_is_quarantined_and_an_operator_reset_revives_it(
    rt: Runtime,
) -> None:
    ids = rt.ids(BOARD)
    lease = rt.acquire(ids.UART0, owner="a")
    with rt.subscribe() as sub:
        for n in range(2):  # two restarts are allowed; the third crash escalates
            rt.inject_crash(ids.UART0, reason=f"crash {n}")
            sub.wait_for(_event("actor_restarted", about=f"crash {n}"), timeout=WAIT)
        rt.inject_crash(ids.UART0, reason="crash 2")
        quarantined = sub.wait_for(_event("quarantined", about="UART0"), timeout=WAIT)
    assert "crash 2" in quarantined.reason
    status = rt.board_status(BOARD)
    assert status.quarantined and status.quarantined_devices == ("UART0",), status
    assert "UART0" in status.reason
    # The device says so; it takes no new work, but its lease can be released.
    info = rt.info(ids.UART0)
    assert info.state is S.DISCONNECTED and info.owners == ("a",)
    with pytest.raises(DeviceUnavailableError, match="quarantined"):
        rt.acquire(ids.UART0, owner="b")
    assert rt.release(lease) == 0
    # The board's other devices, and the other board, keep working.
    with rt.lease(Led, ids.LED_GREEN, owner="c") as led:
        led.on()
    assert rt.board_status("microbit").state is S.CONNECTED
    # An operator's reset brings it back, with a fresh restart budget.
    status = rt.reset_board(BOARD, timeout=WAIT)
    assert not status.quarantined and status.quarantined_devices == ()
    assert status.state is S.CONNECTED
    with rt.lease(Uart, ids.UART0, owner="d") as uart:
        uart.write(b"back")
    with rt.subscribe() as sub:
        rt.inject_crash(ids.UART0, reason="after the reset")
        sub.wait_for(_event("actor_restarted", about="after the reset"), timeout=WAIT)


def test_a_release_of_a_device_whose_quarantined_actor_crashed_again(rt: Runtime) -> None:
    """A quarantined device that crashes again stays down; its leases still release."""
    ids = rt.ids(BOARD)
    lease = rt.acquire(ids.UART0, owner="a")
    with rt.subscribe() as sub:
        for n in range(3):
            rt.inject_crash(ids.UART0, reason=f"crash {n}")
            what = "quarantined" if n == 2 else "actor_restarted"
            sub.wait_for(_event(what, about="UART0"), timeout=WAIT)
        rt.inject_crash(ids.UART0, reason="crash while quarantined")
        sub.wait_for(_event("actor_crashed", about="crash while quarantined"), timeout=WAIT)
    assert rt.release(lease) == 0
    assert rt.reset_board(BOARD, timeout=WAIT).quarantined_devices == ()
    assert rt.info(ids.UART0).owners == ()
    rt.release(rt.acquire(ids.UART0, owner="b"))


def test_a_session_ending_while_its_device_actor_restarts_releases_it_when_back() -> None:
    """The monitor keeps a session's release its device's actor could not take and
    applies it once the actor is back (at its next tick, or a reap)."""
    with Runtime.start([BOARD], recovery=RecoveryPolicy(max_restarts=100, window=60)) as rt:
        uart0 = rt.ids(BOARD).UART0
        with rt.subscribe() as sub:
            session = rt.session("s", watch_thread=False)
            session.acquire(uart0)
            rt.inject_crash(uart0, reason="as the session ends")
            session.end()
            sub.wait_for(_event("actor_restarted", about="as the session ends"), timeout=WAIT)
        rt.monitor.reap_sessions()  # a tick does the same within 0.25 s
        assert rt.info(uart0).owners == ()
        rt.release(rt.acquire(uart0, owner="next"))
