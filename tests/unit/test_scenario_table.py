"""Scenario steps as one table (issue 11): action -> (keys, parse, run); an unknown
action is an error at load time, never a step that silently does nothing; one load
reports every problem of a file (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actorhw.core.errors import ScenarioFileError
from actorhw.scenario import load_scenario, run_scenario
from actorhw.scenario.actions import ACTIONS, action_of
from actorhw.scenario.model import Scenario, Step

pytestmark = pytest.mark.timeout(30)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
HEAD = '[[boards]]\nboard = "same70-xplained"\nname = "lab"\n\n'


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "case.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def test_the_documented_actions_are_the_table() -> None:
    rows = r"^\| `([a-z]+) = [^|]*\|[^|]*\|[^|]*\|[^|]*\|$"  # the 4-column table of actions
    documented = set(re.findall(rows, DOCS.read_text(encoding="utf-8"), re.M))
    assert documented == set(ACTIONS)


def test_unknown_action_is_refused_at_load_time_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, '[[steps]]\nexecute = "print(1)"\non = "lab.UART0"\n')
    with pytest.raises(ScenarioFileError) as e:
        load_scenario(path)
    assert "did you mean 'exec' or 'expect'?" in e.value.message
    assert e.value.line == 5


def test_a_hand_built_step_with_an_unknown_action_fails_when_run() -> None:
    step = Step(action="blink", name="blink it", line=3, timeout=1.0)
    with pytest.raises(Exception, match="unknown action 'blink'"):
        action_of(step)
    scenario = Scenario(
        name="hand", description="", file="hand.toml", boards=(), variables=(),
        steps=(step,), bringup_timeout=5.0, owner="me",
    )  # fmt: skip
    report = run_scenario(scenario)
    assert not report.passed
    (result,) = report.steps
    assert result.status == "failed" and "unknown action 'blink'" in result.message


def test_every_problem_of_a_file_in_one_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[scenario]\nstep_timeout = "soon"\n\n'
        '[[steps]]\nacquire = "lab.UART9"\nas = "u"\n\n'
        '[[steps]]\nopen = "u"\nexpekt = { state = "ACTIVE" }\n\n'
        '[[steps]]\nwait = "READY"\nboard = "lab"\n\n'
        '[[steps]]\nexec = "print(${nope})"\non = "lab.UART0"\n',
    )
    with pytest.raises(ScenarioFileError) as e:
        load_scenario(path)
    problems = e.value.problems
    keys = [p["key"] for p in problems]
    assert keys == [
        "scenario.step_timeout", "steps.0.acquire", "steps.1.expekt", "steps.2.wait",
        "steps.3.exec",
    ]  # fmt: skip
    assert all(p["file"] == str(path) and p["line"] > 0 for p in problems)
    message = e.value.message
    assert message.startswith(f"{path}:6: key 'scenario.step_timeout'")
    assert "and 4 more problems" in message
    assert "did you mean 'expect'?" in message  # the misspelt key
    assert "no lease named" not in message  # 'u' failed to acquire: no cascade
