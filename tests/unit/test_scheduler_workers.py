"""The device actors' shared workers retire with the last actor: a stopped runtime
leaves no thread behind, and the next runtime starts new workers."""

from __future__ import annotations

import threading

from actorhw import Runtime
from actorhw.core.messages import GetInfo
from actorhw.tree.asks import ask_later
from actorhw.tree.scheduler import pool_threads


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("actorhw-scheduler")]


def test_a_stopped_runtime_leaves_no_scheduler_worker_and_the_next_one_starts_new() -> None:
    for _ in range(2):
        rt = Runtime.start(boards=["same70-xplained"], timeout=10.0)
        try:
            assert rt.devices(timeout=5.0)
            # Idle devices answer asks in the caller's thread; mail that is sent (a
            # tell, an ask_later) is run by the shared scheduler's workers.
            ids = rt.ids("same70-xplained")
            _entry, ref = rt._route(ids.UART0, timeout=5.0)
            assert ask_later(ref, GetInfo()).wait(timeout=5.0).device is ids.UART0
            assert _workers(), "device actors' mail runs on the shared scheduler's workers"
        finally:
            rt.stop()
        assert _workers() == []
        assert not any(t.is_alive() for t in pool_threads())
