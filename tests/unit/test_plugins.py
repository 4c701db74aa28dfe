"""Driver plugin discovery: bundled, user folders, broken plugins reported by file."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorhw.errors import DriverError
from actorhw.plugins import DriverCatalog

pytestmark = pytest.mark.timeout(20)

GOOD = """
from actorhw.driver import BoardDriver, Peripheral

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
