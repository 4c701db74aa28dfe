"""Driver plugin discovery: bundled, user folders, broken plugins reported by file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from actorhw.core.errors import DriverError
from actorhw.drivers.plugins import DriverCatalog

pytestmark = pytest.mark.timeout(20)

GOOD = """
from actorhw.drivers.board_driver import BoardDriver, Peripheral

class Mine(BoardDriver):
    name = "mine"

    def peripheral(self, spec):
        return Peripheral(spec)
"""


def test_bundled_sim_driver() -> None:
    catalog = DriverCatalog.discover()
    assert "sim" in catalog.drivers
    assert not catalog.problems


def test_user_folder_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "drv_mine.py").write_text(GOOD)
    assert "mine" in DriverCatalog.discover([tmp_path]).drivers
    monkeypatch.setenv("ACTORHW_DRIVERS_PATH", str(tmp_path))
    assert "mine" in DriverCatalog.discover().drivers


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("def broken(:\n", "syntax error at line 1"),
        (GOOD.replace("    def peripheral(self, spec):\n        return Peripheral(spec)\n", ""),
         "does not implement peripheral"),
        ("raise ImportError('no such sdk')\n", "failed to import"),
        (GOOD.replace('"mine"', '"sim"'), "duplicate driver name 'sim'"),
    ],
)  # fmt: skip
def test_broken_plugin_reported_others_load(tmp_path: Path, source: str, problem: str) -> None:
    (tmp_path / "drv_broken.py").write_text(source)
    (tmp_path / "drv_good.py").write_text(GOOD)
    catalog = DriverCatalog.discover([tmp_path])
    assert "mine" in catalog.drivers or "sim" in problem
    assert len(catalog.problems) == 1
    assert problem in catalog.problems[0].message
    assert str(tmp_path / "drv_broken.py") in catalog.problems[0].message


def test_unknown_driver_error_lists_loaded() -> None:
    with pytest.raises(DriverError, match=r"loaded: .*sim"):
        DriverCatalog.discover().get("nope")


# --- the three sources and the seeds' hooks --------------------------------------------

STREAMING = """
from actorhw.drivers.board_driver import BoardDriver, Peripheral

class Streaming(BoardDriver):
    name = "streaming"
    stream_channels = {"x": "a channel"}
    supported_commands = {"ping": "answer pong"}

    def peripheral(self, spec):
        return Peripheral(spec)
"""

ENTRY_POINT_MODULE = GOOD.replace('"mine"', '"from-entry-point"')


def _install_entry_point(
    root: Path, monkeypatch: pytest.MonkeyPatch, *, target: str, module: str
) -> None:
    """A distribution on sys.path whose entry point names ``target``."""
    monkeypatch.delitem(sys.modules, "epdriver", raising=False)  # a previous test's
    (root / "epdriver.py").write_text(module)
    dist = root / "epdriver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: epdriver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[actorhw.drivers]\nmine = {target}\n")
    monkeypatch.syspath_prepend(str(root))


def test_discovery_from_all_three_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user, env, site = tmp_path / "user", tmp_path / "env", tmp_path / "site"
    for folder in (user, env, site):
        folder.mkdir()
    (user / "drv_user.py").write_text(GOOD.replace('"mine"', '"from-user-dir"'))
    (env / "drv_env.py").write_text(GOOD.replace('"mine"', '"from-env"'))
    monkeypatch.setenv("ACTORHW_DRIVERS_PATH", str(env))
    _install_entry_point(site, monkeypatch, target="epdriver:Mine", module=ENTRY_POINT_MODULE)
    catalog = DriverCatalog.discover([user])
    assert {"sim", "microbit-qemu", "can-virtual"} <= catalog.drivers.keys()  # bundled
    assert {"from-user-dir", "from-env", "from-entry-point"} <= catalog.drivers.keys()
    assert not catalog.problems
    assert "from-entry-point" not in DriverCatalog.discover([user], entry_points=False).drivers


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("epdriver:Nope", "failed to load: AttributeError"),
        ("epdriver:helper", "is not a BoardDriver subclass"),
        ("epdriver:Abstract", "Abstract does not implement peripheral"),
    ],
)
def test_a_broken_entry_point_is_reported_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, problem: str
) -> None:
    module = ENTRY_POINT_MODULE + (
        "\ndef helper():\n    pass\n\nclass Abstract(BoardDriver):\n    name = 'abstract'\n"
    )
    _install_entry_point(tmp_path, monkeypatch, target=target, module=module)
    catalog = DriverCatalog.discover()
    assert "sim" in catalog.drivers
    (error,) = catalog.problems
    assert error.message.startswith(f"entry point mine = {target}: ")
    assert problem in error.message


def test_a_duplicate_name_across_sources_names_both_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "drv_one.py").write_text(GOOD)
    (second / "drv_two.py").write_text(GOOD)
    catalog = DriverCatalog.discover([first, second])
    assert catalog.drivers["mine"].__module__.endswith("drv_one")
    (error,) = catalog.problems
    assert error.file == str(second / "drv_two.py")  # type: ignore[attr-defined]
    assert f"duplicate driver name 'mine' (already defined in {first / 'drv_one.py'})" in (
        error.message
    )


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (STREAMING, "declares supported_commands (ping) but does not implement command"),
        (
            STREAMING.replace('    supported_commands = {"ping": "answer pong"}\n', ""),
            "declares stream_channels (x) but does not implement acquisition_loop",
        ),
        (
            STREAMING.replace('{"x": "a channel"}', '["x"]'),
            "has a stream_channels that is not a dict of names to descriptions",
        ),
        (GOOD.replace('    name = "mine"\n', ""), "defines no complete BoardDriver subclass"),
    ],
)
def test_a_missing_hook_is_named_with_the_file(tmp_path: Path, source: str, problem: str) -> None:
    (tmp_path / "drv_half.py").write_text(source)
    (tmp_path / "drv_good.py").write_text(GOOD)
    catalog = DriverCatalog.discover([tmp_path])
    assert "mine" in catalog.drivers
    (error,) = catalog.problems
    assert error.message.startswith(f"{tmp_path / 'drv_half.py'}: ")
    assert problem in error.message


def test_a_complete_streaming_driver_loads_and_lists_its_commands(tmp_path: Path) -> None:
    source = STREAMING + (
        "\n    def command(self, command, args, *, timeout):\n        return 'pong'\n"
        "\n    def acquisition_loop(self, stream):\n        pass\n"
    )
    (tmp_path / "drv_streaming.py").write_text(source)
    catalog = DriverCatalog.discover([tmp_path])
    assert not catalog.problems
    assert sorted(catalog.get("streaming").commands()) == ["ping", "start", "stop"]
