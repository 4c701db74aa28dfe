"""The board's friendly REPL passed through to a terminal, until the escape byte.

:func:`passthrough` leaves the raw REPL (Ctrl-B), then copies bytes both ways between
two file descriptors (a terminal in raw mode, usually) and the link's port, until
Ctrl-] arrives from the terminal; it then enters the raw REPL again, so the link is as
it was.  Bounded by a deadline like every other call.

This module imports core and links only.
"""

from __future__ import annotations

import os
import select
import time
from typing import Final

import serial

from actorhw.core.errors import LinkLostError
from actorhw.links.framing import CTRL_B
from actorhw.links.raw_repl import RawReplLink

__all__ = ["ESCAPE", "passthrough"]

ESCAPE: Final = b"\x1d"
"""Ctrl-]: leaves the REPL."""
_POLL_S: Final = 0.02
_ENTER_TIMEOUT: Final = 5.0


def passthrough(
    link: RawReplLink, in_fd: int, out_fd: int, *, timeout: float, escape: bytes = ESCAPE
) -> None:
    """Pass the board's REPL through to ``in_fd``/``out_fd`` until ``escape`` or ``timeout``.

    Raises:
        LinkLostError: the port failed (the board was unplugged).
        RawReplError: the raw REPL could not be entered again afterwards.
    """
    port = link.port
    deadline = time.monotonic() + timeout
    fileno = getattr(port, "fileno", None)
    port_fd = fileno() if callable(fileno) else None
    try:
        port.write(CTRL_B + b"\r")
        while time.monotonic() < deadline:
            watch = [in_fd] + ([port_fd] if port_fd is not None else [])
            ready, _, _ = select.select(watch, [], [], _POLL_S)
            if in_fd in ready:
                data = os.read(in_fd, 1024)
                if not data:
                    return
                cut = data.find(escape)
                if cut >= 0:
                    if cut:
                        port.write(data[:cut])
                    return
                port.write(data)
            waiting = port.in_waiting
            if waiting:
                os.write(out_fd, port.read(waiting))
    except (serial.SerialException, OSError) as exc:
        raise LinkLostError(f"{link.name}: the port failed in the REPL: {exc}") from exc
    finally:
        if not link.lost and not link.closed:
            link.enter_raw_repl(timeout=_ENTER_TIMEOUT)
