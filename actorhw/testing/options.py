"""The plugin's options: which boards a test session may lease, and where they are.

Every option has an ini twin; the command line wins:

- `--actorhw-board NAME[=PORT]` (repeatable; ini `actorhw_boards`, one per line): a
  board definition to test on, optionally on a serial port;
- `--actorhw-boards-dir DIR` (repeatable; ini `actorhw_boards_dir`): board files;
- `--actorhw-drivers-dir DIR` (repeatable; ini `actorhw_drivers_dir`): driver plugins;
- `--actorhw-cluster URL` (ini `actorhw_cluster`): a cluster to join;
- `--actorhw-lease-timeout S` (ini `actorhw_lease_timeout`, 60): how long a test waits
  for a busy board;
- `--actorhw-bringup-timeout S` (ini `actorhw_bringup_timeout`, 30): how long a board
  may take to come up;
- `--actorhw-lock-dir DIR` (ini `actorhw_lock_dir`): where board locks live.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest

from actorhw.api.runtime import BoardSpec
from actorhw.core.errors import ActorHwError
from actorhw.core.ids import DeviceKind
from actorhw.drivers.definitions import BoardCatalog, BoardDefinition

DEFAULT_LEASE_TIMEOUT = 60.0
DEFAULT_BRINGUP_TIMEOUT = 30.0


@attrs.frozen
class SelectedBoard:
    """One board the session may lease: an instance of a definition, maybe on a port."""

    name: str
    """The instance's name (the definition's name; ``NAME-2``... when given twice)."""
    definition: BoardDefinition
    port: str | None = None

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of its devices (``display``, ``i2c``, ...)."""
        return frozenset(d.kind.value for d in self.definition.devices)

    @property
    def has_board_device(self) -> bool:
        """Whether it has a BOARD device (one that runs code)."""
        return any(d.kind is DeviceKind.BOARD for d in self.definition.devices)

    def board_device(self) -> str | None:
        """The name of its first BOARD device, if any."""
        for device in self.definition.devices:
            if device.kind is DeviceKind.BOARD:
                return device.name
        return None

    def missing(self, needs: Sequence[str]) -> list[str]:
        """Which of ``needs`` (device kinds or device names) it lacks."""
        names = {d.name.lower() for d in self.definition.devices}
        return [n for n in needs if n.lower() not in self.kinds and n.lower() not in names]

    def matches(self, patterns: Sequence[str]) -> bool:
        """Whether its instance or definition name matches one of the glob ``patterns``."""
        return any(
            fnmatch.fnmatchcase(self.name, p) or fnmatch.fnmatchcase(self.definition.name, p)
            for p in patterns
        )

    def spec(self) -> BoardSpec:
        """The BoardSpec that starts it under its instance name (with its port)."""
        return BoardSpec(self.definition.name, name=self.name, port=self.port)

    def __str__(self) -> str:
        return self.name if self.port is None else f"{self.name}={self.port}"


@attrs.frozen
class Settings:
    """The plugin's settings for one session, from the command line and the ini file."""

    boards: tuple[SelectedBoard, ...]
    boards_dirs: tuple[Path, ...]
    drivers_dirs: tuple[Path, ...]
    cluster: str | None
    lease_timeout: float
    bringup_timeout: float
    lock_dir: Path | None


def add_options(parser: pytest.Parser) -> None:
    """Register the command-line options and their ini twins."""
    group = parser.getgroup("actorhw", "actorhw hardware-in-the-loop testing")
    group.addoption(
        "--actorhw-board",
        action="append",
        default=[],
        metavar="NAME[=PORT]",
        help="a board definition to test on (repeatable), e.g. microbit-qemu or "
        "microbit=/dev/ttyACM0; ini: actorhw_boards",
    )
    group.addoption(
        "--actorhw-boards-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="an extra folder of board files (repeatable); ini: actorhw_boards_dir",
    )
    group.addoption(
        "--actorhw-drivers-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="an extra folder of drv_*.py driver plugins (repeatable); ini: actorhw_drivers_dir",
    )
    group.addoption(
        "--actorhw-cluster",
        metavar="URL",
        default=None,
        help="a cluster to join (the actorhw_cluster fixture); ini: actorhw_cluster",
    )
    group.addoption(
        "--actorhw-lease-timeout",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds a test waits for a busy board (default {DEFAULT_LEASE_TIMEOUT:g})",
    )
    group.addoption(
        "--actorhw-bringup-timeout",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds a board may take to come up (default {DEFAULT_BRINGUP_TIMEOUT:g})",
    )
    group.addoption(
        "--actorhw-lock-dir",
        default=None,
        metavar="DIR",
        help="where board locks live; default: a folder per test run for boards "
        "without a port, one per machine for boards on a port",
    )
    parser.addini("actorhw_boards", "boards to test on, NAME[=PORT] per line", type="linelist")
    parser.addini("actorhw_boards_dir", "extra folders of board files", type="paths")
    parser.addini("actorhw_drivers_dir", "extra folders of driver plugins", type="paths")
    parser.addini("actorhw_cluster", "a cluster URL to join", default="")
    parser.addini("actorhw_lease_timeout", "seconds a test waits for a busy board", default="")
    parser.addini("actorhw_bringup_timeout", "seconds a board may take to come up", default="")
    parser.addini("actorhw_lock_dir", "where board locks live", default="")


def read_settings(config: pytest.Config) -> Settings:
    """The session's settings; pytest.UsageError names what is wrong with them."""
    cli_boards: list[str] = config.getoption("actorhw_board")
    board_args = cli_boards or [str(b) for b in config.getini("actorhw_boards")]
    cli_dirs: list[str] = config.getoption("actorhw_boards_dir")
    boards_dirs = tuple(Path(d) for d in cli_dirs) or tuple(config.getini("actorhw_boards_dir"))
    cli_drivers: list[str] = config.getoption("actorhw_drivers_dir")
    drivers_dirs = tuple(Path(d) for d in cli_drivers) or tuple(
        config.getini("actorhw_drivers_dir")
    )
    for folder in (*boards_dirs, *drivers_dirs):
        if not Path(folder).is_dir():
            raise pytest.UsageError(f"actorhw: {folder} is not a folder")
    try:
        catalog = BoardCatalog.discover(boards_dirs)
    except ActorHwError as e:
        raise pytest.UsageError(f"actorhw: {e}") from None
    cluster = config.getoption("actorhw_cluster") or str(config.getini("actorhw_cluster")) or None
    if cluster is not None:
        check_cluster_support()
    lock_dir = config.getoption("actorhw_lock_dir") or str(config.getini("actorhw_lock_dir"))
    return Settings(
        boards=select_boards(board_args, catalog),
        boards_dirs=tuple(Path(d) for d in boards_dirs),
        drivers_dirs=tuple(Path(d) for d in drivers_dirs),
        cluster=cluster,
        lease_timeout=_seconds(config, "lease_timeout", DEFAULT_LEASE_TIMEOUT),
        bringup_timeout=_seconds(config, "bringup_timeout", DEFAULT_BRINGUP_TIMEOUT),
        lock_dir=Path(lock_dir) if lock_dir else None,
    )


def select_boards(args: Sequence[str], catalog: BoardCatalog) -> tuple[SelectedBoard, ...]:
    """``NAME[=PORT]`` arguments as boards; a name given twice gets ``NAME-2``, ..."""
    selected: list[SelectedBoard] = []
    taken: set[str] = set()
    for arg in args:
        name, sep, port = arg.strip().partition("=")
        name, port = name.strip(), port.strip()
        if not name or (sep and not port):
            raise pytest.UsageError(f"actorhw: --actorhw-board {arg!r}: expected NAME or NAME=PORT")
        try:
            definition = catalog.get(name)
        except ActorHwError as e:
            raise pytest.UsageError(f"actorhw: --actorhw-board {arg!r}: {e.message}") from None
        instance, n = name, 2
        while instance in taken:
            instance, n = f"{name}-{n}", n + 1
        taken.add(instance)
        selected.append(SelectedBoard(instance, definition, port or None))
    return tuple(selected)


def check_cluster_support() -> None:
    """pytest.UsageError unless actorhw's cluster support (Cluster.connect) is installed."""
    try:
        module = importlib.import_module("actorhw.cluster")
    except ImportError:
        module = None
    cluster = getattr(module, "Cluster", None)
    if not callable(getattr(cluster, "connect", None)):
        raise pytest.UsageError(
            "actorhw: --actorhw-cluster: cluster support not installed "
            "(this actorhw has no actorhw.cluster.Cluster.connect)"
        )


def _seconds(config: pytest.Config, name: str, default: float) -> float:
    value = config.getoption(f"actorhw_{name}")
    if value is None:
        text = str(config.getini(f"actorhw_{name}")).strip()
        try:
            value = float(text) if text else default
        except ValueError:
            raise pytest.UsageError(
                f"actorhw: ini actorhw_{name} = {text!r} is not a number of seconds"
            ) from None
    if value <= 0:
        raise pytest.UsageError(f"actorhw: {name.replace('_', ' ')} must be > 0 s, not {value}")
    return float(value)
