"""Running scenarios on simulated boards: expectations, failures that say what was
expected and what came, parallel groups, teardown on failure and Ctrl-C, JUnit."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from actorhw import Runtime
from actorhw.scenario import Scenario, StepEvent, junit_xml, load_scenario, run_scenario

pytestmark = pytest.mark.timeout(60)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

HEAD = """\
[scenario]
name = "t"
step_timeout = 5

[[boards]]
board = "same70-xplained"
name = "lab"
"""


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime.start(timeout=10.0)
    try:
        yield runtime
    finally:
        runtime.stop()


def scenario(tmp_path: Path, body: str, head: str = HEAD) -> Scenario:
    path = tmp_path / "case.toml"
    path.write_text(head + body, encoding="utf-8")
    return load_scenario(path)


def test_quickstart_passes() -> None:
    events: list[StepEvent] = []
    loaded = load_scenario(SCENARIOS / "quickstart.toml")
    report = run_scenario(loaded, on_event=events.append)
    assert report.passed, report
    # a parallel group's step counts once per target, in the summary, progress and JUnit
    assert loaded.step_count == len(report.steps) + 1  # the group of 2 boards: 1 -> 2
    assert report.counts() == {"passed": loaded.step_count, "failed": 0, "skipped": 0}
    assert {e.total for e in events} == {loaded.step_count}
    assert sum(e.counted for e in events) == loaded.step_count
    statuses = [e.status for e in events]
    assert statuses[0] == "bringup" and statuses[-1] == "teardown"
    assert statuses.count("running") == len(report.steps)
    # the parallel group ran its step once per board
    assert [c.name for c in report.steps[-1].children] == [
        "[same70-xplained] expect on same70-xplained",
        "[microbit] expect on microbit",
    ]


def test_failure_says_expected_and_got_and_skips_the_rest(tmp_path: Path, rt: Runtime) -> None:
    body = """
[[steps]]
acquire = "lab.UART0"
as = "u"

[[steps]]
open = "u"

[[steps]]
name = "echo"
command = "write"
on = "u"
args = [{ bytes = "abc" }]
expect = { value = 4 }

[[steps]]
release = "u"
"""
    report = run_scenario(scenario(tmp_path, body), runtime=rt)
    assert not report.passed
    assert [s.status for s in report.steps] == ["passed", "passed", "failed", "skipped"]
    failed = report.steps[2]
    header = (HEAD + body).splitlines().index('name = "echo"')  # 0-based: the line before
    assert failed.message == f"step 'echo' (line {header}): expected value 4, got 3"
    assert failed.code == "scenario_step_failed" and failed.line == header
    # the teardown released the lease the skipped step would have
    ids = rt.ids("lab")
    assert rt.info(ids.UART0).owners_count == 0


def test_unexpected_error_is_a_failure_with_its_code(tmp_path: Path, rt: Runtime) -> None:
    body = '\n[[steps]]\nname = "no open"\ncommand = "read"\non = "u"\nargs = [1]\n'
    body = '\n[[steps]]\nacquire = "lab.UART0"\nas = "u"\n' + body
    report = run_scenario(scenario(tmp_path, body), runtime=rt)
    failed = report.steps[1]
    assert failed.status == "failed" and failed.code == "operation_not_permitted"
    assert "unexpected error" in failed.message and "call open() first" in failed.message


def test_expected_error_that_does_not_come(tmp_path: Path, rt: Runtime) -> None:
    body = '\n[[steps]]\nacquire = "lab.UART0"\nexpect = { error = "device_or_resource_busy" }\n'
    report = run_scenario(scenario(tmp_path, body), runtime=rt)
    assert "expected error device_or_resource_busy, but the step succeeded" in (
        report.steps[0].message
    )


def test_variables_save_and_numeric_bounds(tmp_path: Path, rt: Runtime) -> None:
    body = """
[vars]
n = 3

[[steps]]
acquire = "lab.ADC0"
as = "adc"
save = "owners"

[[steps]]
open = "adc"

[[steps]]
command = "read"
on = "adc"
expect = { min = 0, max = 4095 }

[[steps]]
name = "owners was ${owners}"
expect = { owners_count = 1 }
on = "adc"

[[steps]]
command = "read"
on = "adc"
expect = { max = -1 }
"""
    report = run_scenario(scenario(tmp_path, body), runtime=rt)
    assert [s.status for s in report.steps] == ["passed"] * 4 + ["failed"]
    assert report.steps[3].name == "owners was 1"
    assert "expected a value at most -1, got" in report.steps[4].message


def test_parallel_group_reports_every_target(tmp_path: Path, rt: Runtime) -> None:
    head = HEAD.replace('name = "lab"', 'name = "lab"\ncount = 3')
    body = """
[[steps]]
parallel = "*"
limit = 2

[[steps.steps]]
acquire = "${board}.UART0"
as = "u"

[[steps.steps]]
open = "u"

[[steps.steps]]
command = "write"
on = "u"
args = [{ bytes = "${board}" }]
expect = { value = 5 }
"""
    report = run_scenario(scenario(tmp_path, body, head), runtime=rt)
    (group,) = report.steps
    assert group.status == "passed"
    assert len(group.children) == 9
    assert {c.name.split("]")[0] for c in group.children} == {"[lab-1", "[lab-2", "[lab-3"}
    assert all(rt.info(rt.ids(f"lab-{n}").UART0).owners_count == 0 for n in (1, 2, 3))


def test_one_target_failing_does_not_hide_the_others(tmp_path: Path, rt: Runtime) -> None:
    head = HEAD.replace('name = "lab"', 'name = "lab"\ncount = 2')
    body = """
[[steps]]
parallel = "*"

[[steps.steps]]
command = "write"
on = "${board}.UART0"
args = [{ bytes = "${board}" }]
expect = { value = 5 }
"""
    with rt.lease(_start(rt, "lab-2").UART0, owner="x"):
        report = run_scenario(scenario(tmp_path, body, head), runtime=rt)
    (group,) = report.steps
    assert group.status == "failed"
    by_name = {c.name: c for c in group.children}
    assert by_name["[lab-1] command write on lab-1.UART0"].status == "passed"
    busy = by_name["[lab-2] command write on lab-2.UART0"]
    assert busy.status == "failed" and busy.code == "device_or_resource_busy"


def _start(rt: Runtime, board: str) -> type:
    from actorhw.api.runtime import BoardSpec

    rt.add_boards([BoardSpec("same70-xplained", board)], timeout=10.0)
    return rt.ids(board)


def test_ctrl_c_tears_down_and_reraises(tmp_path: Path, rt: Runtime) -> None:
    body = """
[[steps]]
acquire = "lab.UART0"
as = "u"

[[steps]]
open = "u"

[[steps]]
release = "u"
"""
    seen: list[str] = []

    def interrupt(event: StepEvent) -> None:
        seen.append(event.status)
        if event.index == 1 and event.status == "running":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scenario(scenario(tmp_path, body), runtime=rt, on_event=interrupt)
    assert seen[-1] == "teardown"
    assert rt.info(rt.ids("lab").UART0).owners_count == 0


def test_stop_event_ends_between_steps(tmp_path: Path, rt: Runtime) -> None:
    stop = threading.Event()
    body = '\n[[steps]]\nacquire = "lab.UART0"\nas = "u"\n\n[[steps]]\nopen = "u"\n'

    def on_event(event: StepEvent) -> None:
        if event.index == 0 and event.status == "passed":
            stop.set()

    report = run_scenario(scenario(tmp_path, body), runtime=rt, on_event=on_event, stop=stop)
    assert report.interrupted and not report.passed
    assert [s.status for s in report.steps] == ["passed", "skipped"]
    assert rt.info(rt.ids("lab").UART0).owners_count == 0


def test_exec_on_a_simulated_board_fails_clearly(tmp_path: Path) -> None:
    body = '\n[[steps]]\nexec = "print(1)"\non = "lab.BOARD"\n'
    head = HEAD.replace("same70-xplained", "microbit")
    report = run_scenario(scenario(tmp_path, body, head))
    assert report.passed is False
    assert report.steps[0].code == "operation_not_supported"
    assert "does not run code" in report.steps[0].message


def test_junit_xml(tmp_path: Path, rt: Runtime) -> None:
    body = (
        '\n[[steps]]\nacquire = "lab.UART0"\nexpect = { owners_count = 2 }\n\n'
        '[[steps]]\nexpect = { state = "CONNECTED" }\nboard = "lab"\n'
    )
    report = run_scenario(scenario(tmp_path, body), runtime=rt)
    root = ET.fromstring(junit_xml([report]))
    (suite,) = root
    assert suite.get("failures") == "1" and suite.get("skipped") == "1"
    first, second = suite
    failure = first.find("failure")
    assert failure is not None
    assert failure.get("type") == "scenario_step_failed"
    assert "expected lab.UART0 owners_count 2, got 1" in (failure.get("message") or "")
    assert second.find("skipped") is not None
