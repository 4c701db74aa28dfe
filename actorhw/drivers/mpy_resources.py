"""Reading a MicroPython board's resources with one exec, for drivers to reuse.

A driver's BOARD device keeps a :class:`Sampler`: it runs :data:`PROBE_CODE` once per
connection to learn what the firmware has (``os.statvfs``, ``os.size``,
``micropython.mem_info``, ``_thread``), defines a sampler function of
:func:`figures_code` for those capabilities on the board, calls it for every sample
and parses the board's output with :func:`parse_figures`.  ``gc.collect()`` runs
before a sample only when asked (the BOARD device's ``collect_garbage`` option).
What the firmware cannot report is left out of the figures (unknown), never reported
as zero.  On the micro:bit (MicroPython 1.9.2) the
heap comes from the ``GC:`` and ``max free sz`` lines of ``micropython.mem_info()`` and
storage from a sum of ``os.size`` over the files (no ``statvfs``, so no total).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from actorhw.core.errors import DeviceExceptionError, ResultParseError

#: Bytes per block of the MicroPython heap: ``max free sz`` counts blocks.
GC_BLOCK_BYTES = 16

PROBE_CODE = (
    "import os,micropython\n"
    "try:\n import _thread\n t=1\nexcept ImportError:\n t=0\n"
    "print(repr((hasattr(os,'statvfs'),hasattr(os,'size') and hasattr(os,'listdir'),"
    "hasattr(micropython,'mem_info'),t)))"
)
"""Prints ``(statvfs, size+listdir, mem_info, _thread)`` as a tuple of bools/ints."""

_GC_LINE = re.compile(r"GC: total: (\d+), used: (\d+), free: (\d+)")
_MAX_FREE = re.compile(r"max free sz: (\d+)")
_RECORD = re.compile(r"^\x1eRES(.*)\x1f$", re.MULTILINE)


def parse_capabilities(text: str) -> dict[str, bool]:
    """The probe's answer as ``{"statvfs": ..., "size": ..., "mem_info": ..., "thread": ...}``."""
    try:
        statvfs, size, mem_info, thread = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError) as e:
        raise ResultParseError(
            f"resource probe: the board answered {text[:80]!r}", text=text[:200]
        ) from e
    return {
        "statvfs": bool(statvfs),
        "size": bool(size),
        "mem_info": bool(mem_info),
        "thread": bool(thread),
    }


def figures_code(caps: Mapping[str, bool], *, collect: bool = False) -> str:
    """The code of one sample, for a firmware with capabilities ``caps``; ``collect``
    runs ``gc.collect()`` first (garbage then counts as free memory, at the cost of a
    collection on the board each sample: only when asked)."""
    lines = ["import gc,utime"] + (["gc.collect()"] if collect else [])
    if caps.get("mem_info"):
        lines += ["import micropython", "micropython.mem_info()"]
    else:
        lines.append("print('GC: total: %d, used: %d, free: %d'%(gc.mem_free()+gc.mem_alloc(),"
                     "gc.mem_alloc(),gc.mem_free()))")  # fmt: skip
    if caps.get("statvfs"):
        lines += [
            "import os",
            "s=os.statvfs('/')",
            "fs=(s[0]*s[2],s[0]*(s[2]-s[3]),s[0]*s[3])",
        ]
    elif caps.get("size"):
        lines += ["import os", "fs=(None,sum(os.size(f) for f in os.listdir()),None)"]
    else:
        lines.append("fs=(None,None,None)")
    lines.append("print('\\x1eRES'+repr((fs,utime.ticks_ms()))+'\\x1f')")
    return "\n".join(lines)


#: The name of the sampler function a driver defines on the board once per connection.
SAMPLER = "_actorhw_res"
#: What a sample sends once the sampler is defined (instead of the whole figures code).
SAMPLE_CALL = f"{SAMPLER}()"


def sampler_code(caps: Mapping[str, bool], *, collect: bool = False) -> str:
    """Define :data:`SAMPLER` on the board: :func:`figures_code` as a function, sent
    once per connection (as the stream sampler is); each sample then sends only
    :data:`SAMPLE_CALL`.  A soft reset forgets it: a NameError says to define it again."""
    code = figures_code(caps, collect=collect)
    return f"def {SAMPLER}():\n" + "\n".join(f" {line}" for line in code.split("\n"))


class Sampler:
    """A board's resource sampling through its raw-REPL link, for a driver's BOARD
    device to keep: the capabilities are probed and :data:`SAMPLER` defined once per
    connection (a new link object: again), then each sample is :data:`SAMPLE_CALL`,
    a few bytes; a NameError (a soft reset forgot the function) defines it again.
    Runs on the board's I/O thread, one exec per sample once defined."""

    __slots__ = ("_caps", "_link", "collect")

    def __init__(self, *, collect: bool = False) -> None:
        self.collect = collect
        self._link: Any = None
        self._caps: dict[str, bool] = {}

    def read(self, link: Any, *, timeout: float) -> dict[str, Any]:
        """One sample's figures (``link`` has ``exec_checked(code, timeout=)``)."""
        if self._link is not link:
            caps = parse_capabilities(link.exec_checked(PROBE_CODE, timeout=timeout))
            link.exec_checked(sampler_code(caps, collect=self.collect), timeout=timeout)
            self._link, self._caps = link, caps
        try:
            out = link.exec_checked(SAMPLE_CALL, timeout=timeout)
        except DeviceExceptionError as e:
            if e.exc_name != "NameError":
                raise
            link.exec_checked(sampler_code(self._caps, collect=self.collect), timeout=timeout)
            out = link.exec_checked(SAMPLE_CALL, timeout=timeout)
        return parse_figures(out, self._caps)


def parse_figures(text: str, caps: Mapping[str, bool]) -> dict[str, Any]:
    """The figures of one sample's output (keys of :data:`actorhw.driver.RESOURCE_FIGURES`)."""
    figures: dict[str, Any] = {}
    gc_line = _GC_LINE.search(text)
    record = _RECORD.search(text)
    if gc_line is None or record is None:
        raise ResultParseError(
            f"resource sample: unexpected board output {text[:120]!r}", text=text[:200]
        )
    total, used, free = (int(g) for g in gc_line.groups())
    figures |= {"memory.total": total, "memory.used": used, "memory.free": free}
    max_free = _MAX_FREE.search(text)
    if max_free is not None:
        figures["memory.largest_free_block"] = int(max_free.group(1)) * GC_BLOCK_BYTES
    try:
        (fs_total, fs_used, fs_free), ticks = ast.literal_eval(record.group(1))
    except (ValueError, SyntaxError, TypeError) as e:
        raise ResultParseError(
            f"resource sample: bad record {record.group(1)[:80]!r}", text=text[:200]
        ) from e
    for key, value in (("total", fs_total), ("used", fs_used), ("free", fs_free)):
        if value is not None:
            figures[f"storage.{key}"] = int(value)
    figures["cpu.uptime_s"] = int(ticks) / 1000
    if not caps.get("thread"):
        figures["cpu.active_threads"] = 1  # no _thread module: the REPL is the only thread
    return figures
