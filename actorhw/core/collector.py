"""A pause of Python's cyclic garbage collector while many long-lived objects are built.

Every device actor is some 20 objects the collector tracks.  As they pile up, CPython
runs a full collection each time the objects surviving into its oldest generation have
grown by a quarter: starting 20,000 devices ran 5 or 6 full collections over a heap
growing to half a million objects, about a third of the start's CPU time, and found
nothing to free (everything built is alive, and reference counting frees the rest at
once).  :func:`collector_paused` switches the collector off around such a bulk build
and back on after it; the collections then run as the collector's counters say, once
rather than six times.  Mercurial's ``util.nogc`` does the same, for the same reason;
so does the scenario loader, for a file's many small objects.

The switch is the process's: nested and concurrent pauses are counted, the collector
comes back when the last one ends, and only if it was on when the first began.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["BULK_DEVICES", "collector_paused"]

#: Devices started at once from which ``Runtime.add_boards`` pauses the collector (below,
#: its passes cost little).
BULK_DEVICES = 1_000

_lock = threading.Lock()
_depth = 0
_resume = False  # whether the last pause to end switches the collector back on


@contextlib.contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """Keep the cyclic garbage collector off inside the block (if ``pause``)."""
    global _depth, _resume
    if not pause:
        yield
        return
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
