"""Board definitions: data files that become per-board DeviceId enums.

A board file is TOML with a ``[board]`` table and a ``[devices]`` table, one device per
line::

    [board]
    name = "same70-xplained"
    title = "Atmel SAME70 Xplained"
    enum = "Same70"            # the name of the board's id enum
    driver = "sim"             # the driver plugin that attaches it
    extends = "other-board"    # optional: take that board's devices first

    [devices]
    UART0 = { kind = "uart", policy = "single" }   # policy defaults by kind
    PIN0 = { kind = "gpio", pin = 0 }              # other keys go to the driver

Boards are found in the bundled boards/ folder, the folders in ``ACTORHW_BOARDS_PATH``
(os.pathsep-separated) and folders given to :meth:`BoardCatalog.discover`. A file added
to any of them is picked up without code changes.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from actorhw.core.errors import BoardDefinitionError, NoSuchBoardError
from actorhw.core.ids import DeviceId, DeviceKind, make_id_enum
from actorhw.core.lifecycle import SharingPolicy
from actorhw.drivers.bundled import bundled_dir

BOARDS_PATH_ENV = "ACTORHW_BOARDS_PATH"

#: The policy a device gets when its line names none.
DEFAULT_POLICY: Mapping[DeviceKind, SharingPolicy] = {
    DeviceKind.UART: SharingPolicy.SINGLE,
    DeviceKind.GPIO: SharingPolicy.SHARED,
    DeviceKind.I2C: SharingPolicy.SHARED,
    DeviceKind.SPI: SharingPolicy.SINGLE,
    DeviceKind.ADC: SharingPolicy.SHARED,
    DeviceKind.DAC: SharingPolicy.SINGLE,
    DeviceKind.PWM: SharingPolicy.SINGLE,
    DeviceKind.LED: SharingPolicy.SINGLE,
    DeviceKind.BUTTON: SharingPolicy.SHARED,
    DeviceKind.DISPLAY: SharingPolicy.SINGLE,
    DeviceKind.ACCELEROMETER: SharingPolicy.SHARED,
    DeviceKind.BOARD: SharingPolicy.SHARED,
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@attrs.frozen(kw_only=True)
class DeviceSpec:
    """One device line of a board file."""

    name: str
    kind: DeviceKind
    policy: SharingPolicy
    options: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class BoardDefinition:
    """A board file, validated."""

    name: str
    title: str
    enum_name: str
    driver: str
    devices: tuple[DeviceSpec, ...]
    source: Path
    options: Mapping[str, Any] = attrs.field(factory=dict)

    def ids(self, instance: str | None = None) -> type[DeviceId]:
        """The id enum of one instance of this board (named ``instance``).

        The same definition and instance name give the same class for the life of the
        process, so ids held by a caller stay valid across runtime restarts.
        """
        board = instance or self.name
        key = (self.name, str(self.source), board, tuple(d.name for d in self.devices))
        cls = _ID_ENUMS.get(key)
        if cls is None:
            cls = _ID_ENUMS.setdefault(key, make_id_enum(self.enum_name, board, list(key[3])))
        return cls


_ID_ENUMS: dict[tuple[str, str, str, tuple[str, ...]], type[DeviceId]] = {}


def _line_of(text: str, key_path: tuple[str | int, ...]) -> int:
    """The 1-based line where ``key_path`` is written, or the nearest enclosing line.

    An int in ``key_path`` indexes an array of tables (``[[steps]]``), so
    ``("steps", 2, "exec")`` is the ``exec`` key of the third ``[[steps]]``; scenario
    files use that. Returns 1 if nothing of the path can be found.
    """
    lines = text.splitlines()
    table: tuple[str | int, ...] = ()
    arrays: dict[tuple[str | int, ...], int] = {}
    best, best_len = 1, 0

    def closer(number: int, length: int) -> None:
        nonlocal best, best_len
        if length > best_len:
            best, best_len = number, length

    def common(path: tuple[str | int, ...]) -> int:
        n = 0
        for a, b in zip(path, key_path, strict=False):
            if a != b:
                break
            n += 1
        return n

    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        header = re.match(r"^(\[\[?)\s*([^\]]+?)\s*\]\]?$", line)
        if header:
            parts = [p.strip().strip('"') for p in header.group(2).split(".")]
            resolved: tuple[str | int, ...] = ()
            for i, part in enumerate(parts):
                resolved += (part,)
                if i < len(parts) - 1 and resolved in arrays:
                    resolved += (arrays[resolved],)
            if header.group(1) == "[[":
                arrays[resolved] = arrays.get(resolved, -1) + 1
                resolved += (arrays[resolved],)
            table = resolved
            if table == key_path:
                return number
            if common(table) == len(table):
                closer(number, len(table))
            continue
        key = re.match(r'^"?([A-Za-z0-9_-]+)"?\s*=', line)
        if key and common(table) == len(table):
            path = (*table, key.group(1))
            if path == key_path:
                return number
            if common(path) == len(path):
                closer(number, len(path))
                inner = key_path[len(path) :]
                if inner and re.search(rf"\b{re.escape(str(inner[-1]))}\s*=", line):
                    return number
    return best


class _Reader:
    """Validates one parsed board file, naming file, line and key in every error."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, key_path: tuple[str | int, ...], problem: str) -> BoardDefinitionError:
        line = _line_of(self.text, key_path)
        key = ".".join(map(str, key_path))
        return BoardDefinitionError(
            f"{self.path}:{line}: key '{key}': {problem}", file=str(self.path), line=line, key=key
        )

    def string(
        self,
        table: Mapping[str, Any],
        path: tuple[str, ...],
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        value = table.get(path[-1])
        if value is None:
            if required:
                raise self.fail(path[:-1] or path, f"missing required key '{path[-1]}'")
            return None
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, not {type(value).__name__}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(path, f"{value!r} does not match {pattern.pattern}")
        return value


def parse_board_file(path: Path) -> tuple[dict[str, Any], _Reader]:
    """Read and TOML-parse ``path``; syntax errors name the file and line."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = getattr(e, "lineno", None) or _lineno_from_message(str(e))
        raise BoardDefinitionError(
            f"{path}:{line}: invalid TOML: {e}", file=str(path), line=line, key=""
        ) from e
    return data, _Reader(path, text)


def _lineno_from_message(message: str) -> int:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else 1


def load_board_file(
    path: Path, *, bases: Mapping[str, BoardDefinition] | None = None
) -> BoardDefinition:
    """Load and validate one board file.

    Args:
        path: the TOML file.
        bases: boards this one may ``extends``, by name.

    Raises:
        BoardDefinitionError: naming the file, the line and the key at fault.
    """
    data, reader = parse_board_file(path)
    for top in data:
        if top not in ("board", "devices"):
            raise reader.fail((top,), "unknown table; a board file has [board] and [devices]")
    board = data.get("board")
    if not isinstance(board, dict):
        raise reader.fail(("board",), "missing [board] table")
    known = {"name", "title", "enum", "driver", "extends", "options"}
    for key in board:
        if key not in known:
            raise reader.fail(("board", key), f"unknown key; expected one of {sorted(known)}")
    name = reader.string(board, ("board", "name"), pattern=_NAME)
    enum_name = reader.string(board, ("board", "enum"), pattern=_IDENT)
    driver = reader.string(board, ("board", "driver"), pattern=_NAME)
    title = reader.string(board, ("board", "title"), required=False) or name
    extends = reader.string(board, ("board", "extends"), required=False)
    options = board.get("options", {})
    if not isinstance(options, dict):
        raise reader.fail(("board", "options"), "must be a table")
    devices: dict[str, DeviceSpec] = {}
    if extends is not None:
        base = (bases or {}).get(extends)
        if base is None:
            raise reader.fail(("board", "extends"), f"no board named {extends!r} to extend")
        devices.update((d.name, d) for d in base.devices)
    raw_devices = data.get("devices", {})
    if not isinstance(raw_devices, dict):
        raise reader.fail(("devices",), "must be a table")
    for dev_name, spec in raw_devices.items():
        devices[dev_name] = _device(reader, dev_name, spec)
    if not devices:
        raise reader.fail(("devices",), "a board needs at least one device")
    assert name is not None and enum_name is not None and driver is not None
    title = title or name
    return BoardDefinition(
        name=name,
        title=title,
        enum_name=enum_name,
        driver=driver,
        devices=tuple(devices.values()),
        source=path,
        options=options,
    )


def _device(reader: _Reader, name: str, spec: Any) -> DeviceSpec:
    path = ("devices", name)
    if not _IDENT.match(name) or name.startswith("_"):
        raise reader.fail(path, "a device id must be an identifier not starting with '_'")
    if not isinstance(spec, dict):
        raise reader.fail(path, 'must be an inline table like { kind = "uart" }')
    kind_name = reader.string(spec, (*path, "kind"))
    try:
        kind = DeviceKind(kind_name)
    except ValueError:
        valid = ", ".join(k.value for k in DeviceKind)
        raise reader.fail((*path, "kind"), f"unknown kind {kind_name!r}; valid: {valid}") from None
    policy_name = reader.string(spec, (*path, "policy"), required=False)
    policy = DEFAULT_POLICY[kind]
    if policy_name is not None:
        try:
            policy = SharingPolicy(policy_name)
        except ValueError:
            raise reader.fail(
                (*path, "policy"), f"unknown policy {policy_name!r}; valid: single, shared"
            ) from None
    options = {k: v for k, v in spec.items() if k not in ("kind", "policy")}
    return DeviceSpec(name=name, kind=kind, policy=policy, options=options)


@attrs.frozen
class BoardCatalog:
    """Every board definition found, by name."""

    boards: Mapping[str, BoardDefinition]

    @classmethod
    def discover(cls, extra_dirs: Iterable[Path | str] = ()) -> BoardCatalog:
        """Load the bundled boards, then ACTORHW_BOARDS_PATH, then ``extra_dirs``.

        A later folder may not redefine an earlier board's name: that is an error naming
        both files.
        """
        dirs = [bundled_dir("boards")]
        env = os.environ.get(BOARDS_PATH_ENV, "")
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
        dirs += [Path(d) for d in extra_dirs]
        files = [f for d in dirs for f in sorted(Path(d).glob("*.toml"))]
        found: dict[str, BoardDefinition] = {}
        pending = list(files)
        # Boards that extend others load once their base is known.
        while pending:
            progress = False
            for f in list(pending):
                data, reader = parse_board_file(f)
                board = data.get("board")
                extends = board.get("extends") if isinstance(board, dict) else None
                if (
                    isinstance(extends, str)
                    and extends not in found
                    and any(_declares(p, extends) for p in pending if p != f)
                ):
                    continue
                definition = load_board_file(f, bases=found)
                if definition.name in found:
                    other = found[definition.name].source
                    raise reader.fail(
                        ("board", "name"),
                        f"board {definition.name!r} is already defined in {other}",
                    )
                found[definition.name] = definition
                pending.remove(f)
                progress = True
            if not progress:
                raise BoardDefinitionError(
                    f"boards extend each other in a cycle: {pending}",
                    file=str(pending[0]),
                    line=1,
                    key="board.extends",
                )
        return cls(found)

    def get(self, name: str) -> BoardDefinition:
        """The definition named ``name``; NoSuchBoardError lists the known ones."""
        try:
            return self.boards[name]
        except KeyError:
            raise NoSuchBoardError(
                f"no board named {name!r}; known boards: {', '.join(sorted(self.boards))}",
                board=name,
                valid_boards=sorted(self.boards),
            ) from None


def _declares(path: Path, name: str) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    board = data.get("board")
    return isinstance(board, dict) and board.get("name") == name
