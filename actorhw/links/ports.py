"""Which serial port a board is on: port forms, USB identities, the scan.

A board's ``port`` is one of:

- a device path: ``/dev/ttyACM0``, ``/dev/serial/by-id/usb-...``, ``COM3``, a pty;
- a pyserial URL: ``socket://host:port``, ``rfc2217://host:port`` (anything with ``://``);
- a USB identity, looked up in ``serial.tools.list_ports`` each time the board is
  (re)attached, so a board that comes back on another path is found again:
  ``serial:E6614103E7`` (USB serial number), ``2e8a:0005`` (VID:PID, hex; ``2e8a:0005:1``
  for the second such board), ``location:1-1.2`` (USB port location);
- ``auto``: the one port whose USB ids are those of a common MicroPython board.

Listing ports never opens one; nothing here writes to a port.

This module imports core only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import serial.tools.list_ports

from actorhw.core.errors import DeviceUnavailableError, InvalidArgumentError

__all__ = [
    "KNOWN_USB_IDS",
    "PortCandidate",
    "PortSpec",
    "list_candidates",
    "parse_port",
    "resolve_port",
]

#: USB vendor ids (and vendor:product pairs) of boards that commonly run MicroPython,
#: and of the USB-serial bridge chips on the boards that do not have native USB.
KNOWN_USB_IDS: Final[dict[tuple[int, int | None], str]] = {
    (0x2E8A, None): "Raspberry Pi (RP2040/RP2350)",
    (0xF055, None): "MicroPython (pyboard and native-USB ports)",
    (0x303A, None): "Espressif native USB (ESP32-S2/S3/C3/C6)",
    (0x0D28, 0x0204): "ARM DAPLink (BBC micro:bit)",
    (0x10C4, 0xEA60): "Silicon Labs CP210x bridge",
    (0x1A86, 0x7523): "WCH CH340 bridge",
    (0x1A86, 0x55D4): "WCH CH9102 bridge",
    (0x0403, 0x6001): "FTDI FT232R bridge",
    (0x0403, 0x6010): "FTDI FT2232 bridge",
    (0x0403, 0x6014): "FTDI FT232H bridge",
    (0x0403, 0x6015): "FTDI FT-X bridge",
    (0x0483, 0x5740): "STM32 virtual COM port",
    (0x239A, None): "Adafruit",
}

_VID_PID: Final = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})(?::(\d+))?$")

Lister = Callable[[], Sequence[Any]]
"""Returns ``ListPortInfo``-shaped objects (``device``, ``vid``, ``pid``,
``serial_number``, ``location``, ``description``, ``manufacturer``, ``product``)."""


def system_ports() -> Sequence[Any]:
    """The OS's serial ports, as ``serial.tools.list_ports`` sees them (the OS edge)."""
    ports: Sequence[Any] = serial.tools.list_ports.comports(include_links=False)
    return ports


@attrs.frozen
class PortSpec:
    """A parsed ``port`` value.

    Attributes:
        kind: ``path``, ``url``, ``serial``, ``vidpid``, ``location`` or ``auto``.
        value: the path, URL, serial number or location (empty for ``auto``).
        vid, pid, index: for ``vidpid``.
        text: the value as written.
    """

    kind: str
    value: str
    text: str
    vid: int = 0
    pid: int = 0
    index: int = 0

    @property
    def by_usb(self) -> bool:
        """True when the port is found by USB identity (and may move between paths)."""
        return self.kind in ("serial", "vidpid", "location", "auto")


def parse_port(text: str) -> PortSpec:
    """Parse a port value; InvalidArgumentError (listing the forms) if it is none."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(
            f"a port is a path, URL, serial:NUMBER, VID:PID, location:LOC or auto, not {text!r}",
            argument="port",
        )
    text = text.strip()
    if text == "auto":
        return PortSpec("auto", "", text)
    if "://" in text:
        return PortSpec("url", text, text)
    for prefix in ("serial:", "location:"):
        if text.startswith(prefix):
            value = text[len(prefix) :]
            if not value:
                raise InvalidArgumentError(f"{text!r}: nothing after {prefix!r}", argument="port")
            return PortSpec(prefix[:-1], value, text)
    match = _VID_PID.match(text)
    if match is not None:
        return PortSpec(
            "vidpid",
            text,
            text,
            vid=int(match.group(1), 16),
            pid=int(match.group(2), 16),
            index=int(match.group(3) or 0),
        )
    return PortSpec("path", text, text)


@attrs.frozen
class PortCandidate:
    """One serial port the OS lists, and what we know of it without opening it."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    location: str | None
    description: str
    manufacturer: str | None
    product: str | None
    family: str | None
    """The entry of :data:`KNOWN_USB_IDS` its USB ids match, or None."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "vid": None if self.vid is None else f"{self.vid:04x}",
            "pid": None if self.pid is None else f"{self.pid:04x}",
            "serial_number": self.serial_number,
            "location": self.location,
            "description": self.description,
            "manufacturer": self.manufacturer,
            "product": self.product,
            "family": self.family,
            "port": self.port_value,
        }

    @property
    def port_value(self) -> str:
        """The most stable ``port`` value that finds this port again."""
        if self.serial_number:
            return f"serial:{self.serial_number}"
        return self.device


def _family(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return KNOWN_USB_IDS.get((vid, pid)) or KNOWN_USB_IDS.get((vid, None))


def list_candidates(
    *, lister: Lister | None = None, all_ports: bool = False
) -> list[PortCandidate]:
    """The ports the OS lists, sorted by path; by default only known MicroPython USB ids.

    Args:
        lister: where ports come from (default: :func:`system_ports`).
        all_ports: also list ports whose USB ids are not known ones (and non-USB ports).
    """
    found = []
    for info in (lister or system_ports)():
        vid, pid = getattr(info, "vid", None), getattr(info, "pid", None)
        family = _family(vid, pid)
        if family is None and not all_ports:
            continue
        found.append(
            PortCandidate(
                device=str(info.device),
                vid=vid,
                pid=pid,
                serial_number=getattr(info, "serial_number", None),
                location=getattr(info, "location", None),
                description=str(getattr(info, "description", "") or ""),
                manufacturer=getattr(info, "manufacturer", None),
                product=getattr(info, "product", None),
                family=family,
            )
        )
    return sorted(found, key=lambda c: c.device)


def resolve_port(spec: PortSpec | str, *, board: str = "", lister: Lister | None = None) -> str:
    """The device path or URL to open for ``spec`` now.

    Paths and URLs are returned as they are (opening them tells whether they exist);
    USB identities are looked up in the OS's port list at each call.

    Raises:
        DeviceUnavailableError: no port matches (the board is unplugged), or ``auto``
            found none.
        InvalidArgumentError: ``auto`` found several boards (they are listed), or the
            value is malformed.
    """
    if isinstance(spec, str):
        spec = parse_port(spec)
    if spec.kind in ("path", "url"):
        return spec.value
    everything = list_candidates(lister=lister, all_ports=True)
    if spec.kind == "serial":
        matches = [c for c in everything if c.serial_number == spec.value]
    elif spec.kind == "location":
        matches = [c for c in everything if c.location and _same_location(c.location, spec.value)]
    elif spec.kind == "vidpid":
        matches = [c for c in everything if (c.vid, c.pid) == (spec.vid, spec.pid)]
        matches = matches[spec.index : spec.index + 1]
    else:
        matches = [c for c in everything if c.family is not None]
        if len(matches) > 1:
            listed = ", ".join(f"{c.device} ({c.port_value}, {c.family})" for c in matches)
            raise InvalidArgumentError(
                f"port auto: {len(matches)} MicroPython boards attached ({listed}); "
                "name one with --port",
                argument="port",
                candidates=[c.device for c in matches],
            )
    if not matches:
        what = "no MicroPython board attached" if spec.kind == "auto" else "no such port attached"
        raise DeviceUnavailableError(
            f"{board or 'board'}: port {spec.text}: {what} ({len(everything)} serial ports listed)",
            device=board or spec.text,
            state="UNKNOWN",
            reason=f"port {spec.text} not found",
            port=spec.text,
        )
    return matches[0].device


def _same_location(listed: str, wanted: str) -> bool:
    # pyserial's location may carry the interface (``1-1.2:1.0``); match with or without.
    return listed == wanted or listed.split(":", 1)[0] == wanted
