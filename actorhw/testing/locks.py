"""Board locks between test processes (pytest-xdist workers, two sessions on one lab).

A board is held by one process at a time through an exclusive ``flock`` on a file named
after it; the kernel drops the lock when the process dies, so a crashed worker never
keeps a board.  The holder writes who it is into the file, so a waiter that gives up can
say who had the board.  A waiter also leaves a *want* file beside the lock: a holder
that is between tests gives wanted boards back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def lock_key(text: str) -> str:
    """A file-name-safe key for a board name or a port path."""
    return _UNSAFE.sub("_", text).strip("_") or "board"


class BoardLock:
    """An exclusive, non-blocking lock on one board, held by this process."""

    def __init__(self, folder: Path, key: str, *, holder: str) -> None:
        self.path = folder / f"{lock_key(key)}.lock"
        self.holder = holder
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds it."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; whether this process holds it now."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.holder} since {time.strftime('%H:%M:%S')}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def who(self) -> str:
        """Who holds it, as the holder wrote it (``unknown`` if it did not say)."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return text or "unknown"

    # --- wants: a waiter asks the holder to give the board back between tests --------------

    def _want_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.want-{lock_key(self.holder)}")

    def want(self) -> None:
        """Say that this process waits for the board (from now, if not already)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError), self._want_path().open("x") as f:
            f.write(f"{os.getpid()} {time.time()!r}\n")

    def unwant(self) -> None:
        """Stop waiting for the board."""
        with contextlib.suppress(FileNotFoundError):
            self._want_path().unlink()

    def _wants(self) -> dict[str, float]:
        """Live waiters' want files: name -> since when (files of dead processes go)."""
        found = {}
        for path in self.path.parent.glob(f"{self.path.stem}.want-*"):
            try:
                pid_text, since_text = path.read_text(encoding="utf-8").split()
                pid, since = int(pid_text), float(since_text)
            except (OSError, ValueError):
                continue  # being written or removed now
            if not _alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            found[path.name] = since
        return found

    def wanted(self) -> bool:
        """Whether another process waits for the board."""
        mine = self._want_path().name
        return any(name != mine for name in self._wants())

    def my_turn(self) -> bool:
        """Whether this process may take the board when it is free: no other process
        has waited for it longer (first come, first served)."""
        wants = self._wants()
        mine = wants.pop(self._want_path().name, None)
        if not wants:
            return True
        return mine is not None and mine <= min(wants.values())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
