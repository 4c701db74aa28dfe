"""Every shipped scenario (scenarios/*.toml) runs and passes; those on micro:bits run
against the real firmware in QEMU (and fail, never skip, when QEMU is missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorhw import Runtime
from actorhw.api.jobs import run_job
from actorhw.links import qemu_available
from actorhw.programming import MicroPythonDevice, setup, task
from actorhw.scenario import load_scenario, run_scenario

pytestmark = pytest.mark.timeout(150)

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.toml"))


def _uses_qemu(path: Path) -> bool:
    return any(b.definition.endswith("-qemu") for b in load_scenario(path).boards)


def test_the_five_shipped_scenarios_are_here() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {
        "quickstart", "microbit-smoke", "recovery-drill", "multi-device-job",
        "resource-thresholds",
    } <= names  # fmt: skip


@pytest.mark.qemu
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_passes(path: Path) -> None:
    if _uses_qemu(path):
        reason = qemu_available()
        if reason is not None:
            pytest.fail(f"QEMU micro:bit is required for {path.name}: {reason}", pytrace=False)
    report = run_scenario(load_scenario(path))
    failures = [
        f"{s.name}: {s.message}"
        for top in report.steps
        for s in (top.children or (top,))
        if s.status != "passed"
    ]
    assert report.passed, f"{path.name}: {report.error or ''} {failures}"
    assert report.counts()["passed"] == load_scenario(path).step_count


class _Counter(MicroPythonDevice):
    """A device class whose task runs on each board of a job."""

    @setup
    def init(self):  # type: ignore[no-untyped-def]
        global hits
        hits = 0

    @task
    def hit(self, n: int) -> int:
        global hits
        hits += n
        return hits


@pytest.mark.qemu
def test_job_runs_a_device_class_on_each_board() -> None:
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {reason}", pytrace=False)
    with Runtime.start(boards=["microbit-qemu"] * 2, timeout=30) as rt:
        boards = [rt.ids(b.board).BOARD for b in rt.boards()]
        result = run_job(
            rt, boards, lambda dev: [dev.hit(2), dev.hit(3)], owner="job", device_class=_Counter,
            timeout=60,
        )  # fmt: skip
        assert result.ok, result.errors
        assert result.values == {b: [2, 5] for b in boards}
        assert all(rt.info(b).owners_count == 0 for b in boards)
