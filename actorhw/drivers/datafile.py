"""Reading the TOML data files of actorhw (board files, scenario files) safely.

`read_toml` refuses, with a typed error naming the file, what would otherwise be a
traceback or a hang: a file over `MAX_FILE_BYTES` (``/dev/zero``), text that is
not UTF-8 (UTF-16, Latin-1), invalid TOML, and values nested deeper than
`MAX_DEPTH`. `LineIndex` finds the line of a key path in one pass over the
text, so naming the line of every error costs linear time, not a rescan per error.
"""

from __future__ import annotations

import codecs
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actorhw.core.errors import ActorHwError

#: The largest data file read, in bytes (a scenario of 40k steps fits).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: The deepest nesting of arrays and tables a data file may have.
MAX_DEPTH = 64

KeyPath = tuple[str | int, ...]
#: Builds the typed error of a file kind: ``(message, file=, line=, key=)``.
ErrorFactory = Callable[..., ActorHwError]

_HEADER = re.compile(r"^(\[\[?)\s*([^\]]+?)\s*\]\]?$")
_KEY = re.compile(r'^"?([A-Za-z0-9_-]+)"?\s*=')
_TRIPLE = re.compile(r'"""|\'\'\'')


def read_toml(path: Path, error: ErrorFactory, what: str) -> tuple[dict[str, Any], str]:
    """The parsed TOML of ``path`` and its text.

    Args:
        path: the file.
        error: the error class of this kind of file (BoardDefinitionError, ...).
        what: the kind of file, for messages (``"a board file"``).

    Raises:
        the ``error`` class: unreadable, too large, not UTF-8, invalid TOML, too deep.
    """

    def fail(problem: str, line: int = 0) -> ActorHwError:
        where = f"{path}:{line}" if line else f"{path}"
        return error(f"{where}: {problem}", file=str(path), line=line, key="")

    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise fail(f"cannot read: {e.strerror or e}") from e
    if len(raw) > MAX_FILE_BYTES:
        raise fail(f"larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit of {what}")
    text = _decode(raw, fail)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = getattr(e, "lineno", None) or _lineno_from_message(str(e))
        raise fail(f"invalid TOML: {e}", line) from e
    except RecursionError:
        raise fail(f"invalid TOML: nested more than {MAX_DEPTH} deep") from None
    if _depth(data) > MAX_DEPTH:
        raise fail(f"arrays and tables are nested more than {MAX_DEPTH} deep")
    return data, text


def _decode(raw: bytes, fail: Callable[[str, int], ActorHwError]) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise fail("is UTF-16 text; save it as UTF-8", 1)
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        byte = raw[e.start : e.start + 1].hex()
        raise fail(
            f"not UTF-8 text (byte 0x{byte} at offset {e.start}); save it as UTF-8", line
        ) from None


def _depth(data: Any) -> int:
    """How deep arrays and tables nest in ``data`` (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _lineno_from_message(message: str) -> int:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else 1


class LineIndex:
    """The line of every table header and key of a TOML text, found in one pass.

    An int in a key path indexes an array of tables (``[[steps]]``), so
    ``("steps", 2, "exec")`` is the ``exec`` key of the third ``[[steps]]``. A path not
    written as such (a key of an inline table) gets its nearest enclosing line.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        table: KeyPath = ()
        arrays: dict[KeyPath, int] = {}
        in_string = False
        for number, raw in enumerate(text.splitlines(), start=1):
            triple = ('"""' in raw or "'''" in raw) and len(_TRIPLE.findall(raw)) % 2 == 1
            if in_string:  # a line inside a multi-line string is data, not TOML
                in_string = not triple
                continue
            line = raw.lstrip()
            if line.startswith("["):
                header = _HEADER.match(line.split("#", 1)[0].rstrip())
                if header:
                    table = _resolve(header, arrays)
                    self._lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                self._lines.setdefault((*table, key.group(1)), number)
            in_string = triple

    def line(self, path: KeyPath) -> int:
        """The 1-based line of ``path``, else of its nearest enclosing path, else 1."""
        for n in range(len(path), 0, -1):
            found = self._lines.get(path[:n])
            if found is not None:
                return found
        return 1


def _resolve(header: re.Match[str], arrays: dict[KeyPath, int]) -> KeyPath:
    parts = [p.strip().strip('"') for p in header.group(2).split(".")]
    resolved: KeyPath = ()
    for i, part in enumerate(parts):
        resolved += (part,)
        if i < len(parts) - 1 and resolved in arrays:
            resolved += (arrays[resolved],)
    if header.group(1) == "[[":
        arrays[resolved] = arrays.get(resolved, -1) + 1
        resolved += (arrays[resolved],)
    return resolved
