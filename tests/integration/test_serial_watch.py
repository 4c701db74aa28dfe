"""An unplugged serial board is noticed with nobody using it, and without a byte sent.

The boards are the MicroPython unix port behind socat ptys: killing socat and the
firmware is pulling the cable (the kernel hangs the pty up, its path goes).  The
link's ``gone`` check and the driver's ``check`` (the board watch's I/O-free look)
must see it; the board's probe is off, so no exchange can be what noticed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from actorhw import Runtime
from actorhw.api.runtime import BoardSpec
from actorhw.core.errors import LinkLostError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardEvent
from actorhw.core.recovery import RecoveryPolicy
from actorhw.links import RawReplLink
from tests.integration.serial_boards import UnixBoardFactory

pytestmark = pytest.mark.timeout(90)
#: A pulled cable is noticed within this many seconds (the watch looks every 0.25 s).
NOTICED_WITHIN = 1.0


def test_the_link_sees_an_unplugged_board_gone_without_io(unix_boards: UnixBoardFactory) -> None:
    b = unix_boards()
    with RawReplLink.open(str(b.path), timeout=10, name="mp") as link:
        assert link.exec(b"print(6*7)", timeout=5).stdout.strip() == b"42"
        assert link.gone() is None
        b.kill()
        reason = link.gone()
        assert reason is not None
        assert "mp" in reason and "hung up" in reason, reason
        assert not link.lost  # the check itself never marks or touches the link
        with pytest.raises(LinkLostError):
            link.exec(b"print(1)", timeout=2)
        assert link.gone() == "link to mp was lost"
    assert link.gone() == "link to mp is closed"


def test_an_unplugged_idle_board_is_noticed_by_the_watch_without_an_exchange(
    unix_boards: UnixBoardFactory,
) -> None:
    b = unix_boards()
    spec = BoardSpec("micropython", "mp", port=str(b.path))
    policy = RecoveryPolicy(probe_every=0, min_backoff=0.1, max_backoff=0.5, jitter=0.0)
    with Runtime.start(boards=[spec], recovery=policy) as rt, rt.subscribe() as events:
        rt.wait_for_board("mp", DeviceState.CONNECTED, timeout=10)
        b.kill()  # nobody uses the board, and its probe is off
        killed = time.monotonic()
        fault: Any = events.wait_for(
            lambda e: isinstance(e, BoardEvent) and e.board == "mp" and e.what == "fault",
            timeout=NOTICED_WITHIN + 1,
        )
        took = time.monotonic() - killed
        print(f"\nunplugged board noticed after {took:.3f} s: {fault.reason}")
        assert took < NOTICED_WITHIN
        assert "mp" in fault.reason and ("hung up" in fault.reason or "no longer" in fault.reason)
        # Plugged in again, it is found and reconnected by the recovery.  (The new
        # firmware's path appears once it is ready: a Ctrl-C before its first prompt
        # would end the unix port, not a real board.)
        path = b.path
        b.start(path.with_name("ttyMP-booting"))
        b.path.rename(path)
        b.path = path
        status = rt.wait_for_board("mp", DeviceState.CONNECTED, timeout=30, restarts=1)
        assert not status.quarantined
