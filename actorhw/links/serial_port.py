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
import errno
import time
from typing import Any, Final

import serial

from actorhw.core.errors import LinkLostError, UnsupportedOperationError

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


def dtr_rts_reset(port: Any, *, pulse_s: float = 0.1, name: str | None = None) -> None:
    """Reset an ESP32-style board through its auto-reset circuit (EN on RTS, IO0 on DTR).

    IO0 stays high (DTR released: a normal boot, not the bootloader), EN is pulled low
    for ``pulse_s`` (RTS asserted), then released.

    Raises:
        UnsupportedOperationError: the port has no modem lines to pulse (a pty, a
            ``socket://`` or ``loop://`` port): nothing was reset.
        LinkLostError: the port failed while the lines were set.
    """
    label = name or str(getattr(port, "name", None) or getattr(port, "port", "the port"))
    if type(port).__module__.rsplit(".", 1)[-1] in _NO_MODEM_LINES:
        raise _no_lines(label, port, "a network or loopback port")
    try:
        port.dtr = False
        port.rts = True
        time.sleep(pulse_s)
        port.rts = False
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):  # a pty refuses modem-line ioctls
            raise _no_lines(label, port, f"the device refuses them: {exc}") from exc
        raise LinkLostError(f"{label}: DTR/RTS reset failed: {exc}", device=label) from exc
    except serial.SerialException as exc:
        raise LinkLostError(f"{label}: DTR/RTS reset failed: {exc}", device=label) from exc


_NO_MODEM_LINES: Final = ("protocol_socket", "protocol_loop")
"""pyserial URL handlers whose DTR and RTS are accepted and ignored."""


def _no_lines(label: str, port: Any, why: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"{label}: the port has no DTR/RTS lines to reset the board with ({why}); "
        "use reset = machine, soft or power",
        device=label,
        op="dtr_rts_reset",
        port=str(getattr(port, "port", "") or ""),
    )
