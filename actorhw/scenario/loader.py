"""Load a scenario file (TOML) into a `Scenario`.

Every problem is a [`ScenarioFileError`][actorhw.core.errors.ScenarioFileError] naming
the file, the line and the key, raised before anything runs: unknown keys, missing
values, wrong types, unknown boards, devices, states, faults, lease aliases and
variables. The file and line finding is the board loader's (`actorhw.boards`). See
docs/scenarios.md."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from actorhw.core.errors import ActorHwError, ScenarioFileError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import ResourceKind
from actorhw.core.resources import METRICS
from actorhw.drivers.datafile import LineIndex, read_toml
from actorhw.drivers.definitions import BoardCatalog
from actorhw.scenario.model import UNSET, BoardUp, BytesData, Expect, Scenario, Step

#: The actions a step may have, exactly one per step (``expect`` alone is a check).
ACTIONS = (
    "acquire",
    "open",
    "close",
    "release",
    "exec",
    "task",
    "command",
    "allocate",
    "measure",
    "threshold",
    "fault",
    "wait",
    "parallel",
)
#: Faults a ``fault`` step may inject (Runtime.inject_fault).
FAULTS = ("unplug", "hang", "power_cycle", "memory_error")
COMMON = {"name", "timeout", "expect", "save"}
KEYS: Mapping[str, set[str]] = {
    "acquire": {"as", "owner"},
    "open": set(),
    "close": set(),
    "release": set(),
    "exec": {"on"},
    "task": {"on", "define", "args"},
    "command": {"on", "args"},
    "allocate": {"on", "amount", "as"},
    "measure": {"on"},
    "threshold": {"on", "limit"},
    "fault": {"board"},
    "wait": {"board", "on", "restarts"},
    "parallel": {"var", "limit", "steps"},
    "expect": {"on", "board"},
}
EXPECT_KEYS = {
    "output",
    "contains",
    "value",
    "min",
    "max",
    "error",
    "raises",
    "state",
    "owners_count",
}
#: The longest deadline a file may give a step or a bring-up, in s (a day).
MAX_TIMEOUT = 86400.0
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STATES = {s.name for s in DeviceState}
_KINDS = tuple(k.value for k in ResourceKind)

Path_ = tuple[str | int, ...]


class _Reader:
    """Validates one parsed scenario file; every error names file, line and key."""

    def __init__(self, path: Path, text: str, catalog: BoardCatalog | None) -> None:
        self.path = path
        self.text = text
        self.catalog = catalog
        self.lines = LineIndex(text)
        self.boards: dict[str, str] = {}  # instance -> definition

    def fail(self, key_path: Path_, problem: str) -> ScenarioFileError:
        line = self.lines.line(key_path)
        key = ".".join(map(str, key_path))
        return ScenarioFileError(
            f"{self.path}:{line}: key '{key}': {problem}", file=str(self.path), line=line, key=key
        )

    def table(self, value: Any, path: Path_) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, not {_type(value)}")
        return value

    def known(self, table: Mapping[str, Any], path: Path_, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail((*path, key), f"unknown key; expected one of {sorted(allowed)}")

    def string(self, table: Mapping[str, Any], path: Path_, *, required: bool = True) -> str:
        value = table.get(str(path[-1]))
        if value is None:
            if required:
                raise self.fail(path[:-1] or path, f"missing required key '{path[-1]}'")
            return ""
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, not {_type(value)}")
        return value

    def number(self, table: Mapping[str, Any], path: Path_, default: float) -> float:
        value = table.get(str(path[-1]), default)
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or not 0 < value <= MAX_TIMEOUT:  # also refuses nan
            raise self.fail(
                path,
                f"must be a positive number of seconds, at most {MAX_TIMEOUT:g}, not {value!r}",
            )
        return float(value)


def _type(value: Any) -> str:
    names: dict[type, str] = {dict: "a table", list: "an array", str: "a string"}
    return names.get(type(value), type(value).__name__)


def load_scenario(path: Path | str, *, catalog: BoardCatalog | None = None) -> Scenario:
    """Read and validate a scenario file.

    Args:
        path: the TOML file.
        catalog: board definitions to check board and device names against (default:
            the bundled ones and ACTORHW_BOARDS_PATH).

    Raises:
        ScenarioFileError: naming the file, the line and the key at fault.
    """
    path = Path(path)
    data, text = read_toml(path, ScenarioFileError, "a scenario file")
    if catalog is None:
        catalog = BoardCatalog.discover()
    reader = _Reader(path, text, catalog)
    reader.known(data, (), {"scenario", "vars", "boards", "steps"})
    head = reader.table(data.get("scenario", {}), ("scenario",))
    reader.known(
        head, ("scenario",), {"name", "description", "step_timeout", "bringup_timeout", "owner"}
    )
    name = reader.string(head, ("scenario", "name"), required=False) or path.stem
    step_timeout = reader.number(head, ("scenario", "step_timeout"), 10.0)
    variables = reader.table(data.get("vars", {}), ("vars",))
    for key, value in variables.items():
        if not _IDENT.match(key):
            raise reader.fail(("vars", key), "a variable name must be an identifier")
        if not isinstance(value, str | int | float | bool):
            raise reader.fail(("vars", key), "a variable is a string, number or boolean")
    boards = _boards(reader, data.get("boards"))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise reader.fail(("steps",), "a scenario needs at least one [[steps]]")
    scope = {"scenario", *variables}
    steps = _steps(reader, raw_steps, ("steps",), step_timeout, scope, set(), nested=False)
    return Scenario(
        name=name,
        description=reader.string(head, ("scenario", "description"), required=False),
        file=str(path),
        boards=boards,
        variables=tuple(variables.items()),
        steps=steps,
        bringup_timeout=reader.number(head, ("scenario", "bringup_timeout"), 60.0),
        owner=reader.string(head, ("scenario", "owner"), required=False) or f"scenario:{name}",
    )


def _boards(reader: _Reader, raw: Any) -> tuple[BoardUp, ...]:
    if raw is None:
        raise reader.fail(("boards",), "a scenario needs at least one [[boards]]")
    if not isinstance(raw, list) or not raw:
        raise reader.fail(("boards",), "must be an array of tables ([[boards]])")
    out = []
    for i, entry in enumerate(raw):
        path: Path_ = ("boards", i)
        table = reader.table(entry, path)
        reader.known(table, path, {"board", "name", "count", "port", "options"})
        definition = reader.string(table, (*path, "board"))
        assert reader.catalog is not None
        if definition not in reader.catalog.boards:
            known = ", ".join(sorted(reader.catalog.boards))
            raise reader.fail((*path, "board"), f"no board named {definition!r}; known: {known}")
        count = table.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 64:
            raise reader.fail((*path, "count"), f"must be an int in 1..64, not {count!r}")
        base = reader.string(table, (*path, "name"), required=False) or definition
        names = (base,) if count == 1 else tuple(f"{base}-{n}" for n in range(1, count + 1))
        port = reader.string(table, (*path, "port"), required=False) or None
        if port is not None and count != 1:
            raise reader.fail((*path, "port"), "a port attaches one board: leave count at 1")
        options = table.get("options", {})
        if not isinstance(options, dict):
            raise reader.fail((*path, "options"), "must be a table")
        for n in names:
            if n in reader.boards:
                raise reader.fail(path, f"board instance {n!r} is declared twice")
            reader.boards[n] = definition
        out.append(
            BoardUp(
                definition=definition,
                names=names,
                line=reader.lines.line(path),
                port=port,
                options=options,
            )
        )
    return tuple(out)


def _steps(
    reader: _Reader,
    raw: list[Any],
    path: Path_,
    default_timeout: float,
    scope: set[str],
    aliases: set[str],
    *,
    nested: bool,
) -> tuple[Step, ...]:
    steps = []
    for i, entry in enumerate(raw):
        steps.append(
            _step(reader, entry, (*path, i), default_timeout, scope, aliases, nested=nested)
        )
    return tuple(steps)


def _step(
    reader: _Reader,
    entry: Any,
    path: Path_,
    default_timeout: float,
    scope: set[str],
    aliases: set[str],
    *,
    nested: bool,
) -> Step:
    table = reader.table(entry, path)
    actions = [a for a in ACTIONS if a in table]
    if len(actions) > 1:
        raise reader.fail(path, f"a step has one action, this one has {actions}")
    if not actions and "expect" not in table:
        raise reader.fail(path, f"a step needs one action key: {', '.join(ACTIONS)} or expect")
    action = actions[0] if actions else "expect"
    reader.known(table, path, COMMON | KEYS[action] | {action})
    if action == "parallel" and nested:
        raise reader.fail((*path, action), "parallel groups cannot nest")
    timeout = reader.number(table, (*path, "timeout"), default_timeout)
    line = reader.lines.line(path)
    fields: dict[str, Any] = {}
    for key in ("on", "board", "define", "owner"):
        if key in table:
            fields[key] = reader.string(table, (*path, key))
            _check_vars(reader, (*path, key), fields[key], scope)
    if "on" in fields:
        _check_on(reader, (*path, "on"), fields["on"], aliases)
    if "board" in fields:
        _check_board(reader, (*path, "board"), fields["board"])
    if action == "parallel":
        step = _parallel(reader, table, path, timeout, scope, aliases, line)
    else:
        target = table.get(action, "")
        if action != "expect":
            if not isinstance(target, str) or not target:
                raise reader.fail((*path, action), f"must be a non-empty string, not {target!r}")
            _check_vars(reader, (*path, action), target, scope)
        _check_target(reader, action, (*path, action), target, table, aliases)
        if action == "acquire":
            alias = table.get("as", "")
            if not isinstance(alias, str) or (alias and not _IDENT.match(alias)):
                raise reader.fail((*path, "as"), "must be an identifier naming the lease")
            fields["alias"] = alias
            if alias:
                aliases.add(alias)
        if action == "allocate":
            fields["alias"] = reader.string(table, (*path, "as"), required=False)
            amount = table.get("amount")
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                raise reader.fail((*path, "amount"), f"must be an amount > 0, not {amount!r}")
            fields["options"] = (("amount", amount),)
            if fields["alias"]:
                if not _IDENT.match(fields["alias"]):
                    raise reader.fail((*path, "as"), "must be an identifier")
                aliases.add(fields["alias"])
        if action == "threshold":
            limit = table.get("limit")
            if isinstance(limit, bool) or not isinstance(limit, int | float):
                raise reader.fail((*path, "limit"), f"must be a number, not {limit!r}")
            fields["options"] = (("limit", float(limit)),)
        if "args" in table:
            args = table["args"]
            if not isinstance(args, list):
                raise reader.fail((*path, "args"), "must be an array")
            fields["args"] = tuple(_data(reader, (*path, "args"), a) for a in args)
            _check_vars(reader, (*path, "args"), repr(args), scope)
        if action in ("expect", "wait") and not ("on" in fields or "board" in fields):
            raise reader.fail(path, f"an {action} step needs 'on' (a device) or 'board'")
        if action == "wait" and "restarts" in table:
            restarts = table["restarts"]
            if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
                raise reader.fail((*path, "restarts"), "must be an int >= 0")
            if "board" not in fields:
                raise reader.fail((*path, "restarts"), "restarts are a board's: set 'board'")
            fields["restarts"] = restarts
        if action in ("fault",) and "board" not in fields:
            raise reader.fail(path, "a fault step needs 'board'")
        step = Step(
            action=action,
            name="",
            line=line,
            timeout=timeout,
            target=target if isinstance(target, str) else "",
            **fields,
        )
    if "expect" in table:
        expect = _expect(reader, table["expect"], (*path, "expect"), scope)
        if action == "expect" and expect == Expect():
            raise reader.fail((*path, "expect"), "an expect step needs at least one check")
        step = _evolve(step, expect=expect)
    elif action == "expect":
        raise reader.fail(path, "missing required key 'expect'")
    save = table.get("save", "")
    if save:
        if not isinstance(save, str) or not _IDENT.match(save):
            raise reader.fail((*path, "save"), "must be an identifier naming a variable")
        scope.add(save)
    name = table.get("name") or _default_name(step)
    if not isinstance(name, str):
        raise reader.fail((*path, "name"), "must be a string")
    return _evolve(step, name=name, save=save)


def _evolve(step: Step, **changes: Any) -> Step:
    return attrs.evolve(step, **changes)


def _parallel(
    reader: _Reader,
    table: dict[str, Any],
    path: Path_,
    timeout: float,
    scope: set[str],
    aliases: set[str],
    line: int,
) -> Step:
    raw = table["parallel"]
    if raw == "*":
        targets = tuple(reader.boards)
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        targets = tuple(raw)
    else:
        raise reader.fail(
            (*path, "parallel"), 'must be "*" (every board) or a non-empty array of strings'
        )
    if len(set(targets)) != len(targets):
        raise reader.fail((*path, "parallel"), "targets must be distinct")
    var = table.get("var", "board")
    if not isinstance(var, str) or not _IDENT.match(var):
        raise reader.fail((*path, "var"), "must be an identifier")
    if var == "board":
        for t in targets:
            if not VAR.search(t):
                _check_board(reader, (*path, "parallel"), t)
    limit = table.get("limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise reader.fail((*path, "limit"), f"must be an int >= 0 (0: all at once), not {limit!r}")
    raw_steps = table.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise reader.fail(path, "a parallel group needs steps ([[steps.steps]])")
    inner = _steps(
        reader, raw_steps, (*path, "steps"), timeout, {*scope, var}, set(aliases), nested=True
    )
    return Step(
        action="parallel",
        name="",
        line=line,
        timeout=timeout,
        targets=targets,
        var=var,
        limit=limit,
        steps=inner,
    )


def _check_vars(reader: _Reader, path: Path_, text: str, scope: set[str]) -> None:
    for found in VAR.finditer(text):
        if found.group(1) not in scope:
            raise reader.fail(
                path,
                f"unknown variable ${{{found.group(1)}}}; defined here: {', '.join(sorted(scope))}",
            )


def _check_board(reader: _Reader, path: Path_, board: str) -> None:
    if not VAR.search(board) and board not in reader.boards:
        raise reader.fail(
            path, f"no board instance {board!r}; this scenario has: {', '.join(reader.boards)}"
        )


def _check_on(reader: _Reader, path: Path_, on: str, aliases: set[str]) -> None:
    if VAR.search(on):
        return
    if "." in on:
        _check_device(reader, path, on)
    elif on not in aliases:
        raise reader.fail(
            path,
            f"{on!r} is neither a lease alias acquired earlier ({', '.join(sorted(aliases))}) "
            "nor a device 'board.DEVICE'",
        )


def _check_device(reader: _Reader, path: Path_, ref: str) -> None:
    if VAR.search(ref):
        return
    board, _, device = ref.partition(".")
    _check_board(reader, path, board)
    assert reader.catalog is not None
    definition = reader.catalog.get(reader.boards[board])
    names = [d.name for d in definition.devices]
    if device not in names:
        raise reader.fail(
            path, f"board {board} has no device {device!r}; valid: {', '.join(names)}"
        )


def _check_target(
    reader: _Reader,
    action: str,
    path: Path_,
    target: str,
    table: Mapping[str, Any],
    aliases: set[str],
) -> None:
    if action == "acquire":
        if not VAR.search(target) and "." not in target:
            raise reader.fail(path, "must name a device as 'board.DEVICE'")
        _check_device(reader, path, target)
    elif action in ("open", "close", "release"):
        if not VAR.search(target) and target not in aliases:
            raise reader.fail(
                path, f"no lease named {target!r}; acquired so far: {', '.join(sorted(aliases))}"
            )
    elif action in ("exec", "task", "command", "allocate", "measure", "threshold") and (
        "on" not in table
    ):
        raise reader.fail(path[:-1], f"a {action} step needs 'on' (a lease alias or a device)")
    elif action == "fault" and target not in FAULTS:
        raise reader.fail(path, f"unknown fault {target!r}; valid: {', '.join(FAULTS)}")
    elif action == "wait" and target not in _STATES:
        raise reader.fail(path, f"unknown state {target!r}; valid: {', '.join(sorted(_STATES))}")
    elif action == "allocate" and target not in _KINDS:
        raise reader.fail(path, f"unknown resource {target!r}; valid: {', '.join(_KINDS)}")
    elif action in ("measure", "threshold") and target not in METRICS:
        raise reader.fail(path, f"unknown metric {target!r}; valid: {', '.join(METRICS)}")
    elif action == "task" and not _IDENT.match(target):
        raise reader.fail(path, "must be the name of the board-side function to call")


def _expect(reader: _Reader, raw: Any, path: Path_, scope: set[str]) -> Expect:
    table = reader.table(raw, path)
    reader.known(table, path, EXPECT_KEYS)
    fields: dict[str, Any] = {}
    if "error" in table:
        codes = table["error"]
        codes = [codes] if isinstance(codes, str) else codes
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            raise reader.fail((*path, "error"), "must be an error code or an array of them")
        fields["error"] = tuple(codes)
    for key in ("output", "contains", "raises", "state"):
        if key in table:
            fields[key] = reader.string(table, (*path, key))
            _check_vars(reader, (*path, key), fields[key], scope)
    if "state" in fields and fields["state"] not in _STATES:
        raise reader.fail(
            (*path, "state"),
            f"unknown state {fields['state']!r}; valid: {', '.join(sorted(_STATES))}",
        )
    for key in ("min", "max"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise reader.fail((*path, key), f"must be a number, not {_type(value)}")
            fields[key] = float(value)
    if "owners_count" in table:
        count = table["owners_count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise reader.fail((*path, "owners_count"), "must be an int >= 0")
        fields["owners_count"] = count
    if "value" in table:
        fields["value"] = _data(reader, (*path, "value"), table["value"])
    else:
        fields["value"] = UNSET
    return Expect(**fields)


def _data(reader: _Reader, path: Path_, value: Any) -> Any:
    """TOML data as step data: ``{ bytes = "..." }`` is bytes; tables stay dicts."""
    if isinstance(value, dict):
        if set(value) == {"bytes"}:
            if not isinstance(value["bytes"], str):
                raise reader.fail((*path, "bytes"), "must be a string")
            return BytesData(value["bytes"])
        return {k: _data(reader, (*path, k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_data(reader, path, v) for v in value]
    return value


def _default_name(step: Step) -> str:
    where = step.on or step.board
    target = step.target.splitlines()[0] if step.target else ""
    if len(target) > 40:
        target = target[:37] + "..."
    parts = [step.action, target, f"on {where}" if where else ""]
    return " ".join(p for p in parts if p)


def check_scenario_file(path: Path | str) -> ActorHwError | None:
    """The load error of ``path``, or None if it is valid (for ``--check`` listings)."""
    try:
        load_scenario(path)
    except ActorHwError as e:
        return e
    return None
