"""Transports to boards: the MicroPython raw REPL over serial, and QEMU micro:bits.

Nothing here knows about actors; the device layer drives these from its I/O threads.
"""

from actorhw.links.qemu import (
    DEFAULT_FIRMWARE,
    MICROBIT_VERIFY_OVER,
    QemuMicrobit,
    qemu_available,
)
from actorhw.links.raw_repl import (
    DEFAULT_MAX_OUTPUT,
    RAW_REPL_BANNER,
    ExecResult,
    RawReplLink,
    SerialPort,
    bytes_literal,
    parse_traceback,
)

__all__ = [
    "DEFAULT_FIRMWARE",
    "DEFAULT_MAX_OUTPUT",
    "MICROBIT_VERIFY_OVER",
    "RAW_REPL_BANNER",
    "ExecResult",
    "QemuMicrobit",
    "RawReplLink",
    "SerialPort",
    "bytes_literal",
    "parse_traceback",
    "qemu_available",
]
