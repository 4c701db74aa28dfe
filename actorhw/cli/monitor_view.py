"""The monitor's screen: a summary row per board, then the devices, fitted to the terminal.

`MonitorView` keeps the latest rows and a scroll offset and renders what fits
the terminal's height and width (owners and errors are cut with an ellipsis, never
wrapped, so each device is one line at 80 columns). `KeyReader` reads keys from
a terminal without waiting for Enter: ``q`` quits; arrows, ``j``/``k``, space,
PgUp/PgDn, ``g``/``G`` scroll.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from typing import Any, TextIO

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

#: Lines the view needs besides the device rows and two per board (its summary row and
#: the line naming it above its devices): title, headers, rules, footer, one spare.
CHROME = 7

#: The widest state name (DISCONNECTED): states are never cut.
STATE_WIDTH = 12

KEYS = {
    "q": "quit", "Q": "quit", "\x1b[B": "down", "j": "down", "\x1b[A": "up", "k": "up",
    " ": "page_down", "\x1b[6~": "page_down", "b": "page_up", "\x1b[5~": "page_up",
    "g": "home", "\x1b[H": "home", "G": "end", "\x1b[F": "end",
}  # fmt: skip


def owners_text(count: int, owners: list[str]) -> str:
    """``"2: web, scenario:smoke"``; ``"0"`` when nobody holds it."""
    return f"{count}: {', '.join(owners)}" if owners else str(count)


def memory_text(memory: dict[str, Any] | None) -> str:
    """Free heap, of the total where known: ``"8336/10048 B"``; ``"-"`` if unknown."""
    if not memory or memory.get("free") is None:
        return "-"
    total = memory.get("total")
    return f"{memory['free']}" + (f"/{total}" if total else "") + " B"


def _state(state: str) -> Text:
    style = "red" if state in ("ERROR", "DISCONNECTED") else "green" if state == "ACTIVE" else ""
    return Text(state, style=style)


class MonitorView:
    """What the monitor shows now, and where the user has scrolled to."""

    def __init__(self) -> None:
        self.boards: list[dict[str, Any]] = []
        self.devices: list[dict[str, Any]] = []
        self.offset = 0
        self.at = ""

    def update(self, boards: list[dict[str, Any]], devices: list[dict[str, Any]]) -> None:
        self.boards, self.devices = boards, devices
        self.at = time.strftime("%H:%M:%S")

    def visible(self, height: int) -> int:
        """How many device rows fit a terminal of ``height`` lines."""
        return max(1, height - CHROME - 2 * len(self.boards))

    def key(self, action: str, height: int) -> None:
        """Scroll by a key's action (``down``, ``page_up``...)."""
        page = self.visible(height)
        step = {"down": 1, "up": -1, "page_down": page, "page_up": -page}.get(action, 0)
        if action == "home":
            self.offset = 0
        elif action == "end":
            self.offset = len(self.devices)
        else:
            self.offset += step
        self.offset = max(0, min(self.offset, max(0, len(self.devices) - page)))

    def render(self, width: int, height: int | None = None) -> RenderableType:
        """The boards table, the devices that fit ``height`` (all if None), a footer."""
        shown = self.devices
        if height is not None:
            page = self.visible(height)
            self.offset = max(0, min(self.offset, max(0, len(self.devices) - page)))
            shown = self.devices[self.offset : self.offset + page]
        parts: list[RenderableType] = [self._boards_table(width), self._devices_table(width, shown)]
        if height is not None:
            first = self.offset + 1 if shown else 0
            parts.append(
                Text(
                    f"devices {first}-{self.offset + len(shown)} of {len(self.devices)}"
                    "  ·  ↑↓ PgUp PgDn scroll  ·  q quits",
                    style="dim",
                    no_wrap=True,
                    overflow="ellipsis",
                )
            )
        return Group(*parts)

    def _boards_table(self, width: int) -> Table:
        table = Table(
            title=f"boards at {self.at}", box=box.SIMPLE_HEAD, show_edge=False,
            padding=(0, 1),
        )  # fmt: skip
        table.add_column("board", no_wrap=True, overflow="ellipsis", min_width=10, max_width=18)
        table.add_column("state", no_wrap=True, min_width=STATE_WIDTH)
        table.add_column("devices by state", no_wrap=True, overflow="ellipsis")
        table.add_column("held", no_wrap=True, justify="right", min_width=4)
        table.add_column("heap free", no_wrap=True, overflow="ellipsis")
        for b in self.boards:
            states = ", ".join(f"{n} {s}" for s, n in b["states"].items())
            table.add_row(
                b["board"] + (" (quarantined)" if b["quarantined"] else ""),
                _state(b["state"]),
                states or "no devices",
                str(b["held"]),
                memory_text(b["memory"]),
            )
        return table

    def _devices_table(self, width: int, rows: list[dict[str, Any]]) -> Table:
        """One line per device: its name under its board's (a line of its own when the
        board changes), so the width goes to the owners and the last error."""
        wide = width >= 100
        table = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, padding=(0, 1))
        table.add_column("device", no_wrap=True, overflow="ellipsis", ratio=2, min_width=8)
        if wide:
            table.add_column("kind", no_wrap=True)
        table.add_column("state", no_wrap=True, min_width=STATE_WIDTH)
        table.add_column("owners", no_wrap=True, overflow="ellipsis", ratio=4)
        table.add_column("last error", no_wrap=True, overflow="ellipsis", ratio=2)
        board = ""
        for row in rows:
            mine, _, name = row["device"].partition(".")
            if mine != board:
                board = mine
                table.add_row(Text(board, style="bold", overflow="ellipsis", no_wrap=True))
            cells: list[Any] = [f" {name}"]
            if wide:
                cells.append(row["kind"])
            cells += [
                _state(row["state"]),
                owners_text(row["owners_count"], row["owners"]),
                row["last_error"] or "",
            ]
            table.add_row(*cells)
        return table


def board_rows(
    statuses: list[Any], devices: list[dict[str, Any]], memory: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One summary row per board: its state, device states by count, devices held."""
    out = []
    for status in statuses:
        mine = [d for d in devices if d["device"].partition(".")[0] == status.board]
        out.append(
            {
                "board": status.board,
                "state": status.state.name,
                "quarantined": bool(getattr(status, "quarantined", False)),
                "restarts": getattr(status, "restarts", 0),
                "devices": len(mine),
                "states": dict(collections.Counter(d["state"] for d in mine).most_common()),
                "held": sum(1 for d in mine if d["owners_count"]),
                "memory": memory.get(status.board),
            }
        )
    return out


class KeyReader:
    """Keys from a terminal, one action at a time (see `KEYS`), read on a thread."""

    def __init__(self, stream: TextIO = sys.stdin) -> None:
        self._fd = stream.fileno()
        self._stop = threading.Event()
        self.wake = threading.Event()
        self._actions: collections.deque[str] = collections.deque()
        self._thread = threading.Thread(target=self._read, name="monitor-keys", daemon=True)
        self._saved: Any = None

    @staticmethod
    def usable(stream: TextIO = sys.stdin) -> bool:
        """Whether ``stream`` is a terminal keys can be read from."""
        try:
            return os.isatty(stream.fileno())
        except (OSError, ValueError):
            return False

    def __enter__(self) -> KeyReader:
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)
        termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def actions(self) -> Iterator[str]:
        """The actions of the keys pressed since the last call."""
        self.wake.clear()
        while self._actions:
            yield self._actions.popleft()

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if not ready:
                continue
            with contextlib.suppress(OSError):
                data = os.read(self._fd, 16).decode("utf-8", "replace")
                action = KEYS.get(data) or KEYS.get(data[:1]) if data else "quit"
                if action:
                    self._actions.append(action)
                    self.wake.set()
