"""What MicroPython board is on a port: enter the raw REPL and ask it.

:func:`probe_port` opens one port (only the one asked for), reads
``sys.implementation``, ``sys.platform``, ``os.uname()`` and ``machine.unique_id()``
where the firmware has them, and closes it.  :func:`definition_for` names the bundled
board definition that fits what the probe found.

This module imports core and links only.
"""

from __future__ import annotations

import ast
from typing import Any, Final

from actorhw.core.errors import ActorHwError, ResultParseError
from actorhw.links.qemu import MICROBIT_VERIFY_OVER
from actorhw.links.raw_repl import RawReplLink

__all__ = ["PLATFORM_BOARDS", "definition_for", "probe_port"]

#: ``sys.platform`` -> the bundled board definition for it.
PLATFORM_BOARDS: Final = {
    "rp2": "rp2-pico",
    "esp32": "esp32-devkit",
    "pyboard": "pyboard",
    "microbit": "microbit-usb",
}

_PROBE: Final = """\
import sys
i=sys.implementation
try:
 import os
 u=tuple(os.uname())
except Exception:
 u=None
try:
 import machine
 m=''.join('%02x'%b for b in machine.unique_id())
except Exception:
 m=None
print(repr((i.name,tuple(i.version),sys.platform,u,m)))"""


def probe_port(url: str, *, timeout: float = 5.0, **open_options: Any) -> dict[str, Any]:
    """Enter the raw REPL on ``url`` and describe the firmware; the port is closed after.

    Returns:
        ``implementation``, ``version``, ``platform``, ``uname`` (a list or None),
        ``unique_id`` (hex or None), ``raw_paste`` and ``board`` (the definition that
        fits, see :func:`definition_for`).

    Raises:
        LinkLostError: the port cannot be opened.
        RawReplError: no MicroPython raw REPL answered within ``timeout``.
        ResultParseError: the answer was not what a MicroPython board prints.
    """
    with RawReplLink.open(
        url,
        timeout=timeout,
        verify_over=MICROBIT_VERIFY_OVER,  # it may drop input bytes: send the probe checked
        resync_timeout=min(timeout, 0.5),
        **open_options,
    ) as link:
        text = link.exec_checked(_PROBE, timeout=timeout)
        raw_paste = bool(link.raw_paste)
    try:
        name, version, platform, uname, unique_id = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError) as e:
        raise ResultParseError(f"{url}: the probe printed {text[:80]!r}", text=text[:200]) from e
    return {
        "implementation": str(name),
        "version": ".".join(str(v) for v in version if v != ""),
        "platform": str(platform),
        "uname": None if uname is None else [str(u) for u in uname],
        "unique_id": unique_id,
        "raw_paste": raw_paste,
        "board": definition_for(str(platform)),
    }


def definition_for(platform: str) -> str:
    """The bundled definition for a firmware's ``sys.platform`` (``micropython`` if none)."""
    return PLATFORM_BOARDS.get(platform, "micropython")


def try_probe(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """:func:`probe_port`, with a failure as ``{"error": {...}}`` instead of raised."""
    try:
        return probe_port(url, timeout=timeout)
    except ActorHwError as e:
        return {"error": e.to_dict()}
