"""What a scenario run gives: a result per step, a report per scenario, progress events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@attrs.frozen(kw_only=True)
class StepResult:
    """How one step went."""

    name: str
    """The step's name; inside a parallel group ``[target] name``."""
    action: str
    """Its action."""
    line: int
    """Its line in the file."""
    status: str
    """``passed``, ``failed`` or ``skipped``."""
    elapsed: float = 0.0
    """Seconds it took."""
    message: str = ""
    """For a failure: what was expected and what came."""
    code: str = ""
    """For a failure: the error code (``scenario_step_failed`` for an unmet expectation)."""
    value: str = ""
    """The step's value, as text (output, result), shortened."""
    detail: str = ""
    """For a failure, what a person needs beyond the message: the board's traceback
    (with its line numbers) when code on the board raised."""
    children: tuple[StepResult, ...] = ()
    """A parallel group's steps, for every target."""


@attrs.frozen(kw_only=True)
class ScenarioReport:
    """How a scenario went."""

    name: str
    """The scenario's name."""
    file: str
    """Its file."""
    steps: tuple[StepResult, ...]
    """One result per top-level step, in order (skipped ones included)."""
    elapsed: float
    """Seconds from start to the end of the teardown."""
    error: str = ""
    """A failure outside the steps (bring-up, teardown), else empty."""
    interrupted: bool = False
    """Ctrl-C (or a stop request) ended it early."""

    @property
    def passed(self) -> bool:
        """Whether every step passed and nothing else went wrong."""
        return (
            not self.error and not self.interrupted and all(s.status == PASSED for s in self.steps)
        )

    def counts(self) -> dict[str, int]:
        """How many steps passed, failed and were skipped, each step of a parallel group
        counted once per target (as progress and the JUnit report count them)."""
        out = {PASSED: 0, FAILED: 0, SKIPPED: 0}
        for step in leaves(self.steps):
            out[step.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data, for --json."""
        return {**attrs.asdict(self), "passed": self.passed}


@attrs.frozen(kw_only=True)
class StepEvent:
    """Progress: a step of a scenario started or ended."""

    scenario: str
    """The scenario's name."""
    index: int
    """0-based index of the top-level step."""
    total: int
    """How many steps the scenario has, each step of a parallel group counted once per
    target (`Scenario.step_count`): the unit of progress, summary and JUnit."""
    step: str
    """The step's name (``[target] name`` inside a parallel group)."""
    status: str
    """``running``, ``passed``, ``failed`` or ``skipped``; ``bringup`` and ``teardown``
    for the phases around the steps (index -1)."""
    message: str = ""
    """For a failure, what went wrong."""
    counted: bool = False
    """This event ends one of the ``total`` steps (a parallel group's own end is not
    counted: its targets' steps are)."""


def leaves(steps: Iterable[StepResult]) -> list[StepResult]:
    """The steps as counted: a parallel group's children in its place."""
    out: list[StepResult] = []
    for step in steps:
        out.extend(leaves(step.children) if step.children else [step])
    return out


def partial_report(interrupt: KeyboardInterrupt) -> ScenarioReport | None:
    """The report of the scenario that ``interrupt`` (raised by run_scenario) stopped."""
    found = getattr(interrupt, "partial_report", None)
    return found if isinstance(found, ScenarioReport) else None
