"""Leak checks and the simulated runtime fixture of the public test kit.

- ``no_leaks``: fails the test if it leaves an actor or a thread running; use it as an
  autouse fixture in your conftest.py (actorhw's own suite does).
- ``sim_runtime``: a Runtime with a simulated SAME70 Xplained and micro:bit, stopped
  after the test.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from actorhw.api.runtime import Runtime
from actorhw.tree.asks import running_actors
from actorhw.tree.scheduler import pool_threads

#: Seconds a test's threads get to end after it before they count as leaked.
LEAK_GRACE = 5.0


def leftover_threads(before: set[threading.Thread], *, grace: float) -> list[threading.Thread]:
    """Threads not in ``before`` still alive after waiting up to ``grace`` s for them."""
    before = before | pool_threads()  # the schedulers' pools serve the process: no leak
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread not in before and thread is not threading.current_thread():
            with contextlib.suppress(RuntimeError):  # still starting: counted below
                thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves actors or threads running."""
    before = set(threading.enumerate())
    actors_before = {ref.actor_urn for ref in running_actors()}
    yield
    actors = [r for r in running_actors() if r.actor_urn not in actors_before]
    for ref in actors:
        ref.stop(block=False)
    threads = leftover_threads(before, grace=LEAK_GRACE)
    problems = []
    if actors:
        problems.append(
            f"{len(actors)} actor(s) left running: "
            f"{sorted({r.actor_class.__name__ for r in actors})}"
        )
    if threads:
        problems.append(f"{len(threads)} thread(s) left running: {[t.name for t in threads]}")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def sim_runtime() -> Iterator[Runtime]:
    """A Runtime with simulated same70-xplained and microbit boards."""
    rt = Runtime.start(boards=["same70-xplained", "microbit"], timeout=10.0)
    try:
        yield rt
    finally:
        rt.stop()
