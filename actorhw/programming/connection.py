"""The board connection of a device: definitions sent and setups run once per
connection (board generation), teardowns, and the connect script the runtime replays.

No lock is held over board I/O here: one thread syncs while the others wait for it
(a flag under one condition), and "run alone on the board" is asked of the board's
operation limiter (``exec(..., exclusive=True)``), never enforced here.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from actorhw.core.errors import (
    ActorHwError,
    AlreadyOpenedError,
    DeviceResetError,
    TimedOutError,
)
from actorhw.programming.decorators import Setup, Task, Teardown
from actorhw.programming.wire import HELPER, SENTINEL, chunks

if TYPE_CHECKING:
    from actorhw.api.runtime import Runtime

__all__ = ["BoardLike", "BoardSync", "ConnectScripts", "RuntimeScripts", "aggregate"]


class _HasGeneration(Protocol):
    @property
    def generation(self) -> int: ...


class BoardLike(Protocol):
    """What a device needs of its board: a leased [`Board`][actorhw.api.handles.Board] fits.

    ``exec(..., exclusive=True)`` must run the code alone on the board (the Board
    handle asks the runtime's operation limiter for it); the device has no lock of its
    own for that.
    """

    def exec(self, code: str, *, timeout: float = ..., exclusive: bool = ...) -> str:
        """Run code, return its stdout; DeviceExceptionError / TimedOutError."""
        ...

    def open(self) -> object:
        """(Re)open the device for this handle's lease (after a reset)."""
        ...

    def release(self) -> int:
        """End the lease."""
        ...

    def info(self) -> _HasGeneration:
        """The device's info; ``generation`` grows with every reset of the board."""
        ...


class ConnectScripts(Protocol):
    """Where the board's connect script is kept (the runtime, for leased devices)."""

    def set(self, key: str, codes: Sequence[str], timeout: float) -> None:
        """Have the board run ``codes`` after every reconnect, before it is CONNECTED."""
        ...

    def clear(self, key: str) -> None:
        """Forget the script (quietly: the runtime may be gone)."""
        ...


class RuntimeScripts:
    """The connect scripts of one board, kept by the runtime."""

    def __init__(self, runtime: Runtime, board: str) -> None:
        self._rt, self._board = runtime, board

    def set(self, key: str, codes: Sequence[str], timeout: float) -> None:
        """See `ConnectScripts`."""
        self._rt.set_connect_script(self._board, key, list(codes), timeout=timeout)

    def clear(self, key: str) -> None:
        """See `ConnectScripts`."""
        if self._rt.running:
            with contextlib.suppress(ActorHwError):
                self._rt.set_connect_script(self._board, key, (), timeout=0)


def aggregate(primary: BaseException, others: Sequence[BaseException]) -> BaseException:
    """``primary``, with every other failure in its notes and ``teardown_errors``."""
    if others:
        for other in others:
            primary.add_note(f"also failed: {type(other).__name__}: {other}")
        with contextlib.suppress(AttributeError):
            setattr(primary, "teardown_errors", list(others))  # noqa: B010
    return primary


class BoardSync:
    """Definitions and setups of one device on its board, once per connection.

    Args:
        owner: the device class's name, for notes.
        key: the board's key, for errors and the script key.
        tasks, setups, teardowns: the device class's specs, in their order.
        max_exec_bytes: size limit of one exec of definitions.
        task_timeout: deadline (s) of an exec without its own ``timeout_ms``.
        scripts: where to keep the connect script, or None.
        on_sync: called at every sync before anything is sent (drops the cache).
        log: the device's logger.
    """

    def __init__(
        self,
        *,
        owner: str,
        key: str,
        tasks: Sequence[Task[Any, Any]],
        setups: Sequence[Setup],
        teardowns: Sequence[Teardown],
        max_exec_bytes: int,
        task_timeout: float,
        scripts: ConnectScripts | None,
        on_sync: Callable[[], None],
        log: Any,
    ) -> None:
        self._owner, self._key = owner, key
        self._tasks, self._setups, self._teardowns = tasks, setups, teardowns
        self._max_exec_bytes = max_exec_bytes
        self._task_timeout = task_timeout
        self._scripts = scripts
        self._on_sync = on_sync
        self._log = log
        self._cond = threading.Condition()
        self._syncing = False
        self._synced_generation: int | None = None
        self._script_key: str | None = None
        self._nonce = 0
        self.epoch = 0
        """Grows with every sync; a call remembers it to invalidate only its own."""
        self.syncs = 0
        """How many times definitions were sent and setups run."""

    def timeout(self, timeout_ms: int | None) -> float:
        """The exec deadline (s) of a spec's ``timeout_ms`` (None: ``task_timeout``)."""
        return timeout_ms / 1000 if timeout_ms else self._task_timeout

    def ensure(self, board: BoardLike, *, wait: float) -> int:
        """Sync if the board's connection changed since the last sync; the epoch after.

        One thread syncs; the others wait for it up to ``wait`` s.

        Raises:
            TimedOutError: another thread's sync did not end within ``wait``.
        """
        deadline = time.monotonic() + wait
        while True:
            generation = board.info().generation
            with self._cond:
                if generation == self._synced_generation and not self._syncing:
                    return self.epoch
                if not self._syncing:
                    self._syncing = True
                    break
                if not self._cond.wait_for(
                    lambda: not self._syncing, timeout=max(0.0, deadline - time.monotonic())
                ):
                    raise TimedOutError(
                        f"{self._key}: waited {wait:.3g} s for another call's re-sync",
                        device=self._key,
                        timeout=wait,
                    )
        try:
            with contextlib.suppress(AlreadyOpenedError):
                board.open()  # reopen after a reset; refused (ignored) if still open
            generation = board.info().generation
            if not (self._script_key and not self.definitions_lost(board)):
                self._sync(board)  # the board did not rerun our connect script
            with self._cond:
                self._synced_generation = generation
                self.epoch += 1
                return self.epoch
        finally:
            with self._cond:
                self._syncing = False
                self._cond.notify_all()

    def invalidate(self, epoch: int) -> None:
        """Sync again at the next call, unless another sync since ``epoch`` did."""
        with self._cond:
            if self.epoch == epoch:
                self._synced_generation = None

    def definitions_lost(self, board: BoardLike) -> bool:
        """Whether the board lost our definitions (its sentinel is not our nonce)."""
        out = board.exec(f"print(globals().get('{SENTINEL}'))", timeout=self._task_timeout)
        return out.strip() != str(self._nonce)

    def _sync(self, board: BoardLike) -> None:
        self._on_sync()
        self._nonce = random.getrandbits(30)
        units = [f"{SENTINEL}=None", HELPER]
        units += [t.source for t in self._tasks]
        units.append(f"{SENTINEL}={self._nonce}")
        pieces = chunks(units, self._max_exec_bytes)
        self._log.debug("sending {} definitions in {} exec(s)", len(self._tasks), len(pieces))
        for piece in pieces:
            try:
                board.exec(piece, timeout=self._task_timeout, exclusive=True)
            except ActorHwError as e:
                e.add_note(f"while sending the task definitions of {self._owner}")
                raise
        self._register_script(units[:-1])  # without the sentinel: it goes last
        for spec in self._setups:
            error: ActorHwError | None = None
            try:
                board.exec(spec.source, timeout=self.timeout(spec.timeout_ms), exclusive=True)
            except ActorHwError as e:
                error = e
            if error is not None:
                error.add_note(f"in setup {spec.name} of {self._owner}")
                self._log.warning("setup {} failed: {}; running teardowns", spec.name, error)
                raise aggregate(error, self.run_teardowns(board))
        self.syncs += 1

    def _register_script(self, units: list[str]) -> None:
        """Have the board rerun definitions and setups after every reconnect, before
        it is CONNECTED again (runtime-leased devices only)."""
        if self._scripts is None:
            return
        key = self._script_key or f"{self._owner}:{self._key}:{id(self)}"
        # The sentinel is set last: a board whose sentinel matches ran the whole script.
        codes = chunks(units, self._max_exec_bytes) + [spec.source for spec in self._setups]
        codes.append(f"{SENTINEL}={self._nonce}")
        timeout = max([self._task_timeout] + [self.timeout(s.timeout_ms) for s in self._setups])
        self._scripts.set(key, codes, timeout)
        self._script_key = key

    def unregister_script(self) -> None:
        """Forget the connect script (at close)."""
        key, self._script_key = self._script_key, None
        if key is not None and self._scripts is not None:
            self._scripts.clear(key)

    def run_teardowns(self, board: BoardLike) -> list[BaseException]:
        """Run every teardown, alone on the board; returns the failures (none raised)."""
        failures: list[BaseException] = []
        for spec in self._teardowns:
            timeout = self.timeout(spec.timeout_ms)
            try:
                try:
                    board.exec(spec.source, timeout=timeout, exclusive=True)
                except DeviceResetError:
                    with contextlib.suppress(AlreadyOpenedError):
                        board.open()
                    board.exec(spec.source, timeout=timeout, exclusive=True)
            except Exception as e:
                e.add_note(f"in teardown {spec.name} of {self._owner}")
                self._log.warning("teardown {} failed: {}", spec.name, e)
                failures.append(e)
        return failures
