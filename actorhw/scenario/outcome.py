"""How a plain step's outcome is judged: run its action, check what it must give.

`plain` makes the ``run`` of a table entry (`actorhw.scenario.actions`) from
a function that performs the action and returns its value: the value (or the error) is
checked against the step's ``expect``, and becomes a `StepResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actorhw.core.errors import ActorHwError, DeviceExceptionError, ScenarioStepError
from actorhw.core.ids import DeviceId
from actorhw.scenario.context import Progress, StepContext
from actorhw.scenario.model import UNSET, Expect, Step
from actorhw.scenario.report import FAILED, PASSED, StepResult

#: Performs a step's action; returns its value (raises ActorHwError on failure).
Perform = Callable[[Step, StepContext], Any]
#: Runs a step to its result (a table entry's ``run``).
RunStep = Callable[[Step, StepContext, Progress], StepResult]


def step_name(step: Step, ctx: StepContext, progress: Progress) -> str:
    """The step's name as shown: its variables substituted, after the group's prefix."""
    try:
        return progress.prefix + ctx.sub(step.name)
    except ActorHwError:  # a variable saved by a step that has not run
        return progress.prefix + step.name


def plain(perform: Perform) -> RunStep:
    """The ``run`` of an action that ``perform``s and returns a value to check."""

    def run(step: Step, ctx: StepContext, progress: Progress) -> StepResult:
        began = time.monotonic()
        name = step_name(step, ctx, progress)
        value: Any = None
        failure: ActorHwError | None = None
        held: DeviceId | None = None
        if step.action == "release" and ctx.sub(step.target) in ctx.leases:
            held = ctx.leases[ctx.sub(step.target)].device  # checks after it look at it
        try:
            value = perform(step, ctx)
        except ActorHwError as e:
            failure = e
        try:
            _check(step, ctx, value, failure, held)
        except ActorHwError as e:
            message = (
                e.message
                if isinstance(e, ScenarioStepError)
                else f"step '{name}' (line {step.line}): unexpected error {e}"
            )
            return StepResult(
                name=name, action=step.action, line=step.line, status=FAILED,
                elapsed=time.monotonic() - began, message=message, code=e.code,
                value=_short(value), detail=_detail(e),
            )  # fmt: skip
        if step.save:
            ctx.vars[step.save] = value
        return StepResult(
            name=name, action=step.action, line=step.line, status=PASSED,
            elapsed=time.monotonic() - began, value=_short(value),
        )  # fmt: skip

    return run


def _detail(error: ActorHwError) -> str:
    """What a person needs beyond the message: the board's own traceback, if it raised."""
    return error.traceback_text if isinstance(error, DeviceExceptionError) else ""


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _check(
    step: Step, ctx: StepContext, value: Any, failure: ActorHwError | None, held: DeviceId | None
) -> None:
    """Raise ScenarioStepError (or the step's own error) unless the step went as expected."""
    expect = step.expect or Expect()
    if failure is not None:
        if not expect.wants_error:
            raise failure
        codes = expect.error or ("device_exception",)
        raised = getattr(failure, "exc_name", None)
        if failure.code not in codes or (expect.raises and raised != expect.raises):
            wanted = " or ".join(codes) + (f" raising {expect.raises}" if expect.raises else "")
            got = failure.code + (f" raising {raised}" if raised else "")
            _fail(step, f"expected error {wanted}, got {got}: {failure.message}", wanted, got)
    elif expect.wants_error:
        wanted = " or ".join(expect.error) or f"device_exception raising {expect.raises}"
        _fail(
            step,
            f"expected error {wanted}, but the step succeeded (value {_short(value)!r})",
            wanted,
            "success",
        )
    else:
        _check_value(step, ctx, expect, value)
    _check_state(step, ctx, expect, held)


def _check_value(step: Step, ctx: StepContext, expect: Expect, value: Any) -> None:
    if expect.output is not None:
        want = ctx.sub(expect.output).strip()
        got = str(value if value is not None else "").strip()
        if got != want:
            _fail(step, f"expected output {want!r}, got {got!r}", want, got)
    if expect.contains is not None:
        want = ctx.sub(expect.contains)
        text = value if isinstance(value, str) else repr(value)
        if want not in text:
            _fail(step, f"expected output containing {want!r}, got {_short(text)!r}", want, text)
    if expect.value is not UNSET:
        wanted = ctx.data(expect.value)
        came = list(value) if isinstance(value, tuple) else value
        if came != wanted:
            _fail(step, f"expected value {wanted!r}, got {value!r}", repr(wanted), repr(value))
    for bound, word in ((expect.min, "at least"), (expect.max, "at most")):
        if bound is None:
            continue
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or (value < bound if word == "at least" else value > bound):
            what = "a value" if number else "a number"
            shown = f"{bound:g}"
            _fail(step, f"expected {what} {word} {shown}, got {value!r}", shown, repr(value))


def _check_state(step: Step, ctx: StepContext, expect: Expect, held: DeviceId | None) -> None:
    if expect.state is None and expect.owners_count is None:
        return
    subject = held or ctx.subject(step)
    if subject is None:
        _fail(step, "a state check needs 'on' (a device) or 'board'", "a subject", "none")
    if isinstance(subject, DeviceId):
        info = ctx.rt.info(subject, timeout=step.timeout)
        state = info.state.name
        if expect.owners_count is not None and info.owners_count != expect.owners_count:
            _fail(
                step,
                f"expected {subject.key} owners_count {expect.owners_count}, got "
                f"{info.owners_count} (owners: {', '.join(info.owners) or 'none'})",
                str(expect.owners_count),
                str(info.owners_count),
            )
    else:
        assert isinstance(subject, str)
        status = ctx.rt.board_status(subject, timeout=step.timeout)
        state = status.state.name
        if expect.owners_count is not None:
            _fail(step, "owners_count is a device's, not a board's", "a device", subject)
    if expect.state is not None and state != expect.state:
        _fail(step, f"expected state {expect.state}, got {state}", expect.state, state)


def _fail(step: Step, message: str, expected: str, actual: str) -> None:
    raise ScenarioStepError(
        f"step '{step.name}' (line {step.line}): {message}",
        step=step.name,
        expected=expected,
        actual=actual,
    )
