"""Wire literals: how task calls, results and errors cross to and from the board.

Arguments are checked as Python literals (`literal()`) and rendered into the
board-side call (`render_args()`, `board_value()`: short strings and bytes are
sent so that the firmware does not intern them); the board prints each result between two marker
bytes (`HELPER`), and the host splits its output into records (`records()`)
and reads each result back with `parse_result()` (never ``eval``).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Sequence
from typing import Any, Final

import attrs

from actorhw.core.errors import DeviceExceptionError, InvalidArgumentError, ResultParseError
from actorhw.links.raw_repl import parse_traceback

__all__ = [
    "HELPER",
    "INTERN_MAX",
    "RESERVED_PREFIX",
    "SENTINEL",
    "Record",
    "board_error",
    "board_value",
    "chunks",
    "helper_call",
    "literal",
    "parse_result",
    "records",
    "render_args",
    "single_result",
]

#: Prefix of every board global that actorhw itself defines; refused as a task name.
RESERVED_PREFIX: Final = "_ahw_"

#: Board-side helper every batch uses: runs one call, prints one record.
HELPER: Final = (
    "def _ahw_c(f,*a,**k):\n"
    " try:r=repr(f(*a,**k))\n"
    " except Exception as e:\n"
    "  import sys;print('\\x1eE',end='');sys.print_exception(e);print('\\x1f')\n"
    " else:print('\\x1eR',r,'\\x1f',sep='')"
)
#: Board global set last at every sync: a board holding our nonce has our definitions.
SENTINEL: Final = "_ahw_ok"
#: The longest str or bytes literal (in bytes, after escapes) that the micro:bit's
#: MicroPython 1.9.2 parser interns: an interned string is never freed, so every distinct
#: short literal it parses costs heap for good (measured: 100 distinct 10-byte literals
#: took 2,016 bytes, 11-byte ones none). Upstream: MICROPY_ALLOC_PARSE_INTERN_STRING_LEN.
INTERN_MAX: Final = 10
_REC_START: Final = "\x1e"
_REC_END: Final = "\x1f"


def literal(value: Any, *, name: str = "argument") -> str:
    """``repr(value)``, refused unless it reads back equal with `ast.literal_eval()`.

    Args:
        value: an argument of a task call.
        name: the argument's name, for the error.

    Returns:
        The Python literal that is sent to the board.

    Raises:
        InvalidArgumentError: the value is not a literal (an object, NaN, a set of
            frozensets...), so the board could not receive it faithfully.
    """
    text = repr(value)
    try:
        back = ast.literal_eval(text)
        same = bool(back == value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        same = False
    if not same:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidArgumentError(
            f"{name}={shown} is not a Python literal that reads back equal "
            "(use int, float, str, bytes, bool, None, and lists/tuples/dicts/sets of them)",
            argument=name,
        )
    return text


def board_value(value: Any, *, name: str = "argument") -> str:
    """MicroPython source that evaluates to ``value`` on the board and interns nothing.

    ``value`` must pass `literal()`. A str or bytes literal of at most
    `INTERN_MAX` bytes would be interned by the firmware's parser for good, so
    such a value (also inside a container, also a dict key) is sent padded past that
    length and sliced back on the board: ``'ab'`` becomes ``'ab         '[:2]``, a
    fresh object the board's garbage collector frees after the call. Longer strings,
    numbers, booleans and None are sent as their literal.

    Raises:
        InvalidArgumentError: the value is not a literal (see `literal()`).
    """
    return _board_source(ast.literal_eval(literal(value, name=name)))


def _board_source(value: Any) -> str:
    if isinstance(value, str | bytes):
        size = len(value.encode()) if isinstance(value, str) else len(value)
        if size > INTERN_MAX:
            return repr(value)
        width = len(value) + INTERN_MAX + 1 - size  # spaces: one byte each
        return f"{value.ljust(width)!r}[:{len(value)}]"
    if isinstance(value, list | tuple | set):
        inner = ",".join(_board_source(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        if isinstance(value, tuple):
            return f"({inner}{',' if len(value) == 1 else ''})"
        return f"{{{inner}}}" if value else "set()"
    if isinstance(value, dict):
        items = ",".join(f"{_board_source(k)}:{_board_source(v)}" for k, v in value.items())
        return f"{{{items}}}"
    return repr(value)


def render_args(
    func_name: str, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """The board-side argument list of a task call, e.g. ``3,10,fast=True``.

    Args:
        func_name: the task's name, for errors.
        signature: the method's signature, ``self`` included.
        args: positional arguments (without ``self``).
        kwargs: keyword arguments.

    Returns:
        MicroPython source of the arguments, comma-separated (see `board_value()`).

    Raises:
        InvalidArgumentError: the arguments do not fit the signature, or one is not a
            literal (see `literal()`).
    """
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError as e:
        raise InvalidArgumentError(f"{func_name}(): {e}", argument=func_name) from None
    names = list(signature.parameters)[1:]
    parts = [
        board_value(value, name=names[i] if i < len(names) else "*args")
        for i, value in enumerate(args)
    ]
    parts += [f"{key}={board_value(value, name=key)}" for key, value in kwargs.items()]
    return ",".join(parts)


def parse_result(text: str, *, task: str = "?", device: str = "?") -> Any:
    """Read a board's ``repr(result)`` with `ast.literal_eval()`, never ``eval``.

    Args:
        text: what the board printed for the result.
        task: the task's name, for the error.
        device: the board's key, for the error.

    Returns:
        The value.

    Raises:
        ResultParseError: the text is not a literal (``<object>``, ``inf``,
            ``bytearray(b'')``...).
    """
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        shown = text if len(text) <= 200 else text[:197] + "..."
        raise ResultParseError(
            f"{device}: result of {task} is not a Python literal: {shown!r} "
            f"({type(e).__name__}); return int, float, str, bytes, bool, None or "
            "containers of them",
            task=task,
            device=device,
            text=shown,
        ) from None


@attrs.frozen
class Record:
    """One call's record in an exec's output: a result (``ok``) or a board traceback."""

    ok: bool
    text: str


def records(output: str) -> tuple[list[Record], str]:
    """Split an exec's stdout into result/error records and the rest (user prints)."""
    found: list[Record] = []
    rest: list[str] = []
    pos = 0
    while True:
        start = output.find(_REC_START, pos)
        if start < 0 or start + 1 >= len(output):
            rest.append(output[pos:])
            break
        end = output.find(_REC_END, start)
        if end < 0:
            rest.append(output[pos:])
            break
        rest.append(output[pos:start])
        kind = output[start + 1]
        if kind in "RE" and _REC_START not in output[start + 1 : end]:
            found.append(Record(ok=kind == "R", text=output[start + 2 : end]))
            pos = end + 1
        else:  # a stray marker byte the code printed itself: not a record
            rest.append(output[start])
            pos = start + 1
    return found, "".join(rest).strip()


def single_result(out: str, *, task: str, device: str, log: Any) -> Any:
    """The value of a single task call's output (one result record).

    Raises:
        ResultParseError: no single result record, or a result that is not a literal.
    """
    found, rest = records(out)
    if rest:
        log.debug("{} printed: {}", task, rest)
    if len(found) != 1 or not found[0].ok:
        raise ResultParseError(
            f"{device}: no result record in the output of {task}: {out[:200]!r}",
            task=task,
            device=device,
            text=out[:200],
        )
    return parse_result(found[0].text, task=task, device=device)


def board_error(text: str, *, task: str, device: str) -> DeviceExceptionError:
    """The DeviceExceptionError of a board traceback printed by a task."""
    traceback_text = text.strip()
    exc_name, message = parse_traceback(traceback_text)
    return DeviceExceptionError(
        f"{exc_name} in {task} on {device}: {message}"
        if message
        else f"{exc_name} in {task} on {device}",
        exc_name=exc_name,
        exc_message=message,
        traceback_text=traceback_text,
        device=device,
        task=task,
    )


def chunks(units: Sequence[str], limit: int) -> list[str]:
    """Join source units into as few pieces as possible, each at most ``limit`` bytes.

    A unit larger than ``limit`` goes alone.
    """
    out: list[str] = []
    current = ""
    for unit in units:
        if current and len((current + "\n" + unit).encode()) > limit:
            out.append(current)
            current = unit
        else:
            current = f"{current}\n{unit}" if current else unit
    if current:
        out.append(current)
    return out


def helper_call(call: str) -> str:
    """``collect(3,10)`` -> ``_ahw_c(collect,3,10)``; ``status()`` -> ``_ahw_c(status)``."""
    name, _, rest = call.partition("(")
    return f"_ahw_c({name}{',' if rest != ')' else ''}{rest}"
