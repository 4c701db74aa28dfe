"""One crash-looping board is quarantined on its own; the root's restart intensity guards
the core services only, so healthy boards keep working (issue 13 item 3), sim boards.

Crashes are real exceptions inside the board's actor (``rt.inject_crash``).
"""

from __future__ import annotations

from typing import Any

import pytest

from actorhw import Runtime
from actorhw.api.handles import Gpio, Uart
from actorhw.core.errors import DeviceUnavailableError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardEvent
from actorhw.core.recovery import RecoveryPolicy

pytestmark = pytest.mark.timeout(60)
WAIT = 10.0
S = DeviceState
LOOPING = "same70-xplained"
HEALTHY = "microbit"


def _event(what: str, board: str, about: str = "") -> Any:
    def match(e: object) -> bool:
        return (
            isinstance(e, BoardEvent) and e.what == what and e.board == board and about in e.reason
        )

    return match


def test_a_crash_looping_board_is_quarantined_and_the_others_keep_working() -> None:
    policy = RecoveryPolicy(max_restarts=3, window=60)
    with Runtime.start([LOOPING, HEALTHY], recovery=policy) as rt:
        looping, healthy = rt.ids(LOOPING), rt.ids(HEALTHY)
        lease = rt.acquire(looping.UART0, owner="a")
        with rt.subscribe() as sub:
            # More crashes than the root's 3 in 60 s: before, the fourth stopped the tree.
            for n in range(4):
                rt.inject_crash(LOOPING, reason=f"crash {n}")
                what = "quarantined" if n == 3 else "actor_restarted"
                sub.wait_for(_event(what, LOOPING), timeout=WAIT)
        assert rt.running
        status = rt.board_status(LOOPING)
        assert status.quarantined and "crash 3" in status.reason, status
        assert status.state is S.DISCONNECTED
        with pytest.raises(DeviceUnavailableError, match="quarantined"):
            rt.inject_fault(LOOPING, "unplug")
        # The healthy board works on.
        with rt.lease(Gpio, healthy.PIN0, owner="b") as pin:
            pin.write(True)
            assert pin.read() is True
        assert rt.board_status(HEALTHY).state is S.CONNECTED
        # The quarantined board's leases can still be released.
        assert rt.release(lease) == 0
        # An operator's reset brings it back.
        status = rt.reset_board(LOOPING, timeout=WAIT)
        assert status.state is S.CONNECTED and not status.quarantined
        with rt.lease(Uart, looping.UART0, owner="c") as uart:  # not busy: released
            uart.write(b"back")


def test_a_restarted_board_keeps_its_devices_registered() -> None:
    """The crashed actor's Unregister must not undo its successor's Register: before,
    about 1 restart in 30 left the board with no devices (no_such_device for good)."""
    policy = RecoveryPolicy(max_restarts=100, window=60)
    with Runtime.start([LOOPING], recovery=policy) as rt:
        count = len(rt.devices(LOOPING))
        lost = []
        with rt.subscribe() as sub:
            for n in range(30):
                rt.inject_crash(LOOPING, reason=f"crash {n}")
                sub.wait_for(_event("actor_restarted", LOOPING, f"crash {n}"), timeout=WAIT)
                rt.wait_for_board(LOOPING, S.CONNECTED, timeout=WAIT)
                if len(rt.devices(LOOPING)) != count:
                    lost.append(n)
        assert not lost, f"devices unregistered after restarts {lost}"
