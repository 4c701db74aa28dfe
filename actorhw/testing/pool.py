"""The boards one test process holds, and how it gets them.

A process (a pytest session, or one pytest-xdist worker) *holds* a board while it has
the board's lock (actorhw.testing.locks) and a running Runtime with the board up.  A test
gets a board this process already holds, else takes a free one, else waits for one
within the lease timeout.  Between tests a held board that another process waits for is
given back (its Runtime stops: QEMU is powered off, a serial port closed), so workers
share a lab without ever using one board at once.  A board that failed to come up
fails every later test that needs it at once, with the same error.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import attrs

from actorhw.api.runtime import Runtime
from actorhw.core.errors import ActorHwError, TimedOutError
from actorhw.testing.locks import BoardLock
from actorhw.testing.options import SelectedBoard, Settings

#: Seconds between two looks at a busy board's lock while waiting for it.
POLL_INTERVAL = 0.05


@attrs.define(eq=False)
class Holding:
    """Boards this process holds: their locks and the Runtime they run in."""

    boards: tuple[SelectedBoard, ...]
    locks: tuple[BoardLock, ...]
    runtime: Runtime
    pinned: bool
    """Held to the end of the session (the session runtime), never given back early."""

    def release(self) -> None:
        """Stop the runtime, then give the locks back."""
        try:
            self.runtime.stop()
        finally:
            for lock in self.locks:
                lock.release()


class BoardPool:
    """The boards of one test process; one per session (per xdist worker)."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker: str = "main",
        run_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.holder = f"{worker} (pid {os.getpid()})"
        base = Path(tempfile.gettempdir()) / f"actorhw-locks-{os.getuid()}"
        run = run_id or uuid.uuid4().hex
        self._run_dir = settings.lock_dir or base / f"run-{run}"
        self._port_dir = settings.lock_dir or base / "ports"
        self._holdings: list[Holding] = []
        self._failed: dict[str, ActorHwError] = {}
        self._in_use: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def boards(self) -> tuple[SelectedBoard, ...]:
        """Every selected board."""
        return self.settings.boards

    def lock_of(self, board: SelectedBoard) -> BoardLock:
        """The lock of ``board``: per port on the machine, else per test run."""
        if board.port is not None:
            return BoardLock(self._port_dir, board.port, holder=self.holder)
        return BoardLock(self._run_dir, board.name, holder=self.holder)

    def held(self) -> list[SelectedBoard]:
        """The boards this process holds now."""
        return [b for h in self._holdings for b in h.boards]

    # --- getting boards -----------------------------------------------------------------

    def take(self, candidates: Sequence[SelectedBoard]) -> tuple[Holding, SelectedBoard]:
        """One of ``candidates`` for a test: held already, free, or waited for.

        Mark it in use until ``done``.  TimedOutError names who holds the boards
        when none is free within the lease timeout; a board that failed to come up
        raises its error again.
        """
        if not candidates:
            raise ValueError("no candidate boards")
        deadline = time.monotonic() + self.settings.lease_timeout
        for holding in self._holdings:
            for board in holding.boards:
                if board in candidates and board.name not in self._in_use:
                    self._in_use.add(board.name)
                    return holding, board
        free = [b for b in candidates if b.name not in self._in_use]
        locks = {b.name: self.lock_of(b) for b in free}
        self._raise_if_all_failed(free)
        try:
            waited = False
            while True:
                for board in free:
                    if board.name in self._failed:
                        continue
                    lock = locks[board.name]
                    if lock.my_turn() and lock.try_acquire():
                        holding = self._start([board], [locks[board.name]], pinned=False)
                        self._in_use.add(board.name)
                        return holding, board
                self._raise_if_all_failed(free)
                if not waited:
                    # Waiting while holding boards another waiter may need deadlocks:
                    # give back every idle board first.
                    self.give_back(only_wanted=False)
                    for lock in locks.values():
                        lock.want()
                    waited = True
                left = deadline - time.monotonic()
                if left <= 0 or not free:
                    raise self._busy(candidates, locks)
                self._stop.wait(min(POLL_INTERVAL, left))
        finally:
            for lock in locks.values():
                lock.unwant()

    def take_all(self) -> Runtime:
        """A Runtime over every selected board, held to the end of the session."""
        for holding in self._holdings:
            if holding.pinned:
                return holding.runtime
        if not self.boards:
            raise ValueError("no boards selected")
        self.give_back(only_wanted=False)
        if self._holdings:
            raise ActorHwError(
                "boards in use by this test cannot join the session runtime: "
                f"{', '.join(b.name for b in self.held())}"
            )
        self._raise_if_all_failed(self.boards, every=False)
        deadline = time.monotonic() + self.settings.lease_timeout
        locks = [self.lock_of(b) for b in self.boards]
        try:
            for lock in locks:
                lock.want()
            while not all(lock.my_turn() and lock.try_acquire() for lock in locks):
                left = deadline - time.monotonic()
                if left <= 0:
                    by_name = {b.name: lk for b, lk in zip(self.boards, locks, strict=True)}
                    raise self._busy(self.boards, by_name)
                self._stop.wait(min(POLL_INTERVAL, left))
        except BaseException:
            for lock in locks:
                lock.release()
            raise
        finally:
            for lock in locks:
                lock.unwant()
        return self._start(list(self.boards), locks, pinned=True).runtime

    def done(self, board: SelectedBoard) -> None:
        """The test that took ``board`` ended; give boards back that others wait for."""
        self._in_use.discard(board.name)
        self.give_back(only_wanted=True)

    def give_back(self, *, only_wanted: bool) -> None:
        """Release idle, unpinned holdings (only those another process waits for)."""
        for holding in list(self._holdings):
            if holding.pinned or any(b.name in self._in_use for b in holding.boards):
                continue
            if only_wanted and not any(lock.wanted() for lock in holding.locks):
                continue
            self._holdings.remove(holding)
            holding.release()

    def close(self) -> None:
        """Release everything this process holds."""
        self._stop.set()
        errors = []
        for holding in self._holdings:
            try:
                holding.release()
            except Exception as e:  # stop them all, then report
                errors.append(e)
        self._holdings.clear()
        if errors:
            raise errors[0]

    # --- helpers ------------------------------------------------------------------------

    def _start(
        self, boards: list[SelectedBoard], locks: Sequence[BoardLock], *, pinned: bool
    ) -> Holding:
        try:
            runtime = Runtime.start(
                [b.spec() for b in boards],
                boards_dirs=self.settings.boards_dirs,
                drivers_dirs=self.settings.drivers_dirs,
                timeout=self.settings.bringup_timeout,
            )
        except ActorHwError as e:
            for board in boards:
                self._failed[board.name] = e
            for lock in locks:
                lock.release()
            raise
        except BaseException:
            for lock in locks:
                lock.release()
            raise
        holding = Holding(tuple(boards), tuple(locks), runtime, pinned)
        self._holdings.append(holding)
        return holding

    def _raise_if_all_failed(self, boards: Sequence[SelectedBoard], *, every: bool = True) -> None:
        failed = [b for b in boards if b.name in self._failed]
        if failed and (not every or len(failed) == len(boards)):
            error = self._failed[failed[0].name]
            raise type(error)(
                f"board {failed[0].name} failed to come up earlier in this session: "
                f"{error.message}",
                **error.context,
            )

    def _busy(self, boards: Sequence[SelectedBoard], locks: dict[str, BoardLock]) -> TimedOutError:
        holders = []
        for board in boards:
            if board.name in self._in_use:
                holders.append(f"{board.name} in use by this test")
            elif board.name in locks:
                holders.append(f"{board.name} held by {locks[board.name].who()}")
        return TimedOutError(
            f"no board free within {self.settings.lease_timeout:g} s: " + "; ".join(holders),
            timeout=self.settings.lease_timeout,
            boards=[b.name for b in boards],
        )
