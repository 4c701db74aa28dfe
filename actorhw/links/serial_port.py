"""Opening a serial port without side effects, and the DTR/RTS reset.

pyserial asserts DTR and RTS when it opens a port.  On many ESP32 boards those lines
drive EN and IO0 through the auto-reset circuit, so merely opening the port can reset
the board, or hold it in its bootloader.  :func:`open_serial` leaves both lines as they
are unless asked (a board definition says ``dtr = false`` / ``rts = false``); the OS
may still raise them on open, which actorhw cannot prevent.

This module imports core only.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Final

import serial

from actorhw.core.errors import LinkLostError

__all__ = ["dtr_rts_reset", "open_serial"]

_READ_TIMEOUT: Final = 0.05


def open_serial(
    url: str,
    *,
    baudrate: int = 115200,
    write_timeout: float = 1.0,
    exclusive: bool = True,
    dtr: bool | None = None,
    rts: bool | None = None,
    name: str | None = None,
) -> Any:
    """Open a device path or pyserial URL; DTR/RTS set only when given.

    Args:
        url: ``/dev/ttyACM0``, ``COM3``, ``socket://host:port``, ``rfc2217://host:port``,
            ``loop://``...
        baudrate: line speed (ignored by ptys and USB CDC).
        write_timeout: initial write timeout in seconds.
        exclusive: take an exclusive lock on a device path.
        dtr: the DTR level to set on open; None leaves the line alone.
        rts: the RTS level to set on open; None leaves the line alone.
        name: the board's name in errors.

    Returns:
        The open pyserial port.

    Raises:
        LinkLostError: the port cannot be opened (missing, busy, refused).
    """
    try:
        port = serial.serial_for_url(
            url,
            do_not_open=True,
            baudrate=baudrate,
            timeout=_READ_TIMEOUT,
            write_timeout=write_timeout,
            exclusive=exclusive,
        )
        # pyserial writes both lines during open(); skip that for a line left alone.
        if dtr is None:
            port._update_dtr_state = _leave_alone
        else:
            port.dtr = dtr
        if rts is None:
            port._update_rts_state = _leave_alone
        else:
            port.rts = rts
        port.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkLostError(f"cannot open {url}: {exc}", device=name or url, port=url) from exc
    for attr in ("_update_dtr_state", "_update_rts_state"):
        with contextlib.suppress(AttributeError):
            delattr(port, attr)  # an explicit dtr/rts later works as pyserial documents
    return port


def _leave_alone() -> None:
    """Stands in for pyserial's line update during open()."""


def dtr_rts_reset(port: Any, *, pulse_s: float = 0.1) -> None:
    """Reset an ESP32-style board through its auto-reset circuit (EN on RTS, IO0 on DTR).

    IO0 stays high (DTR released: a normal boot, not the bootloader), EN is pulled low
    for ``pulse_s`` (RTS asserted), then released.

    Raises:
        LinkLostError: the port failed while the lines were set.
    """
    try:
        port.dtr = False
        port.rts = True
        time.sleep(pulse_s)
        port.rts = False
    except (serial.SerialException, OSError) as exc:
        raise LinkLostError(f"DTR/RTS reset failed: {exc}", device=str(port.name)) from exc
