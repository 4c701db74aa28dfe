"""Background loops: the host threads that run a device's ``@background`` methods."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from actorhw.core.errors import InvalidArgumentError
from actorhw.programming.decorators import Background

__all__ = ["BackgroundLoops", "BackgroundStatus"]


@attrs.frozen
class BackgroundStatus:
    """One background loop at one moment.

    Attributes:
        name: the method's name.
        runs: runs finished (successful or not).
        errors: runs that raised.
        last_error: the latest exception of a run, or None.
        alive: whether its thread runs.
    """

    name: str
    runs: int
    errors: int
    last_error: BaseException | None
    alive: bool


@attrs.define
class _Loop:
    spec: Background
    thread: threading.Thread
    runs: int = 0
    errors: int = 0
    last_error: BaseException | None = None
    ended: bool = False


class BackgroundLoops:
    """The loops of one device: each runs ``spec.func(owner)`` every ``interval_ms``
    in its own thread until ``closing`` is set or ``running()`` turns False.

    Args:
        owner: the device, passed to every run.
        key: the board's key, for thread names.
        closing: set when the device closes; it ends every loop at once.
        running: whether the runtime still runs (a loop ends when it does not).
        log: the device's logger.
    """

    def __init__(
        self,
        owner: object,
        key: str,
        closing: threading.Event,
        running: Callable[[], bool],
        log: Any,
    ) -> None:
        self._owner = owner
        self._key = key
        self._closing = closing
        self._running = running
        self._log = log
        self._loops: dict[str, _Loop] = {}
        self._cond = threading.Condition()

    def start(self, spec: Background) -> None:
        """Start the loop of ``spec`` (first run at once)."""
        thread = threading.Thread(
            target=self._loop,
            args=(spec,),
            name=f"actorhw-bg-{self._key}-{spec.name}",
            daemon=True,
        )
        with self._cond:
            self._loops[spec.name] = _Loop(spec, thread)
        thread.start()

    def _loop(self, spec: Background) -> None:
        interval = spec.interval_ms / 1000
        log = self._log.bind(loop=spec.name)
        loop = self._loops[spec.name]
        next_run = time.monotonic()
        while not self._closing.is_set():
            if not self._running():
                log.info("background {} ends: the runtime stopped", spec.name)
                break
            error: BaseException | None = None
            try:
                spec.func(self._owner)
            except Exception as e:
                error = e
                log.opt(exception=e).warning("background {} failed: {}", spec.name, e)
            except BaseException as e:  # SystemExit, KeyboardInterrupt: end this loop
                log.opt(exception=e).error("background {} ends: {!r}", spec.name, e)
                with self._cond:
                    loop.errors += 1
                    loop.last_error = e
                break
            with self._cond:
                loop.runs += 1
                if error is not None:
                    loop.errors += 1
                    loop.last_error = error
                self._cond.notify_all()
            now = time.monotonic()
            next_run = max(next_run + interval, now)
            if self._closing.wait(next_run - now):
                break
        with self._cond:
            loop.ended = True
            self._cond.notify_all()

    def join(self, deadline: float) -> None:
        """Join every loop thread (but the caller's own) until ``deadline`` (monotonic)."""
        me = threading.current_thread()
        for loop in list(self._loops.values()):
            if loop.thread is not me and loop.thread.ident is not None:
                loop.thread.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> list[str]:
        """Names of the loops whose thread still runs (the caller's own excepted)."""
        me = threading.current_thread()
        return [
            name
            for name, loop in self._loops.items()
            if loop.thread.is_alive() and loop.thread is not me
        ]

    def errors(self) -> dict[str, int]:
        """Exceptions counted so far, per loop."""
        with self._cond:
            return {name: loop.errors for name, loop in self._loops.items()}

    def status(self) -> dict[str, BackgroundStatus]:
        """Runs, errors, last error and liveness of every loop."""
        with self._cond:
            return {
                name: BackgroundStatus(
                    name, loop.runs, loop.errors, loop.last_error, loop.thread.is_alive()
                )
                for name, loop in self._loops.items()
            }

    def wait(self, name: str, *, runs: int, timeout: float) -> bool:
        """Wait until loop ``name`` finished at least ``runs`` runs; False on timeout.

        Raises:
            InvalidArgumentError: no loop of that name runs.
        """
        with self._cond:
            loop = self._loops.get(name)
            if loop is None:
                raise InvalidArgumentError(
                    f"no background loop {name!r}; loops: {', '.join(self._loops) or 'none'}",
                    argument="name",
                )
            return (
                self._cond.wait_for(lambda: loop.runs >= runs or loop.ended, timeout=timeout)
                and loop.runs >= runs
            )
