"""Load a scenario file (TOML) into a `Scenario`.

Every problem is a `ScenarioFileError` naming the file, the line
and the key, raised before anything runs: unknown keys (with the closest known names),
missing values, wrong types, unknown boards, devices, states, faults, lease aliases and
variables. One load reports every problem of the file: each is collected, and the
error raised lists them all (its ``problems``). Steps are checked by their entry in
`ACTIONS`; an action not in the table is an error here,
never a step that does nothing. See docs/scenarios.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actorhw.api.lab import BoardDirectory
from actorhw.core.collector import collector_paused
from actorhw.core.errors import ScenarioFileError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.suggest import did_you_mean
from actorhw.drivers.datafile import read_toml
from actorhw.drivers.definitions import BoardCatalog
from actorhw.scenario.actions import ACTIONS
from actorhw.scenario.hosts import on_host
from actorhw.scenario.model import UNSET, BoardUp, BytesData, Expect, Scenario, Step
from actorhw.scenario.reader import IDENT, FileReader, KeyPath, StepSource, type_name

#: Keys every step may have besides its action's.
COMMON = frozenset({"name", "timeout", "expect", "save"})
EXPECT_KEYS = {
    "output", "contains", "value", "min", "max", "error", "raises", "state", "owners_count",
}  # fmt: skip
HEAD_KEYS = {"name", "description", "step_timeout", "bringup_timeout", "owner"}
BOARD_KEYS = {"board", "name", "count", "port", "options", "host"}
_STATES = tuple(s.name for s in DeviceState)


def load_scenario(
    path: Path | str,
    *,
    catalog: BoardCatalog | None = None,
    cluster: BoardDirectory | None = None,
) -> Scenario:
    """Read and validate a scenario file.

    Args:
        path: the TOML file.
        catalog: board definitions to check board and device names against (default:
            the bundled ones and ACTORHW_BOARDS_PATH).
        cluster: the cluster it will run on (an ``actorhw.cluster.Cluster``): every
            board must then live on one of its hosts (``host = "lab-1"``, named
            ``lab-1/board`` in steps), checked with its devices against what the hosts
            announce.

    Raises:
        ScenarioFileError: naming the file, the line and the key at fault; with more
            than one problem, the first's, listing every one (``problems``).
    """
    path = Path(path)
    # The cyclic GC off while a file's many small objects are made: none of them form
    # cycles, and its passes over them cost about a third of the load time.
    with collector_paused():
        return _load(path, catalog, cluster)


def _load(path: Path, catalog: BoardCatalog | None, cluster: BoardDirectory | None) -> Scenario:
    data, text = read_toml(path, ScenarioFileError, "a scenario file")
    reader = FileReader(path, text, catalog or BoardCatalog.discover(), cluster)
    reader.known(data, (), {"scenario", "vars", "boards", "steps"})
    head: dict[str, Any] = {}
    with reader.collect():
        head = reader.table(data.get("scenario", {}), ("scenario",))
    reader.known(head, ("scenario",), HEAD_KEYS)
    name = _head(reader, lambda: reader.string(head, ("scenario", "name"), required=False), "")
    step_timeout = _head(
        reader, lambda: reader.seconds(head, ("scenario", "step_timeout"), 10.0), 10.0
    )
    bringup = _head(
        reader, lambda: reader.seconds(head, ("scenario", "bringup_timeout"), 60.0), 60.0
    )
    description = _head(
        reader, lambda: reader.string(head, ("scenario", "description"), required=False), ""
    )
    owner = _head(reader, lambda: reader.string(head, ("scenario", "owner"), required=False), "")
    variables = _variables(reader, data.get("vars", {}))
    boards = _boards(reader, data.get("boards"))
    raw_steps = data.get("steps")
    steps: tuple[Step, ...] = ()
    if not isinstance(raw_steps, list) or not raw_steps:
        reader.note(reader.fail(("steps",), "a scenario needs at least one [[steps]]"))
    else:
        scope = {"scenario", *variables}
        steps = _steps(reader, raw_steps, ("steps",), step_timeout, scope, set(), nested=False)
    reader.raise_errors()
    name = name or path.stem
    return Scenario(
        name=name,
        description=description,
        file=str(path),
        boards=boards,
        variables=tuple(variables.items()),
        steps=steps,
        bringup_timeout=bringup,
        owner=owner or f"scenario:{name}",
    )


def _head(reader: FileReader, read: Any, default: Any) -> Any:
    with reader.collect():
        return read()
    return default


def _variables(reader: FileReader, raw: Any) -> dict[str, Any]:
    try:
        variables = reader.table(raw, ("vars",))
    except ScenarioFileError as e:
        reader.note(e)
        return {}
    for key, value in variables.items():
        if not IDENT.match(key):
            reader.note(reader.fail(("vars", key), "a variable name must be an identifier"))
        if not isinstance(value, str | int | float | bool):
            reader.note(reader.fail(("vars", key), "a variable is a string, number or boolean"))
    return variables


def _boards(reader: FileReader, raw: Any) -> tuple[BoardUp, ...]:
    if raw is None:
        reader.note(reader.fail(("boards",), "a scenario needs at least one [[boards]]"))
        return ()
    if not isinstance(raw, list) or not raw:
        reader.note(reader.fail(("boards",), "must be an array of tables ([[boards]])"))
        return ()
    out = []
    for i, entry in enumerate(raw):
        with reader.collect():
            out.append(_board(reader, entry, ("boards", i)))
    return tuple(out)


def _board(reader: FileReader, entry: Any, path: KeyPath) -> BoardUp:
    table = reader.table(entry, path)
    reader.known(table, path, BOARD_KEYS)
    definition = reader.string(table, (*path, "board"))
    host = reader.string(table, (*path, "host"), required=False)
    base = reader.string(table, (*path, "name"), required=False) or definition
    if "/" in base and not host:
        host, _, base = base.partition("/")
    if host or reader.cluster is not None:
        return on_host(reader, table, path, host, base, definition)
    if definition not in reader.catalog.boards:
        known = reader.catalog.boards
        raise reader.fail(
            (*path, "board"),
            f"no board named {definition!r}{did_you_mean(definition, known)}; "
            f"known: {', '.join(sorted(known))}",
        )
    count = reader.count(table, (*path, "count"))
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
    return BoardUp(
        definition=definition,
        names=names,
        line=reader.lines.line(path),
        port=port,
        options=options,
    )


def _steps(
    reader: FileReader,
    raw: list[Any],
    path: KeyPath,
    default_timeout: float,
    scope: set[str],
    aliases: set[str],
    *,
    nested: bool,
) -> tuple[Step, ...]:
    """Every valid step; each invalid one's problem is collected."""

    def parse_nested(
        raw: list[Any], path: KeyPath, timeout: float, scope: set[str], aliases: set[str]
    ) -> tuple[Step, ...]:
        return _steps(reader, raw, path, timeout, scope, aliases, nested=True)

    steps = []
    for i, entry in enumerate(raw):
        try:
            steps.append(
                _step(
                    reader, entry, (*path, i), default_timeout, scope, aliases, nested, parse_nested
                )
            )
        except ScenarioFileError as e:
            reader.note(e)
            _declare_names(entry, scope, aliases)  # later steps may use them: no cascade
    return tuple(steps)


def _declare_names(entry: Any, scope: set[str], aliases: set[str]) -> None:
    if not isinstance(entry, dict):
        return
    if isinstance(entry.get("as"), str):
        aliases.add(entry["as"])
    if isinstance(entry.get("save"), str):
        scope.add(entry["save"])


def _step(
    reader: FileReader,
    entry: Any,
    path: KeyPath,
    default_timeout: float,
    scope: set[str],
    aliases: set[str],
    nested: bool,
    parse_nested: Any,
) -> Step:
    table = reader.table(entry, path)
    actions = [a for a in ACTIONS if a in table and a != "expect"]
    if len(actions) > 1:
        raise reader.fail(path, f"a step has one action, this one has {actions}")
    if not actions and "expect" not in table:
        unknown = [k for k in table if k not in COMMON]
        hint = did_you_mean(unknown[0], ACTIONS) if unknown else ""
        raise reader.fail(path, f"a step needs one action key ({', '.join(ACTIONS)}){hint}")
    name = actions[0] if actions else "expect"
    action = ACTIONS[name]
    reader.known(table, path, set(COMMON | action.keys | {name}))
    src = StepSource(
        reader=reader, table=table, path=path, action=name,
        timeout=reader.seconds(table, (*path, "timeout"), default_timeout),
        scope=scope, aliases=aliases, nested=nested, parse_steps=parse_nested,
    )  # fmt: skip
    if action.local_only and reader.cluster is not None:
        raise reader.fail(
            (*path, name),
            f"{name} steps run on a local runtime only: a cluster's hosts do not export "
            "their resource monitors",
        )
    fields: dict[str, Any] = {}
    for key in ("on", "board", "define", "owner"):
        if key in table and key in action.keys:
            fields[key] = reader.string(table, (*path, key))
            reader.check_vars((*path, key), fields[key], scope)
    if "on" in fields:
        reader.check_on((*path, "on"), fields["on"], aliases)
    if "board" in fields:
        reader.check_board((*path, "board"), fields["board"])
    target = ""
    if action.has_target:
        target = table[name]
        if not isinstance(target, str) or not target:
            raise reader.fail((*path, name), f"must be a non-empty string, not {target!r}")
        reader.check_vars((*path, name), target, scope)
    if action.needs_on and "on" not in fields:
        raise reader.fail(path, f"a {name} step needs 'on' (a lease alias or a device)")
    if action.needs_board and "board" not in fields:
        raise reader.fail(path, f"a {name} step needs 'board'")
    if name in ("expect", "wait") and not ("on" in fields or "board" in fields):
        raise reader.fail(path, f"an {name} step needs 'on' (a device) or 'board'")
    fields.update(action.parse(src, target))
    if "args" in table:
        args = table["args"]
        if not isinstance(args, list):
            raise reader.fail((*path, "args"), "must be an array")
        fields["args"] = tuple(_data(reader, (*path, "args"), a) for a in args)
        reader.check_vars((*path, "args"), repr(args), scope)
    if "expect" in table:
        fields["expect"] = _expect(reader, table["expect"], (*path, "expect"), scope)
        if name == "expect" and fields["expect"] == Expect():
            raise reader.fail((*path, "expect"), "an expect step needs at least one check")
    save = table.get("save", "")
    if save:
        scope.add(reader.ident(save, (*path, "save"), "a variable"))
    title = table.get("name") or _default_name(
        name, target, fields.get("on", "") or fields.get("board", "")
    )
    if not isinstance(title, str):
        raise reader.fail((*path, "name"), "must be a string")
    return Step(
        action=name, name=title, line=reader.lines.line(path), timeout=src.timeout,
        target=target, save=save, **fields,
    )  # fmt: skip


def _expect(reader: FileReader, raw: Any, path: KeyPath, scope: set[str]) -> Expect:
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
            reader.check_vars((*path, key), fields[key], scope)
    if "state" in fields and fields["state"] not in _STATES:
        raise reader.fail(
            (*path, "state"),
            f"unknown state {fields['state']!r}; valid: {', '.join(sorted(_STATES))}",
        )
    for key in ("min", "max"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise reader.fail((*path, key), f"must be a number, not {type_name(value)}")
            fields[key] = float(value)
    if "owners_count" in table:
        fields["owners_count"] = reader.integer(table, (*path, "owners_count"), 0, 0)
    fields["value"] = _data(reader, (*path, "value"), table["value"]) if "value" in table else UNSET
    return Expect(**fields)


def _data(reader: FileReader, path: KeyPath, value: Any) -> Any:
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


def _default_name(action: str, target: str, where: str) -> str:
    target = target.splitlines()[0] if target else ""
    if len(target) > 40:
        target = target[:37] + "..."
    parts = [action, target, f"on {where}" if where else ""]
    return " ".join(p for p in parts if p)
