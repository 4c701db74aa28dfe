"""Waking a reader of a pseudo-terminal once a number of bytes is there (its VMIN).

A board behind a pty (QEMU's emulated UART, a unix-port MicroPython under socat) sends
its answers a byte or a few at a time, and every arrival wakes whoever waits on the
terminal (and the kernel's worker that moves the bytes): on an otherwise idle host
those wake-ups cost more CPU than the exchange itself.  In non-canonical mode with no
inter-byte timer (VTIME 0), ``poll``/``select`` on a Linux terminal report it readable
only once VMIN bytes are there, so a reader that knows how many must still come can
sleep until they are: :class:`VminGate` sets VMIN for that and puts it back after.

Only for Linux pseudo-terminals (the layout of ``struct termios`` written here is
checked against ``termios.tcgetattr`` first): a USB serial driver may reprogram its
chip on every settings change, and USB boards deliver their bytes in packets anyway.

This module imports nothing of actorhw.
"""

from __future__ import annotations

import fcntl
import os
import sys
import termios
from typing import Final

__all__ = ["VminGate", "pty_gate"]

_TCGETS: Final[int] = getattr(termios, "TCGETS", 0)
_TCSETS: Final[int] = getattr(termios, "TCSETS", 0)
_CC_AT: Final = 17
"""Where ``c_cc`` starts in Linux's ``struct termios`` (four flags and ``c_line``)."""
_VMIN_AT: Final = _CC_AT + termios.VMIN
_VTIME_AT: Final = _CC_AT + termios.VTIME
_SIZE: Final = 64
"""Bytes handed to TCGETS (more than any ``struct termios``)."""
_PTY_MAJORS: Final = range(136, 144)
"""Device majors of Unix 98 pseudo-terminal slaves (Linux)."""
_ioctl = fcntl.ioctl


class VminGate:
    """The VMIN of one terminal, set for a wait and put back after it.

    :attr:`value` is the gate now: 1 when the terminal has its own setting.  The
    settings are read afresh at the first :meth:`set` after a :meth:`restore`, so a
    change made by someone else in between (pyserial's, say) is kept.
    """

    __slots__ = ("_before", "_settings", "fd", "value")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.value = 1
        self._settings: bytearray | None = None
        self._before = 1

    def set(self, vmin: int) -> bool:
        """Wake readers once ``vmin`` (1-255) bytes are there; False when the terminal
        has an inter-byte timer (then VMIN does not gate a wait, and nothing changed).

        Raises:
            OSError: the terminal failed or was closed.
        """
        settings = self._settings
        if settings is None:
            settings = bytearray(_ioctl(self.fd, _TCGETS, bytes(_SIZE)))
            if settings[_VTIME_AT]:
                return False
            self._settings, self._before = settings, settings[_VMIN_AT]
        settings[_VMIN_AT] = vmin
        _ioctl(self.fd, _TCSETS, settings)
        self.value = vmin
        return True

    def restore(self) -> None:
        """Put VMIN back as the first :meth:`set` found it.

        Raises:
            OSError: the terminal failed or was closed.
        """
        settings = self._settings
        if settings is None:
            return
        self._settings, changed, self.value = None, self.value != self._before, 1
        if changed:
            settings[_VMIN_AT] = self._before
            _ioctl(self.fd, _TCSETS, settings)


def pty_gate(fd: int) -> VminGate | None:
    """A gate for ``fd`` when it is a Linux pseudo-terminal whose ``struct termios`` has
    the layout :class:`VminGate` writes; else None."""
    if not (_TCGETS and _TCSETS and sys.platform.startswith("linux")):
        return None
    try:
        if os.major(os.fstat(fd).st_rdev) not in _PTY_MAJORS:
            return None
        raw = _ioctl(fd, _TCGETS, bytes(_SIZE))
        settings = termios.tcgetattr(fd)
    except (OSError, termios.error):
        return None
    flags = tuple(int.from_bytes(raw[i : i + 4], sys.byteorder) for i in range(0, 16, 4))
    cc = settings[6]
    same = flags == tuple(settings[:4]) and all(
        raw[_CC_AT + i] == (c if isinstance(c, int) else ord(c))
        for i, c in enumerate(cc[: termios.VEOL2 + 1])
    )
    return VminGate(fd) if same else None
