"""The built wheel works on its own: installed in a fresh virtualenv, run outside the tree.

The wheel packs the bundled driver plugins (actors/) and board files (boards/) under
``actorhw/_bundled/``; these tests prove that they are in it, that the ``actorhw``
command finds the boards, and that a Runtime loads the ``sim`` driver from there.

Fast path: the wheel is built once per module; the virtualenv is made without pip
(``venv --without-pip``, no ensurepip) and this interpreter's pip installs into it
(``pip --python``), resolving the dependencies from the configured indexes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from actorhw.links import qemu_available
from tests.integration.serial_boards import UnixBoardFactory
from tests.plugin_runs import run_pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_BOARDS = {"same70-xplained", "microbit", "microbit-qemu", "stm32f4-discovery"}
STEP_TIMEOUT = 240.0
"""Seconds one subprocess (build, install, run) may take."""


@attrs.frozen
class Installed:
    wheel: Path
    venv: Path
    site_packages: Path
    timings: dict[str, float]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def actorhw(self) -> Path:
        return self.venv / "bin" / "actorhw"


def _clean_env() -> dict[str, str]:
    """The environment without anything that would point back into the source tree."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
        and not k.startswith("ACTORHW_")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str | Path], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel built from this checkout, installed in a fresh virtualenv."""
    base = tmp_path_factory.mktemp("wheel")
    timings: dict[str, float] = {}

    start = time.perf_counter()
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", base / "dist", ROOT], cwd=base)
    timings["build"] = time.perf_counter() - start
    wheels = sorted((base / "dist").glob("actorhw-*.whl"))
    assert len(wheels) == 1, wheels

    start = time.perf_counter()
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base)
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python"]
    _run([*pip, "install", "--quiet", wheels[0]], cwd=base)
    timings["venv+install"] = time.perf_counter() - start

    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    found = _run([venv / "bin" / "python", "-I", "-c", purelib], cwd=base)
    site_packages = Path(found.stdout.strip()).resolve()
    yield Installed(wheels[0], venv.resolve(), site_packages, timings)


def test_wheel_holds_the_bundled_plugins_and_boards(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    assert "actorhw/_bundled/actors/sim/drv_sim.py" in names
    assert "actorhw/_bundled/boards/same70-xplained.toml" in names
    for board in BUNDLED_BOARDS:
        assert f"actorhw/_bundled/boards/{board}.toml" in names
    assert "actorhw/api/runtime.py" in names
    assert "actorhw/py.typed" in names
    # The bundled trees live inside the package, never as top-level packages.
    assert not any(n.startswith(("actors/", "boards/", "tests/")) for n in names), sorted(names)


def test_actorhw_boards_lists_the_bundled_boards(installed: Installed, tmp_path: Path) -> None:
    result = _run([installed.actorhw, "boards", "--json"], cwd=tmp_path)
    rows = json.loads(result.stdout)
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) >= BUNDLED_BOARDS, sorted(by_name)
    bundled = installed.site_packages / "actorhw" / "_bundled" / "boards"
    for board in BUNDLED_BOARDS:
        assert Path(by_name[board]["source"]).resolve().parent == bundled, by_name[board]
    assert by_name["same70-xplained"]["driver"] == "sim"
    assert by_name["same70-xplained"]["devices"] == 14


SNIPPET = textwrap.dedent(
    """
    import inspect, json
    import actorhw
    from actorhw import Runtime, Uart

    with Runtime.start(boards=["same70-xplained"], timeout=30.0) as rt:
        Same70 = rt.ids("same70-xplained")
        with rt.lease(Uart, Same70.UART0, owner="wheel-test") as uart:
            written = uart.write(b"hello wheel")
            echoed = uart.read(64)
        drivers = {name: inspect.getfile(d) for name, d in rt.drivers.drivers.items()}
        problems = [p.message for p in rt.drivers.problems]
    print(json.dumps({
        "package": actorhw.__file__, "drivers": drivers, "problems": problems,
        "written": written, "echoed": echoed.decode(),
    }))
    """
)


def test_runtime_from_the_wheel_loads_the_bundled_sim_driver(
    installed: Installed, tmp_path: Path
) -> None:
    result = _run([installed.python, "-I", "-c", SNIPPET], cwd=tmp_path)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    package = Path(out["package"]).resolve()
    assert package.is_relative_to(installed.site_packages), out
    assert not package.is_relative_to(ROOT), out
    actors = installed.site_packages / "actorhw" / "_bundled" / "actors"
    assert Path(out["drivers"]["sim"]).resolve() == actors / "sim" / "drv_sim.py", out
    # Every bundled driver plugin imports from the installed wheel alone.
    assert out["problems"] == [], out
    for name, file in out["drivers"].items():
        assert Path(file).resolve().is_relative_to(actors), (name, file)
    assert out["written"] == len(b"hello wheel"), out
    assert out["echoed"] == "hello wheel", out
    print(f"wheel timings (s): {installed.timings}")


@pytest.mark.qemu
def test_example_project_runs_on_the_plugin_from_the_wheel(
    installed: Installed, tmp_path: Path, unix_boards: UnixBoardFactory
) -> None:
    """examples/hil-project, copied out of the tree, runs its tests with the wheel's
    pytest plugin under pytest-xdist on a QEMU micro:bit, a simulated one and a
    MicroPython board on a serial port (the unix port on a pty) (docs/testing.md)."""
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {reason}", pytrace=False)
    serial_board = unix_boards()
    project = tmp_path / "hil-project"
    shutil.copytree(ROOT / "examples" / "hil-project", project)
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    extras = meta["project"]["optional-dependencies"]["test"]
    pip = [sys.executable, "-m", "pip", "--python", installed.python]
    _run([*pip, "install", "--quiet", *extras], cwd=tmp_path)

    boards = ["microbit-qemu", "microbit", f"micropython={serial_board.path}"]
    args = [f"--actorhw-board={b}" for b in boards]
    run = run_pytest(project, "-n", "2", *args, python=str(installed.python), timeout=STEP_TIMEOUT)
    assert run.outcomes == {
        "test_board_runs_code": "passed",
        "test_counter_on_each_board[microbit-qemu]": "passed",
        "test_counter_on_each_board[micropython]": "passed",
        "test_display_shows_text": "passed",
        "test_each_board_is_active[microbit-qemu]": "passed",
        "test_each_board_is_active[microbit]": "passed",
        "test_each_board_is_active[micropython]": "passed",
        "test_skipped_without_i2c[microbit-qemu]": "skipped",
        "test_skipped_without_i2c[microbit]": "skipped",
        "test_skipped_without_i2c[micropython]": "skipped",
        "test_any_board_has_ids": "passed",
    }, run
    assert run.returncode == 0, run
    assert run.messages["test_skipped_without_i2c[micropython]"] == (
        "needs i2c: micropython lacks i2c"
    )
