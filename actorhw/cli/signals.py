"""SIGTERM stops ``actorhw`` as Ctrl-C does: teardown, summary, reports, then exit 143.

CI timeouts, ``docker stop`` and systemd send SIGTERM; Python's default for it is to die
at once, skipping every ``finally``. Inside `terminate_like_interrupt` a SIGTERM
raises `Terminated`, a KeyboardInterrupt, so every path that cleans up after
Ctrl-C (the scenario runner's teardown, the runtime's ``with`` block) runs for it too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """A SIGTERM arrived; unwinds like Ctrl-C, then main() exits 143."""


@contextlib.contextmanager
def terminate_like_interrupt() -> Iterator[None]:
    """Turn the first SIGTERM into `Terminated` in the main thread.

    Later SIGTERMs are ignored while the teardown runs (it has deadlines of its own);
    the previous handler is back on exit. Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
