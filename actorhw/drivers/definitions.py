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
(os.pathsep-separated) and folders given to `BoardCatalog.discover`. A file added
to any of them is picked up without code changes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from actorhw.core.errors import BoardDefinitionError, NoSuchBoardError
from actorhw.core.ids import DeviceId, DeviceKind, make_id_enum
from actorhw.core.lifecycle import SharingPolicy
from actorhw.core.suggest import did_you_mean
from actorhw.drivers.bundled import bundled_dir
from actorhw.drivers.datafile import LineIndex, read_toml

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

#: The most devices one board may have (each is an actor with a thread).
MAX_DEVICES = 1024
#: The range of an integer driver option (a pin, an address, a baud rate): 64 bits.
OPTION_INTS = range(-(2**63), 2**64)

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
    driver_line: int = 0
    """The line of ``driver = ...`` in the source file (0: not from a file)."""

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


class _Reader:
    """Validates one parsed board file, naming file, line and key in every error."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.lines = LineIndex(text)

    def fail(self, key_path: tuple[str | int, ...], problem: str) -> BoardDefinitionError:
        line = self.lines.line(key_path)
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
    """Read and TOML-parse ``path``; every problem names the file (and line)."""
    data, text = read_toml(path, BoardDefinitionError, "a board file")
    return data, _Reader(path, text)


def load_board_file(
    path: Path,
    *,
    bases: Mapping[str, BoardDefinition] | None = None,
    parsed: tuple[dict[str, Any], _Reader] | None = None,
) -> BoardDefinition:
    """Load and validate one board file.

    Args:
        path: the TOML file.
        bases: boards this one may ``extends``, by name.
        parsed: the file as `parse_board_file` gave it (not read again).

    Raises:
        BoardDefinitionError: naming the file, the line and the key at fault.
    """
    data, reader = parsed or parse_board_file(path)
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
        if extends == name:
            raise reader.fail(("board", "extends"), f"board {name!r} cannot extend itself")
        base = (bases or {}).get(extends)
        if base is None:
            raise reader.fail(("board", "extends"), f"no board named {extends!r} to extend")
        devices.update((d.name, d) for d in base.devices)
    raw_devices = data.get("devices", {})
    if not isinstance(raw_devices, dict):
        raise reader.fail(("devices",), "must be a table")
    if len(raw_devices) + len(devices) > MAX_DEVICES:
        raise reader.fail(
            ("devices",),
            f"{len(raw_devices) + len(devices)} devices; a board has at most {MAX_DEVICES}",
        )
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
        driver_line=reader.lines.line(("board", "driver")),
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
    for key, value in options.items():
        _check_option(reader, (*path, key), value)
    return DeviceSpec(name=name, kind=kind, policy=policy, options=options)


def _check_option(reader: _Reader, path: tuple[str, ...], value: Any) -> None:
    """Driver options are plain data; a number must fit a board's registers."""
    if isinstance(value, bool):
        return
    if isinstance(value, int) and value not in OPTION_INTS:
        raise reader.fail(path, f"{value} is out of range; an integer here fits 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise reader.fail(path, f"must be a finite number, not {value}")


@attrs.frozen
class BoardCatalog:
    """Every board definition found, by name."""

    boards: Mapping[str, BoardDefinition]

    @classmethod
    def discover(cls, extra_dirs: Iterable[Path | str] = ()) -> BoardCatalog:
        """Load the bundled boards, then ACTORHW_BOARDS_PATH, then ``extra_dirs``.

        A later folder may not redefine an earlier board's name: that is an error naming
        both files. Each file is read once; a board loads after the board it extends.

        Raises:
            BoardDefinitionError: a malformed board file, or a folder in ``extra_dirs``
                that does not exist.
        """
        dirs = [bundled_dir("boards")]
        env = os.environ.get(BOARDS_PATH_ENV, "")
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
        for extra in map(Path, extra_dirs):
            if not extra.is_dir():
                problem = "is not a folder" if extra.exists() else "does not exist"
                raise BoardDefinitionError(
                    f"{extra}: {problem} (a folder of board files was expected)",
                    file=str(extra),
                    line=0,
                    key="",
                )
            dirs.append(extra)
        pending = {f: parse_board_file(f) for d in dirs for f in sorted(Path(d).glob("*.toml"))}
        declared = {_declared_name(data): f for f, (data, _r) in pending.items()}
        found: dict[str, BoardDefinition] = {}
        while pending:
            progress = False
            for f, parsed in list(pending.items()):
                board = parsed[0].get("board")
                extends = board.get("extends") if isinstance(board, dict) else None
                base_file = declared.get(extends) if isinstance(extends, str) else None
                if extends not in found and base_file in pending and base_file != f:
                    continue  # its base loads first
                definition = load_board_file(f, bases=found, parsed=parsed)
                if definition.name in found:
                    other = found[definition.name].source
                    raise parsed[1].fail(
                        ("board", "name"),
                        f"board {definition.name!r} is already defined in {other}",
                    )
                found[definition.name] = definition
                del pending[f]
                progress = True
            if not progress:
                files = list(pending)
                raise BoardDefinitionError(
                    f"boards extend each other in a cycle: {', '.join(map(str, files))}",
                    file=str(files[0]),
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
                f"no board named {name!r}{did_you_mean(name, self.boards)}; "
                f"known boards: {', '.join(sorted(self.boards))}",
                board=name,
                valid_boards=sorted(self.boards),
            ) from None


def _declared_name(data: Mapping[str, Any]) -> str | None:
    board = data.get("board")
    name = board.get("name") if isinstance(board, dict) else None
    return name if isinstance(name, str) else None
