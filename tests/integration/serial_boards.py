"""Boards on serial ports for the tests: the MicroPython unix port behind socat ptys.

The ``unix_boards`` fixture (tests/integration/conftest.py) hands out :class:`UnixBoard`
objects.  When socat or the firmware is missing it FAILS with the reason: these tests
are never skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from tests import unix_port

HOOK = Path(unix_port.__file__).resolve()


@attrs.define
class UnixBoard:
    """One unix-port firmware on a pty at ``path``; ``pid`` is socat's."""

    path: Path
    pidfile: Path
    heap: str
    ctty: bool
    onlcr: bool = True

    @property
    def pid(self) -> int:
        return int(self.pidfile.read_text())

    def kill(self) -> None:
        """Pull the cable: the firmware and its pty are gone, and so is the path (as an
        unplugged board's device node is; socat killed cannot remove its link, which
        would lead to the next pty given the same number)."""
        if self.pidfile.exists():
            unix_port.kill(self.pid)
            self.pidfile.unlink()
        self.path.unlink(missing_ok=True)

    def start(self, path: Path | None = None) -> None:
        """Plug it (back) in, at ``path`` if given (a new path, as after a replug)."""
        if path is not None:
            self.path = path
        pid = unix_port.start(self.path, heap=self.heap, ctty=self.ctty, onlcr=self.onlcr)
        self.pidfile.write_text(str(pid))

    @property
    def power_hook(self) -> list[str]:
        """A power hook that restarts this firmware on its path."""
        mode = "ctty" if self.ctty else "noctty"
        nl = "onlcr" if self.onlcr else "noonlcr"
        # -S: no site-packages to scan at start-up (the hook needs the stdlib only).
        return [
            sys.executable, "-S", str(HOOK), str(self.path), str(self.pidfile), self.heap, mode, nl
        ]  # fmt: skip


UnixBoardFactory = Callable[..., UnixBoard]


def unix_boards_in(tmp_path: Path) -> Iterator[UnixBoardFactory]:
    """Start unix-port boards (``make(heap="64K", ctty=True)``); all killed after."""
    reason = unix_port.unavailable()
    if reason is not None:
        pytest.fail(f"the MicroPython unix port is required for this test: {reason}", pytrace=False)
    made: list[UnixBoard] = []

    def make(*, heap: str = "64K", ctty: bool = True, onlcr: bool = True) -> UnixBoard:
        n = len(made)
        board = UnixBoard(
            path=tmp_path / f"ttyMP{n}",
            pidfile=tmp_path / f"mp{n}.pid",
            heap=heap,
            ctty=ctty,
            onlcr=onlcr,
        )
        board.start()
        made.append(board)
        return board

    try:
        yield make
    finally:
        for board in made:
            board.kill()
