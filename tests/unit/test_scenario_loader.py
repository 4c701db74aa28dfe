"""Scenario files: a malformed one is refused before anything runs, naming file, line
and key; a valid one becomes frozen steps."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from actorhw.core.errors import ScenarioFileError
from actorhw.scenario import load_scenario
from actorhw.scenario.model import UNSET, BytesData

pytestmark = pytest.mark.timeout(30)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

HEAD = """\
[scenario]
name = "t"

[[boards]]
board = "same70-xplained"
name = "lab"
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "case.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` that contains ``needle``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, start=1) if needle in text)


@pytest.mark.parametrize("shipped", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(shipped: Path) -> None:
    scenario = load_scenario(shipped)
    assert scenario.steps and scenario.boards
    assert scenario.description


def test_steps_are_frozen_data(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[vars]
word = "hi"

[[steps]]
acquire = "lab.UART0"
as = "u"
owner = "me"

[[steps]]
name = "say ${word}"
command = "write"
on = "u"
args = [{ bytes = "${word}" }, 3]
expect = { value = 2 }
timeout = 2.5
""",
    )
    scenario = load_scenario(path)
    acquire, write_step = scenario.steps
    assert (acquire.action, acquire.target, acquire.alias, acquire.owner) == (
        "acquire", "lab.UART0", "u", "me",
    )  # fmt: skip
    assert acquire.line == line_of(path, "acquire =") - 1  # the [[steps]] header
    assert write_step.args == (BytesData("${word}"), 3)
    assert write_step.timeout == 2.5 and acquire.timeout == 10.0
    assert write_step.expect is not None and write_step.expect.value == 2
    assert acquire.expect is None
    assert scenario.variables == (("word", "hi"),)
    assert scenario.board_names == ("lab",)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        acquire.target = "other"  # type: ignore[misc]


def test_unset_expectation_differs_from_expecting_none(tmp_path: Path) -> None:
    path = write(tmp_path, '[[steps]]\nexpect = { state = "CONNECTED" }\nboard = "lab"\n')
    (step,) = load_scenario(path).steps
    assert step.expect is not None and step.expect.value is UNSET


def test_count_names_instances(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[boards]]\nboard = "microbit"\ncount = 3\n\n'
        '[[steps]]\nparallel = "*"\n[[steps.steps]]\nexpect = { state = "CONNECTED" }\n'
        'board = "${board}"\n',
        encoding="utf-8",
    )
    scenario = load_scenario(path)
    assert scenario.board_names == ("microbit-1", "microbit-2", "microbit-3")
    assert scenario.steps[0].targets == scenario.board_names


BAD = [
    # (body, key in the error, text on the error's line, words in the message)
    ('[[steps]]\nacquire = "lab.UART9"\n', "steps.0.acquire", "UART9", "no device 'UART9'"),
    ('[[steps]]\nacquire = "nope.UART0"\n', "steps.0.acquire", "nope", "no board instance"),
    ('[[steps]]\nopen = "u"\n', "steps.0.open", 'open = "u"', "no lease named 'u'"),
    ('[[steps]]\nexec = "print(1)"\non = "lab.UART0"\nexpekt = {}\n', "steps.0.expekt",
     "expekt", "unknown key"),
    ('[[steps]]\nfault = "melt"\nboard = "lab"\n', "steps.0.fault", "melt", "unknown fault"),
    ('[[steps]]\nwait = "READY"\nboard = "lab"\n', "steps.0.wait", "READY", "unknown state"),
    ('[[steps]]\nexec = "print(${nope})"\non = "lab.UART0"\n', "steps.0.exec", "nope",
     "unknown variable ${nope}"),
    ('[[steps]]\nexec = "x"\non = "lab.UART0"\ntimeout = -1\n', "steps.0.timeout", "timeout",
     "positive number"),
    ('[[steps]]\nexec = "x"\n', "steps.0", "[[steps]]", "needs 'on'"),
    ('[[steps]]\nexec = "x"\nfault = "unplug"\n', "steps.0", "[[steps]]", "one action"),
    ('[[steps]]\nname = "nothing"\n', "steps.0", "[[steps]]", "needs one action"),
    ('[[steps]]\nexpect = { stat = "CONNECTED" }\nboard = "lab"\n', "steps.0.expect.stat",
     "stat =", "unknown key"),
    ('[[steps]]\nmeasure = "memory.bogus"\non = "lab.UART0"\n', "steps.0.measure", "bogus",
     "unknown metric"),
    ('[[steps]]\nexec = "x"\non = "lab.UART0"\n\n[[steps]]\nparallel = ["lab"]\n'
     '[[steps.steps]]\nexec = "y"\non = "${board}.NOPE"\n[[steps.steps]]\nwait = "UP"\n'
     'board = "lab"\n', "steps.1.steps.1.wait", 'wait = "UP"', "unknown state"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "key", "on_line", "words"), BAD, ids=[b[1] for b in BAD])
def test_malformed_step_names_file_line_and_key(
    tmp_path: Path, body: str, key: str, on_line: str, words: str
) -> None:
    path = write(tmp_path, "\n" + body)
    with pytest.raises(ScenarioFileError) as e:
        load_scenario(path)
    assert e.value.key == key
    assert e.value.file == str(path)
    assert e.value.line == line_of(path, on_line)
    assert str(e.value).startswith(f"[invalid_scenario_file] {path}:{e.value.line}: key '{key}'")
    assert words in str(e.value)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '\n[[steps]]\nexec = "unterminated\n')
    with pytest.raises(ScenarioFileError) as e:
        load_scenario(path)
    assert e.value.line == line_of(path, "unterminated")
    assert "invalid TOML" in str(e.value)


def test_unknown_board_definition(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('[[boards]]\nboard = "pdp-11"\n\n[[steps]]\nopen = "x"\n', encoding="utf-8")
    with pytest.raises(ScenarioFileError) as e:
        load_scenario(path)
    assert (e.value.key, e.value.line) == ("boards.0.board", 2)
    assert "same70-xplained" in str(e.value)  # lists the known boards


def test_missing_file() -> None:
    with pytest.raises(ScenarioFileError, match="cannot read"):
        load_scenario("/nonexistent/scenario.toml")


def test_saved_variable_is_known_to_later_steps_only(tmp_path: Path) -> None:
    ok = write(
        tmp_path,
        '\n[[steps]]\nacquire = "lab.UART0"\nsave = "n"\n\n'
        '[[steps]]\nexpect = { contains = "${n}" }\nboard = "lab"\n',
    )
    load_scenario(ok)
    bad = write(
        tmp_path,
        '\n[[steps]]\nexpect = { contains = "${n}" }\nboard = "lab"\n\n'
        '[[steps]]\nacquire = "lab.UART0"\nsave = "n"\n',
    )
    with pytest.raises(ScenarioFileError, match=r"unknown variable \$\{n\}"):
        load_scenario(bad)
