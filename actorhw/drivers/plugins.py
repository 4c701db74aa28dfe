"""Discovery of driver plugins: drv_*.py files and entry points.

Drivers come from, in order: the bundled actors/ tree, the folders in
``ACTORHW_DRIVERS_PATH`` (os.pathsep-separated) and folders given by the caller, and
installed packages that declare an ``actorhw.drivers`` entry point.  A plugin that fails
to load (syntax error, missing hook, duplicate name) is reported with its file and the
problem; the others still load.  actorhw never imports a plugin by name.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from actorhw.core.errors import DriverError
from actorhw.drivers.board_driver import BoardDriver
from actorhw.drivers.bundled import bundled_dir
from actorhw.drivers.definitions import BoardDefinition

DRIVERS_PATH_ENV = "ACTORHW_DRIVERS_PATH"
ENTRY_POINT_GROUP = "actorhw.drivers"


@attrs.frozen
class DriverCatalog:
    """The drivers that loaded, by name, and the problems of those that did not."""

    drivers: Mapping[str, type[BoardDriver]]
    problems: tuple[DriverError, ...]

    def get(self, name: str) -> type[BoardDriver]:
        """The driver named ``name``; DriverError lists the loaded ones and problems."""
        try:
            return self.drivers[name]
        except KeyError:
            extra = "".join(f"\n  {p.message}" for p in self.problems)
            raise DriverError(
                f"no driver named {name!r}; loaded: {', '.join(sorted(self.drivers))}{extra}",
                driver=name,
                file="",
                problem="not found",
            ) from None

    def for_board(self, definition: BoardDefinition) -> type[BoardDriver]:
        """The driver a board definition names; an unknown one names the board file and
        the line of its ``driver`` key."""
        try:
            return self.get(definition.driver)
        except DriverError as e:
            if not definition.driver_line:
                raise
            where = f"{definition.source}:{definition.driver_line}: key 'board.driver'"
            raise DriverError(
                f"{where}: {e.message}",
                driver=definition.driver,
                file=str(definition.source),
                line=definition.driver_line,
                problem="not found",
            ) from None

    @classmethod
    def discover(
        cls, extra_dirs: Iterable[Path | str] = (), *, entry_points: bool = True
    ) -> DriverCatalog:
        """Load every driver plugin; collect the problems instead of failing."""
        dirs = [bundled_dir("actors")]
        dirs += [Path(p) for p in os.environ.get(DRIVERS_PATH_ENV, "").split(os.pathsep) if p]
        dirs += [Path(d) for d in extra_dirs]
        found: dict[str, tuple[type[BoardDriver], str]] = {}
        problems: list[DriverError] = []

        def add(driver: type[BoardDriver], origin: str) -> None:
            if driver.name in found and found[driver.name][0] is not driver:
                problems.append(
                    _problem(
                        origin,
                        f"duplicate driver name {driver.name!r} "
                        f"(already defined in {found[driver.name][1]})",
                    )
                )
                return
            found[driver.name] = (driver, origin)

        for folder in dirs:
            for path in sorted(Path(folder).rglob("drv_*.py")):
                try:
                    for driver in _drivers_in_file(path):
                        add(driver, str(path))
                except DriverError as e:
                    problems.append(e)
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                origin = f"entry point {ep.name} = {ep.value}"
                try:
                    obj = ep.load()
                    add(_checked(obj, origin), origin)
                except DriverError as e:
                    problems.append(e)
                except Exception as e:
                    problems.append(_problem(origin, f"failed to load: {e!r}"))
        return cls({n: d for n, (d, _) in found.items()}, tuple(problems))


def _problem(origin: str, problem: str) -> DriverError:
    return DriverError(f"{origin}: {problem}", file=origin, problem=problem)


def _drivers_in_file(path: Path) -> list[type[BoardDriver]]:
    module_name = f"actorhw_plugins.{path.parent.name}.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise _problem(str(path), "cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(module_name, None)
        raise _problem(str(path), f"syntax error at line {e.lineno}: {e.msg}") from e
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise _problem(str(path), f"failed to import: {e!r}") from e
    drivers = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BoardDriver)
        and obj is not BoardDriver
        and obj.__module__ == module_name
        and not inspect.isabstract(obj)
        and "name" in vars(obj)
    ]
    abstract = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BoardDriver)
        and obj.__module__ == module_name
        and inspect.isabstract(obj)
    ]
    if not drivers:
        detail = ""
        if abstract:
            missing = sorted(abstract[0].__abstractmethods__)
            detail = f": {abstract[0].__name__} does not implement {', '.join(missing)}"
        raise _problem(str(path), f"defines no complete BoardDriver subclass with a name{detail}")
    return [_checked(d, str(path)) for d in drivers]


def _checked(obj: object, origin: str) -> type[BoardDriver]:
    if not (inspect.isclass(obj) and issubclass(obj, BoardDriver)):
        raise _problem(origin, f"{obj!r} is not a BoardDriver subclass")
    if inspect.isabstract(obj):
        raise _problem(
            origin,
            f"{obj.__name__} does not implement {', '.join(sorted(obj.__abstractmethods__))}",
        )
    if not isinstance(getattr(obj, "name", None), str):
        raise _problem(origin, f"{obj.__name__} has no 'name' string")
    missing = _missing_hooks(obj)
    if missing:
        raise _problem(origin, f"{obj.__name__} {missing}")
    return obj


def _missing_hooks(driver: type[BoardDriver]) -> str:
    """What a driver declares but does not implement: commands without a command hook,
    stream channels without an acquisition loop."""
    for attr in ("supported_commands", "stream_channels"):
        value = getattr(driver, attr)
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            return f"has a {attr} that is not a dict of names to descriptions: {value!r}"
    if driver.supported_commands and driver.command is BoardDriver.command:
        return (
            f"declares supported_commands ({', '.join(driver.supported_commands)}) "
            "but does not implement command"
        )
    if driver.stream_channels and driver.acquisition_loop is BoardDriver.acquisition_loop:
        return (
            f"declares stream_channels ({', '.join(driver.stream_channels)}) "
            "but does not implement acquisition_loop"
        )
    return ""
