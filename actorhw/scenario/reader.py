"""Validating a parsed scenario file: every error names the file, the line and the key.

`FileReader` builds the errors (`FileReader.fail`) and collects them
(`FileReader.collect`), so one run of the loader reports every problem of a file,
not only the first. The checks shared by the step actions (variables, boards, devices,
lease aliases) live here too; `actorhw.scenario.actions` holds the per-action ones.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from actorhw.api.lab import BoardDirectory
from actorhw.core.errors import ScenarioFileError
from actorhw.core.suggest import did_you_mean
from actorhw.drivers.datafile import LineIndex
from actorhw.drivers.definitions import BoardCatalog
from actorhw.scenario.model import Step

#: The longest deadline a file may give a step or a bring-up, in s (a day).
MAX_TIMEOUT = 86400.0
#: A ``${name}`` variable in a string.
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

KeyPath = tuple[str | int, ...]


class FileReader:
    """Validates one parsed scenario file; every error names file, line and key."""

    def __init__(
        self,
        path: Path,
        text: str,
        catalog: BoardCatalog,
        cluster: BoardDirectory | None = None,
    ) -> None:
        self.path = path
        self.catalog = catalog
        self.cluster = cluster
        """The cluster the scenario runs on (boards named ``host/board``), if any."""
        self.lines = LineIndex(text)
        self.boards: dict[str, str] = {}  # instance -> definition
        self.devices: dict[str, list[str]] = {}  # cluster instance -> its device names
        self.errors: list[ScenarioFileError] = []

    def fail(self, key_path: KeyPath, problem: str) -> ScenarioFileError:
        """The error of ``problem`` at ``key_path`` (raise it, or `note` it)."""
        line = self.lines.line(key_path)
        key = ".".join(map(str, key_path))
        return ScenarioFileError(
            f"{self.path}:{line}: key '{key}': {problem}", file=str(self.path), line=line, key=key
        )

    def note(self, error: ScenarioFileError) -> None:
        """Collect ``error`` and go on checking."""
        self.errors.append(error)

    @contextlib.contextmanager
    def collect(self) -> Iterator[None]:
        """Collect a ScenarioFileError raised inside, and go on after the block."""
        try:
            yield
        except ScenarioFileError as e:
            self.note(e)

    def raise_errors(self) -> None:
        """Raise every collected error as one (the first's file, line and key)."""
        if not self.errors:
            return
        first, *more = sorted(self.errors, key=lambda e: e.line or 0)
        if not more:
            raise first
        listing = "".join(f"\n  {e.message}" for e in more)
        raise ScenarioFileError(
            f"{first.message}\n  and {len(more)} more problem{'s' if len(more) > 1 else ''}:"
            f"{listing}",
            file=first.file,
            line=first.line,
            key=first.key,
            problems=[e.to_dict() for e in (first, *more)],
        )

    def table(self, value: Any, path: KeyPath) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, not {type_name(value)}")
        return value

    def known(self, table: Mapping[str, Any], path: KeyPath, allowed: set[str]) -> None:
        """Note every key of ``table`` that is not ``allowed`` (with the closest names)."""
        for key in table:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.note(
                    self.fail((*path, key), f"unknown key{hint}; expected one of {sorted(allowed)}")
                )

    def string(self, table: Mapping[str, Any], path: KeyPath, *, required: bool = True) -> str:
        value = table.get(str(path[-1]))
        if value is None:
            if required:
                raise self.fail(path[:-1] or path, f"missing required key '{path[-1]}'")
            return ""
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, not {type_name(value)}")
        return value

    def seconds(self, table: Mapping[str, Any], path: KeyPath, default: float) -> float:
        value = table.get(str(path[-1]), default)
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or not 0 < value <= MAX_TIMEOUT:  # also refuses nan
            raise self.fail(
                path,
                f"must be a positive number of seconds, at most {MAX_TIMEOUT:g}, not {value!r}",
            )
        return float(value)

    def integer(self, table: Mapping[str, Any], path: KeyPath, low: int, default: int) -> int:
        value = table.get(str(path[-1]), default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(path, f"must be an int >= {low}, not {value!r}")
        return value

    def count(self, table: Mapping[str, Any], path: KeyPath) -> int:
        """A board entry's ``count``: instances of it, 1..64 (default 1)."""
        count = table.get(str(path[-1]), 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 64:
            raise self.fail(path, f"must be an int in 1..64, not {count!r}")
        return count

    def ident(self, value: Any, path: KeyPath, what: str) -> str:
        if not isinstance(value, str) or not IDENT.match(value):
            raise self.fail(path, f"must be an identifier naming {what}")
        return value

    # --- names a step refers to ---------------------------------------------------------

    def check_vars(self, path: KeyPath, text: str, scope: set[str]) -> None:
        for found in VAR.finditer(text):
            if found.group(1) not in scope:
                raise self.fail(
                    path,
                    f"unknown variable ${{{found.group(1)}}}{did_you_mean(found.group(1), scope)}"
                    f"; defined here: {', '.join(sorted(scope))}",
                )

    def check_board(self, path: KeyPath, board: str) -> None:
        if not VAR.search(board) and board not in self.boards:
            hint = (
                " (on a cluster, boards are named host/board)"
                if self.cluster is not None and "/" not in board
                else ""
            )
            raise self.fail(
                path,
                f"no board instance {board!r}{did_you_mean(board, self.boards)}{hint}; "
                f"this scenario has: {', '.join(self.boards)}",
            )

    def check_device(self, path: KeyPath, ref: str) -> None:
        if VAR.search(ref):
            return
        board, _, device = ref.partition(".")
        self.check_board(path, board)
        names = self.devices.get(board) or [
            d.name for d in self.catalog.get(self.boards[board]).devices
        ]
        if device not in names:
            raise self.fail(
                path,
                f"board {board} has no device {device!r}{did_you_mean(device, names)}; "
                f"valid: {', '.join(names)}",
            )

    def check_on(self, path: KeyPath, on: str, aliases: set[str]) -> None:
        if VAR.search(on):
            return
        if "." in on:
            self.check_device(path, on)
        elif on not in aliases:
            raise self.fail(
                path,
                f"{on!r} is neither a lease alias acquired earlier "
                f"({', '.join(sorted(aliases))}) nor a device 'board.DEVICE'",
            )


def type_name(value: Any) -> str:
    names: dict[type, str] = {dict: "a table", list: "an array", str: "a string"}
    return names.get(type(value), type(value).__name__)


@attrs.define(kw_only=True)
class StepSource:
    """One ``[[steps]]`` table being parsed, and what it may refer to."""

    reader: FileReader
    table: dict[str, Any]
    path: KeyPath
    action: str
    """The step's action (its key in the table)."""
    timeout: float
    """The step's deadline (its ``timeout``, or the default)."""
    scope: set[str]
    """Variables defined so far."""
    aliases: set[str]
    """Lease (and allocation) aliases acquired so far."""
    nested: bool
    """Inside a parallel group."""
    parse_steps: Callable[[list[Any], KeyPath, float, set[str], set[str]], tuple[Step, ...]]
    """Parses nested steps (a parallel group's): raw, path, timeout, scope, aliases."""

    def key(self, name: str) -> KeyPath:
        return (*self.path, name)
