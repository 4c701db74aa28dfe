"""A MicroPython board on a serial port: runtime vs link vs bare pyserial vs mpremote.

One MicroPython 1.29 unix-port board on a socat pty (tests/unix_port.py), shared by every
client, which take turns call by call (in a fresh random order every round) so that they
see the same board, machine load and moment.

- ``print(1+1)``: the runtime (a leased BOARD handle), the bare link
  (``RawReplLink.exec``), bare pyserial doing the same exact exchange (code, Ctrl-D and
  the Ctrl-A trailer whose banner marks the answer's true end), bare pyserial doing the
  naive one (code, Ctrl-D, read to the first ``\\x04>``: wrong when the output holds
  ``\\x04``), and mpremote.
- a 4 KiB snippet: the link (raw-paste), bare pyserial raw-paste (naive end), mpremote
  (raw-paste).
- ``fs cp`` of a 32 KiB file: actorhw's ``FileSystem`` through the runtime's BOARD handle
  (what ``actorhw fs cp`` does, hash-checked) vs mpremote's ``fs_writefile``.

Targets: link <= 1.1x bare pyserial (same exchange) for ``print(1+1)``; 4 KiB through
raw-paste <= 1.2x bare and faster than mpremote; fs cp at least as fast as mpremote's.
The runtime's ratio and the price of exactness (exact vs naive bare) are printed too.
Exit 1 on a MISS, 2 when the board cannot start.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import serial

from actorhw import Runtime
from actorhw.api.handles import Board
from actorhw.api.runtime import BoardSpec
from actorhw.links import RawReplLink
from actorhw.links.mpy_fs import FileSystem

SMALL = b"print(1+1)"
BANNER = b"raw REPL; CTRL-B to exit\r\n>"


def _unix_port() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "unix_port.py"
    spec = importlib.util.spec_from_file_location("unix_port", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_snippet(size: int = 4096) -> bytes:
    """``size`` bytes of code that prints 4096."""
    line = b"total += 1  # one more line of a four kibibyte snippet\n"
    tail = b"print(4096 + total * 0)\n"
    code = b"total = 0\n"
    while len(code) + len(line) + len(tail) + 2 <= size:
        code += line
    code += b"#" * (size - len(code) - len(tail) - 1) + b"\n" + tail
    assert len(code) == size, len(code)
    return code


class Clients:
    """Every client on the one board; each leaves the line clean after its call."""

    def __init__(self, path: str, rt: Runtime) -> None:
        self.rt = rt
        self.board = rt.lease(Board, rt.ids("mp").BOARD, owner="bench").__enter__()
        self.link = RawReplLink.open(path, timeout=10, exclusive=False, name="bench")
        self.bare = serial.Serial(path, timeout=2)
        from mpremote.transport_serial import SerialTransport

        self.mp = SerialTransport(path, exclusive=False)
        self.mp.enter_raw_repl(soft_reset=False)  # leaves the '>' unread
        self.mp_has_prompt = True  # a '>' waits on the line for mpremote
        self._mp_prompt_consumed()  # others use the line too: one is prepared per call

    def close(self) -> None:
        self._mp_prompt_consumed()
        self.mp.close()
        self.bare.close()
        self.link.close()
        self.board.__exit__(None, None, None)

    # --- mpremote reads the previous call's '>' at the start of the next ---------------

    def _mp_prompt(self) -> None:
        if self.mp_has_prompt:
            return
        self.bare.write(b"\x01")  # untimed: the banner, whose '>' mpremote then reads
        head = self.bare.read(len(BANNER) - 1)
        if head != BANNER[:-1]:
            raise RuntimeError(f"mpremote prep: unexpected {head!r}")
        deadline = time.monotonic() + 2
        while self.bare.in_waiting < 1:  # the '>' is on its way; no sleep
            if time.monotonic() > deadline:
                raise RuntimeError("mpremote prep: no prompt")
        self.mp_has_prompt = True

    def _mp_prompt_consumed(self) -> None:
        if not self.mp_has_prompt:
            return
        if self.bare.read(1) != b">":
            raise RuntimeError("mpremote: no trailing prompt")
        self.mp_has_prompt = False

    # --- one timed call each ---------------------------------------------------------

    def runtime(self, code: bytes, expected: bytes) -> float:
        t0 = time.perf_counter()
        out = self.board.exec(code.decode(), timeout=10)
        elapsed = time.perf_counter() - t0
        _check("runtime", out.encode().replace(b"\r\n", b"\n"), expected)
        return elapsed

    def link_exec(self, code: bytes, expected: bytes) -> float:
        t0 = time.perf_counter()
        result = self.link.exec(code, timeout=10)
        elapsed = time.perf_counter() - t0
        _check("link", result.stdout.replace(b"\r\n", b"\n"), expected)
        return elapsed

    def _read_until(self, end: bytes) -> bytes:
        """The fastest plain loop: all that is waiting per read (pyserial's own
        read_until reads a byte at a time)."""
        bare, data = self.bare, b""
        while not data.endswith(end):
            data += bare.read(bare.in_waiting or 1)
        return data

    def bare_exact(self, code: bytes, expected: bytes) -> float:
        t0 = time.perf_counter()
        self.bare.write(code + b"\x04\x01")
        data = self._read_until(b"\x04>" + BANNER)
        elapsed = time.perf_counter() - t0
        _check("bare exact", data[2 : data.index(b"\x04")].replace(b"\r\n", b"\n"), expected)
        return elapsed

    def bare_naive(self, code: bytes, expected: bytes) -> float:
        t0 = time.perf_counter()
        self.bare.write(code + b"\x04")
        data = self._read_until(b"\x04>")
        elapsed = time.perf_counter() - t0
        _check("bare naive", data[2 : data.index(b"\x04")].replace(b"\r\n", b"\n"), expected)
        return elapsed

    def bare_paste(self, code: bytes, expected: bytes) -> float:
        """Raw-paste as the MicroPython docs describe it, reading to the naive end."""
        bare = self.bare
        t0 = time.perf_counter()
        bare.write(b"\x05A\x01")
        head = bare.read(4)
        window = remain = int.from_bytes(head[2:4], "little")
        sent = 0
        while sent < len(code):
            while remain == 0 or bare.in_waiting:
                if bare.read(1) == b"\x01":
                    remain += window
            piece = code[sent : sent + remain]
            bare.write(piece)
            sent, remain = sent + len(piece), remain - len(piece)
        bare.write(b"\x04")
        # [\x01...] \x04 (the acknowledgement), then stdout \x04 stderr \x04>
        answer = self._read_until(b"\x04>")
        data = answer[answer.index(b"\x04") + 1 :]
        elapsed = time.perf_counter() - t0
        _check("bare paste", data[: data.index(b"\x04")].replace(b"\r\n", b"\n"), expected)
        return elapsed

    def mpremote(self, code: bytes, expected: bytes) -> float:
        self._mp_prompt()
        t0 = time.perf_counter()
        out = self.mp.exec(code)
        elapsed = time.perf_counter() - t0
        self.mp_has_prompt = True  # mpremote leaves its '>' for its next call
        self._mp_prompt_consumed()
        _check("mpremote", out.replace(b"\r\n", b"\n"), expected)
        return elapsed


def _check(client: str, got: bytes, expected: bytes) -> None:
    if got != expected:
        raise RuntimeError(f"{client}: wrong answer {got[:80]!r}, expected {expected[:80]!r}")


def _interleave(
    rounds: int, clients: dict[str, Callable[[], float]], warmup: int = 3
) -> dict[str, list[float]]:
    names = list(clients)
    for _ in range(warmup):
        for name in names:
            clients[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    # A fresh order every round: each client follows each other one as often (a fixed
    # rotation would keep the same neighbours, and the runtime's threads, still busy
    # after its call, would always slow the same next client).
    order = random.Random(1)
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            samples[name].append(clients[name]())
    return samples


def _table(title: str, samples: dict[str, list[float]], floor_name: str) -> dict[str, float]:
    floor = statistics.median(samples[floor_name])
    print(title)
    print(f"{'client':<40} {'calls':>5} {'median ms':>10} {'p95 ms':>10} {'vs ' + floor_name:>12}")
    medians = {}
    for name, values in samples.items():
        values = sorted(values)
        median = statistics.median(values)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        medians[name] = median
        print(
            f"{name:<40} {len(values):>5} {median * 1e3:>10.3f} {p95 * 1e3:>10.3f} "
            f"{median / floor:>11.2f}x"
        )
    print()
    return medians


def _fs_round(clients: Clients, folder: str, data: bytes, n: int) -> dict[str, float]:
    fs = FileSystem(lambda code, t: clients.board.exec(code, timeout=t), name="bench")
    target = f"{folder}/actorhw-{n}.bin"
    t0 = time.perf_counter()
    fs.put(target, data, timeout=60)
    ours = time.perf_counter() - t0
    clients._mp_prompt()
    t0 = time.perf_counter()
    clients.mp.fs_writefile(f"{folder}/mpremote-{n}.bin", data)
    theirs = time.perf_counter() - t0
    clients.mp_has_prompt = True
    clients._mp_prompt_consumed()
    for name in (target, f"{folder}/mpremote-{n}.bin"):
        if Path(name).read_bytes() != data:
            raise RuntimeError(f"{name}: the stored file differs from what was sent")
    return {"actorhw fs put (hash-checked)": ours, "mpremote fs_writefile": theirs}


def main(argv: Sequence[str] | None = None) -> int:
    """Start one board, measure, print the tables; 0 when every target is met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=400, help="timed print(1+1) per client")
    parser.add_argument("--snippet-calls", type=int, default=60, help="timed 4 KiB snippets")
    parser.add_argument("--files", type=int, default=5, help="32 KiB copies per client")
    parser.add_argument("--quick", action="store_true", help="60 calls, 10 snippets, 2 files")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.snippet_calls, args.files = 60, 10, 2
    unix_port = _unix_port()
    reason = unix_port.unavailable()
    if reason is not None:
        print(f"cannot benchmark: {reason}", file=sys.stderr)
        return 2
    folder = tempfile.mkdtemp(prefix="bench-serial-")
    path = Path(folder) / "ttyMP"
    # No newline translation on the pty: mpremote insists on the banner's \r\n.
    pid = unix_port.start(path, heap="256K", onlcr=False)
    try:
        spec = BoardSpec("micropython", "mp", port=str(path), options={"exclusive": False})
        with Runtime.start(boards=[spec]) as rt:
            clients = Clients(str(path), rt)
            try:
                results = _measure(clients, args, folder)
            finally:
                clients.close()
    finally:
        unix_port.kill(pid)
    return _report(results, args)


def _measure(clients: Clients, args: argparse.Namespace, folder: str) -> dict[str, Any]:
    small_out, snippet = b"2\n", make_snippet()
    snippet_out = b"4096\n"
    small = _interleave(
        args.calls,
        {
            "runtime Board.exec": lambda: clients.runtime(SMALL, small_out),
            "RawReplLink.exec": lambda: clients.link_exec(SMALL, small_out),
            "bare pyserial, same exchange": lambda: clients.bare_exact(SMALL, small_out),
            "bare pyserial, naive end": lambda: clients.bare_naive(SMALL, small_out),
            "mpremote SerialTransport.exec": lambda: clients.mpremote(SMALL, small_out),
        },
    )
    big = _interleave(
        args.snippet_calls,
        {
            "RawReplLink.exec (raw-paste)": lambda: clients.link_exec(snippet, snippet_out),
            "bare pyserial raw-paste": lambda: clients.bare_paste(snippet, snippet_out),
            "mpremote exec (raw-paste)": lambda: clients.mpremote(snippet, snippet_out),
        },
        warmup=2,
    )
    data = os.urandom(32 * 1024)
    files: dict[str, list[float]] = {}
    for n in range(args.files):
        for name, seconds in _fs_round(clients, folder, data, n).items():
            files.setdefault(name, []).append(seconds)
    return {"small": small, "big": big, "files": files, "paste": clients.link.raw_paste_sends}


def _report(results: dict[str, Any], args: argparse.Namespace) -> int:
    print("MicroPython 1.29 unix port on a socat pty (tests/unix_port.py)")
    print()
    small = _table(
        f"print(1+1), interleaved, {args.calls} timed calls each",
        results["small"],
        "bare pyserial, same exchange",
    )
    big = _table(
        f"4 KiB snippet, interleaved, {args.snippet_calls} calls each",
        results["big"],
        "bare pyserial raw-paste",
    )
    print(f"32 KiB file, {args.files} copies each")
    rates = {}
    for name, values in results["files"].items():
        median = statistics.median(values)
        rates[name] = 32 / median
        print(f"{name:<40} {median * 1e3:>10.1f} ms  {rates[name]:>8.1f} KiB/s")
    print()
    link, exact = small["RawReplLink.exec"], small["bare pyserial, same exchange"]
    naive = small["bare pyserial, naive end"]
    print(f"runtime / bare (same exchange): {small['runtime Board.exec'] / exact:.2f}x")
    print(f"link / bare naive end:          {link / naive:.2f}x")
    print(f"price of exactness (exact / naive bare): {exact / naive:.2f}x")
    print(f"execs the link sent through raw-paste: {results['paste']}")
    paste, bare_paste = big["RawReplLink.exec (raw-paste)"], big["bare pyserial raw-paste"]
    mp_paste = big["mpremote exec (raw-paste)"]
    ours, theirs = rates["actorhw fs put (hash-checked)"], rates["mpremote fs_writefile"]
    checks = [
        ("link <= 1.1x bare (print(1+1), same exchange)", link <= 1.1 * exact, link / exact),
        ("4 KiB raw-paste <= 1.2x bare", paste <= 1.2 * bare_paste, paste / bare_paste),
        ("4 KiB raw-paste faster than mpremote", paste < mp_paste, paste / mp_paste),
        ("fs cp 32 KiB at least mpremote's rate", ours >= theirs, ours / theirs),
        ("the snippets went through raw-paste", results["paste"] > 0, float(results["paste"])),
    ]
    print()
    print("targets")
    for label, ok, value in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {label:<48} {value:.2f}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
