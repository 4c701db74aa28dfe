"""The device class: [`MicroPythonDevice`][actorhw.programming.device.MicroPythonDevice], whose
decorated methods run on a board.

It leases the board, sends the task definitions once per connection, runs setups and
teardowns, runs task calls and batches, and owns the background loops.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from actorhw.api.handles import Board
from actorhw.core.errors import (
    ActorHwError,
    DeviceExceptionError,
    DeviceResetError,
    InvalidArgumentError,
    NotOpenedError,
    RuntimeStoppedError,
    TimedOutError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.log import logger
from actorhw.programming.batch import Batch, Outcome, Pending, fill_outcomes
from actorhw.programming.cache import ResultCache
from actorhw.programming.connection import BoardLike, BoardSync, RuntimeScripts, aggregate
from actorhw.programming.decorators import (
    Background,
    Setup,
    Snippet,
    Task,
    Teardown,
    collect_specs,
)
from actorhw.programming.loops import BackgroundLoops, BackgroundStatus
from actorhw.programming.wire import helper_call, single_result

if TYPE_CHECKING:
    from actorhw.api.runtime import Runtime

__all__ = ["BoardLike", "MicroPythonDevice"]

T = TypeVar("T")


class MicroPythonDevice:
    """Base of device classes whose decorated methods run on a MicroPython board.

    Constructing one leases the board (acquire + open), sends the task definitions, runs the setups,
    registers for runtime stop and starts the background loops; `close()` (or leaving the ``with``
    block) stops the loops, runs the teardowns and releases the board.

    Args:
        runtime: the running Runtime (None only with a ``device`` that is a handle).
        device: the BOARD device id to lease, or a board handle already held (a
            leased [`Board`][actorhw.api.handles.Board], or any
            [`BoardLike`][actorhw.programming.connection.BoardLike]); the
            device then owns it and releases it on close.
        owner: the lease's owner name (with a device id).
        timeout: deadline of the runtime's control asks (lease, info), in s.
        lock_timeout: how long a call waits for another thread's re-sync of the
            definitions, in s (waits for the board itself are the limiter's, within
            each call's deadline).
        close_timeout: how long close waits for the background threads; None: the
            longest task timeout plus 5 s.
        connect: connect now (default); else call `open()` later.

    Class attributes:
        task_timeout: exec deadline (s) of tasks, setups and teardowns without
            ``timeout_ms``.
        max_exec_bytes: size limit of one exec of definitions: they are packed into
            as few execs as fit (the micro:bit has about 10 KB of heap).
    """

    task_timeout: ClassVar[float] = 10.0
    max_exec_bytes: ClassVar[int] = 1024

    _tasks: ClassVar[dict[str, Task[Any, Any]]] = {}
    _setups: ClassVar[tuple[Setup, ...]] = ()
    _teardowns: ClassVar[tuple[Teardown, ...]] = ()
    _backgrounds: ClassVar[tuple[Background, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._tasks, cls._setups, cls._teardowns, cls._backgrounds = collect_specs(cls)

    def __init__(
        self,
        runtime: Runtime | None,
        device: DeviceId | BoardLike,
        *,
        owner: str | None = None,
        timeout: float = 5.0,
        lock_timeout: float = 60.0,
        close_timeout: float | None = None,
        connect: bool = True,
    ) -> None:
        if isinstance(device, DeviceId):
            if runtime is None or not owner:
                raise InvalidArgumentError(
                    "leasing a device id needs a runtime and an owner", argument="owner"
                )
            self.key: str = device.key
        else:
            self.key = str(getattr(getattr(device, "device", None), "key", "board"))
        self._rt = runtime
        self._device = device
        self.owner = owner
        self.timeout = timeout
        self.lock_timeout = lock_timeout
        self.close_timeout = close_timeout
        self._log = logger.bind(device=self.key)
        self._board: BoardLike | None = None
        self._cache = ResultCache()
        scripts = None
        if runtime is not None and isinstance(device, DeviceId):
            scripts = RuntimeScripts(runtime, type(device).board)
        self._sync = BoardSync(
            owner=type(self).__name__,
            key=self.key,
            tasks=list(self._tasks.values()),
            setups=self._setups,
            teardowns=self._teardowns,
            max_exec_bytes=self.max_exec_bytes,
            task_timeout=self.task_timeout,
            scripts=scripts,
            on_sync=self.clear_cache,
            log=self._log,
        )
        self._state_lock = threading.Lock()
        self._opened = False
        self.closing = threading.Event()
        """Set when close begins: background methods may watch it to end early."""
        self._loops = BackgroundLoops(
            self, self.key, self.closing, self._runtime_running, self._log
        )
        self._unregister: Callable[[], object] | None = None
        if connect:
            self.open()

    @property
    def syncs(self) -> int:
        """How many times definitions were sent and setups run (once per connection)."""
        return self._sync.syncs

    def __repr__(self) -> str:
        state = "open" if self._opened and not self.closing.is_set() else "closed"
        return f"<{type(self).__name__} {self.key} {state}>"

    # --- lifecycle ---------------------------------------------------------------------

    def open(self) -> Self:
        """Lease the board, send the definitions, run the setups, start the loops.

        Raises:
            DeviceExceptionError: a setup raised on the board (after the teardowns
                ran; their failures are in its ``teardown_errors`` and notes).
            ActorHwError: the lease or the board failed (busy, unavailable...).
        """
        with self._state_lock:
            if self._opened:
                raise InvalidArgumentError(f"{self!r} is already open", argument="open")
            if self.closing.is_set():
                raise NotOpenedError(f"{self.key}: this device object was closed", device=self.key)
            self._opened = True
        try:
            if isinstance(self._device, DeviceId):
                assert self._rt is not None and self.owner
                self._board = self._rt.lease(
                    Board, self._device, owner=self.owner, timeout=self.timeout
                )
            else:
                self._board = self._device
            try:
                self._ensure_synced()
            except BaseException:
                self._release_board()
                raise
        except BaseException:
            with self._state_lock:
                self._opened = False
            raise
        hook = getattr(self._rt, "on_stop", None) if self._rt is not None else None
        if callable(hook):
            unregister = hook(self._on_runtime_stop)
            self._unregister = unregister if callable(unregister) else None
        for spec in self._backgrounds:
            self._loops.start(spec)
        return self

    def close(self) -> None:
        """Stop the loops, run the teardowns, release the board. Safe to call twice.

        No thread of this device outlives it.

        Raises:
            TimedOutError: a background thread did not end within ``close_timeout``.
            DeviceExceptionError: a teardown raised on the board (the first failure;
                every failure is in its ``teardown_errors`` and notes).
            RuntimeStoppedError: the runtime stopped first, so the teardowns could not
                run.
        """
        with self._state_lock:
            if self.closing.is_set() or not self._opened:
                self.closing.set()
                return
            self.closing.set()
        errors: list[BaseException] = []
        if self._unregister is not None:
            with contextlib.suppress(Exception):
                self._unregister()
        deadline = time.monotonic() + self._join_timeout()
        self._loops.join(deadline)
        try:
            if self._rt is not None and not self._rt.running:
                errors.append(
                    RuntimeStoppedError(
                        f"{self.key}: the runtime stopped before close; teardowns "
                        f"{', '.join(t.name for t in self._teardowns) or '(none)'} did not run",
                        device=self.key,
                    )
                )
            elif self._teardowns:
                errors += self._run_teardowns()
        finally:
            release_error = self._release_board()
            if release_error is not None:
                errors.append(release_error)
        self._loops.join(deadline)
        alive = self._loops.alive()
        if alive:
            errors.append(
                TimedOutError(
                    f"{self.key}: background loop(s) {', '.join(alive)} did not end in time",
                    device=self.key,
                    loops=alive,
                )
            )
        if errors:
            raise aggregate(errors[0], errors[1:])

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _runtime_running(self) -> bool:
        return self._rt is None or self._rt.running

    def _on_runtime_stop(self) -> None:
        self.close()

    def _release_board(self) -> BaseException | None:
        self._sync.unregister_script()
        board, self._board = self._board, None
        if board is None:
            return None
        try:
            board.release()
        except Exception as e:
            if self._rt is not None and not self._rt.running:
                return None  # the runtime's stop released every lease
            self._log.warning("release failed: {}", e)
            return e
        return None

    def _join_timeout(self) -> float:
        if self.close_timeout is not None:
            return self.close_timeout
        longest = max(
            [self.task_timeout]
            + [t.timeout_ms / 1000 for t in self._tasks.values() if t.timeout_ms]
        )
        return longest + 5.0

    # --- connection ----------------------------------------------------------------------

    def _board_handle(self) -> BoardLike:
        board = self._board
        if board is None or self.closing.is_set():
            raise NotOpenedError(f"{self.key}: the device is not open", device=self.key)
        return board

    def _check_open(self) -> BoardLike:
        if self.closing.is_set() or not self._opened:
            raise NotOpenedError(
                f"{self.key}: the device is {'closed' if self.closing.is_set() else 'not open'}",
                device=self.key,
            )
        return self._board_handle()

    def _ensure_synced(self) -> int:
        """Send definitions and run setups if the board's connection changed; the epoch."""
        return self._sync.ensure(self._board_handle(), wait=self.lock_timeout)

    def _run_teardowns(self) -> list[BaseException]:
        board = self._board
        return [] if board is None else self._sync.run_teardowns(board)

    def _timeout(self, timeout_ms: int | None) -> float:
        return self._sync.timeout(timeout_ms)

    # --- calls -----------------------------------------------------------------------------

    def _invoke(
        self,
        code: str,
        *,
        timeout: float,
        exclusive: bool,
        what: str,
        parse: Callable[[str], T],
        retry_lost: bool = True,
    ) -> T:
        """Run ``code`` (re-syncing first if needed) and parse its output.

        An exclusive call runs alone on the board: the board's operation limiter sees
        to it (``exec(..., exclusive=True)``); the device holds no lock of its own.

        A call refused because the board was reset (DeviceResetError) is retried once
        after a re-sync: none of it ran.  So is, with ``retry_lost``, a call that raised
        NameError on a board whose definitions are gone (the sentinel is missing): the
        call's function itself was missing, so none of it ran either.  Raw code (exec,
        a setup run by hand) is not retried that way: part of it may have run.
        """
        retried = False
        while True:
            board = self._check_open()
            epoch = self._ensure_synced()
            try:
                out = board.exec(code, timeout=timeout, exclusive=exclusive)
            except DeviceResetError:
                if retried:
                    raise
                self._log.info("{}: board was reset; reconnecting", what)
            except DeviceExceptionError as e:
                if (
                    retried
                    or not retry_lost
                    or e.exc_name != "NameError"
                    or not self._sync.definitions_lost(board)
                ):
                    raise
                self._log.info("{}: board lost its definitions; re-sending", what)
            else:
                return parse(out)
            retried = True
            self._sync.invalidate(epoch)

    def _call_task(
        self, spec: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._check_open()
        call = spec.call_source(*args, **kwargs)
        cached = self._cached(spec, call)
        if cached is not None:
            return cached[0]
        code = f"print('\\x1eR',repr({call}),'\\x1f',sep='')"

        def parse(out: str) -> Any:
            return single_result(out, task=spec.name, device=self.key, log=self._log)

        try:
            value = self._invoke(
                code,
                timeout=self._timeout(spec.timeout_ms),
                exclusive=spec.exclusive,
                what=f"{self.key}.{spec.name}",
                parse=parse,
            )
        except ActorHwError as e:
            e.add_note(f"in task {spec.name} of {type(self).__name__}")
            raise
        self._store(spec, call, value)
        return value

    def _cached(self, spec: Task[Any, Any], call: str) -> tuple[Any] | None:
        return self._cache.get(spec.name, call) if spec.cache_ms else None

    def _store(self, spec: Task[Any, Any], call: str, value: Any) -> None:
        if spec.cache_ms:
            self._cache.put(spec.name, call, value, spec.cache_ms)

    def clear_cache(self) -> None:
        """Forget every cached task result (done at every re-sync)."""
        self._cache.clear()

    def _run_snippet(self, spec: Snippet) -> None:
        """Run a setup's or teardown's body on the board again (``dev.init()``)."""
        self._check_open()
        self._invoke(
            spec.source,
            timeout=self._timeout(spec.timeout_ms),
            exclusive=False,
            what=f"{self.key}.{spec.name}",
            parse=lambda _out: None,
            retry_lost=False,
        )

    def exec(self, code: str, *, timeout: float | None = None) -> str:
        """Run raw MicroPython on the board (after the definitions and setups).

        Args:
            code: the source.
            timeout: deadline in s (default ``task_timeout``).

        Returns:
            What the code printed.
        """
        return self._invoke(
            code,
            timeout=timeout or self.task_timeout,
            exclusive=False,
            what=f"{self.key}.exec",
            parse=lambda out: out,
            retry_lost=False,
        )

    # --- batches ---------------------------------------------------------------------------

    def batching(self) -> Batch:
        """A [`Batch`][actorhw.programming.batch.Batch]: add calls with ``b.call(dev.task, *args)``;
        leaving the
        ``with`` block sends them all in one round trip."""
        self._check_open()
        return Batch(self)

    def batch(self, calls: Iterable[tuple[Any, ...]]) -> list[Outcome[Any]]:
        """Run several task calls in one round trip; outcomes come back in order.

        Args:
            calls: ``(dev.task, args)`` or ``(dev.task, args, kwargs)`` tuples, e.g.
                ``[(dev.status, ()), (dev.collect, (3, 10))]``.

        Returns:
            One [`Outcome`][actorhw.programming.batch.Outcome] per call; a call that raised on the
            board has its own ``error`` (``outcome.result()`` raises it), the others are unaffected.

        Raises:
            InvalidArgumentError: a malformed call (checked before anything is sent).
            TimedOutError, DeviceExceptionError: the batch as a whole failed.
        """
        b = self.batching()
        b.add_all(calls)
        return b.run()

    def _run_batch(self, pending: list[Pending]) -> None:
        self._check_open()
        send: list[Pending] = []
        for p in pending:
            cached = self._cached(p.spec, p.call)
            if cached is not None:
                p.outcome.value, p.outcome.done = cached[0], True
            else:
                send.append(p)
        if not send:
            return
        code = "\n".join(helper_call(p.call) for p in send)
        timeout = sum(self._timeout(p.spec.timeout_ms) for p in send)
        exclusive = any(p.spec.exclusive for p in send)

        def parse(out: str) -> None:
            fill_outcomes(send, out, device=self.key, log=self._log)

        try:
            self._invoke(
                code,
                timeout=timeout,
                exclusive=exclusive,
                what=f"{self.key} batch of {len(send)}",
                parse=parse,
            )
        except BaseException as e:
            for p in send:
                p.outcome.done, p.outcome.error = True, e
            raise
        for p in send:
            if p.outcome.error is None:
                self._store(p.spec, p.call, p.outcome.value)

    # --- background loops ----------------------------------------------------------------

    @property
    def background_errors(self) -> dict[str, int]:
        """Exceptions counted so far, per background loop."""
        return self._loops.errors()

    def background_status(self) -> dict[str, BackgroundStatus]:
        """Runs, errors, last error and liveness of every background loop."""
        return self._loops.status()

    def wait_background(self, name: str, *, runs: int, timeout: float) -> bool:
        """Wait until loop ``name`` finished at least ``runs`` runs; False on timeout.

        Raises:
            InvalidArgumentError: no loop of that name runs.
        """
        return self._loops.wait(name, runs=runs, timeout=timeout)
