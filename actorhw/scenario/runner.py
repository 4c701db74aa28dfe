"""Run a `Scenario` against a fresh Runtime.

The runner brings the scenario's boards up, runs the steps in order (a ``parallel``
group runs its steps once per target through `actorhw.jobs`), checks each step's
expectations, and stops at the first failure. Whatever happens — a failure, an error,
Ctrl-C — the teardown releases every lease the scenario still holds and stops the
runtime. Progress goes to an ``on_event`` callback as `StepEvent`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from actorhw.api.handles import Board, Handle
from actorhw.api.jobs import JobRunner
from actorhw.api.runtime import BoardSpec, Runtime
from actorhw.api.sessions import Session
from actorhw.core import resources as monitor_api
from actorhw.core.errors import (
    ActorHwError,
    InvalidArgumentError,
    NoSuchDeviceError,
    ScenarioStepError,
    TimedOutError,
    WrongKindError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.log import logger
from actorhw.core.messages import Allocation, ResourceKind, ResourceThresholdExceeded, StateChanged
from actorhw.programming.wire import board_value, parse_result
from actorhw.scenario.loader import VAR
from actorhw.scenario.model import UNSET, BytesData, Expect, Scenario, Step

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
        """How many top-level steps passed, failed and were skipped."""
        out = {PASSED: 0, FAILED: 0, SKIPPED: 0}
        for step in self.steps:
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
    """How many top-level steps the scenario has."""
    step: str
    """The step's name (``[target] name`` inside a parallel group)."""
    status: str
    """``running``, ``passed``, ``failed`` or ``skipped``; ``bringup`` and ``teardown``
    for the phases around the steps (index -1)."""
    message: str = ""
    """For a failure, what went wrong."""


class _Interrupted(Exception):
    """A stop was requested between steps."""


def substitute(text: str, variables: dict[str, Any]) -> str:
    """``text`` with every ``${name}`` replaced by its variable's value."""

    def one(found: Any) -> str:
        name = found.group(1)
        if name not in variables:
            raise InvalidArgumentError(f"unknown variable ${{{name}}}", argument=name)
        return str(variables[name])

    return VAR.sub(one, text)


class _Context:
    """Variables and leases of one run of some steps (the scenario, or one target of a
    parallel group). Used from one thread."""

    def __init__(self, rt: Runtime, scenario: Scenario, variables: dict[str, Any]) -> None:
        self.rt = rt
        self.scenario = scenario
        self.vars = variables
        self.leases: dict[str, Handle] = {}
        self.anonymous: list[Handle] = []
        self.allocations: dict[str, Allocation] = {}
        self._session: Session | None = None

    def session(self) -> Session:
        """The session that holds this context's allocations, opened on first use."""
        if self._session is None:
            self._session = self.rt.session(self.scenario.owner, watch_thread=False)
        return self._session

    def sub(self, text: str) -> str:
        return substitute(text, self.vars)

    def data(self, value: Any) -> Any:
        if isinstance(value, BytesData):
            return self.sub(value.text).encode("utf-8")
        if isinstance(value, str):
            return self.sub(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        return value

    def device(self, ref: str, *, timeout: float) -> DeviceId:
        board, _, name = ref.partition(".")
        ids = self.rt.ids(board)
        try:
            return ids[name]
        except KeyError:
            raise NoSuchDeviceError(
                f"no device {ref!r}", device=ref, valid_ids=[d.name for d in ids]
            ) from None

    def alias(self, name: str) -> Handle:
        try:
            return self.leases[name]
        except KeyError:
            raise InvalidArgumentError(
                f"no lease named {name!r} is held; held: {', '.join(self.leases) or 'none'}",
                argument=name,
            ) from None

    @contextlib.contextmanager
    def using(self, on: str, *, timeout: float) -> Iterator[Handle]:
        """The open handle of a lease alias, or a device leased for this step only."""
        on = self.sub(on)
        if on in self.leases:
            yield self.leases[on]
            return
        device = self.device(on, timeout=timeout)
        with self.rt.lease(device, owner=self.scenario.owner, timeout=timeout) as handle:
            yield handle

    def subject(self, step: Step) -> DeviceId | str | None:
        """What a step's state checks look at: a device id, a board name, or nothing."""
        if step.on:
            on = self.sub(step.on)
            if on in self.leases:
                return self.leases[on].device
            return self.device(on, timeout=step.timeout)
        if step.board:
            return self.sub(step.board)
        if step.action == "acquire":
            return self.device(self.sub(step.target), timeout=step.timeout)
        if step.action in ("open", "close", "release"):
            return self.alias(self.sub(step.target)).device
        return None

    def teardown(self) -> None:
        """Release every lease and allocation still held, newest first; errors are logged."""
        self.allocations.clear()
        session, self._session = self._session, None
        if session is not None:
            try:
                session.end()
            except ActorHwError as e:
                logger.warning("teardown: ending session {} failed: {}", session.name, e)
        handles = [*self.anonymous, *self.leases.values()]
        self.anonymous.clear()
        self.leases.clear()
        for handle in reversed(handles):
            if handle.lease is not None:
                try:
                    handle.release()
                except ActorHwError as e:
                    logger.warning("teardown: release of {} failed: {}", handle.device.key, e)


def run_scenario(
    scenario: Scenario,
    *,
    on_event: Callable[[StepEvent], None] | None = None,
    stop: threading.Event | None = None,
    boards_dirs: Sequence[Path | str] = (),
    runtime: Runtime | None = None,
) -> ScenarioReport:
    """Bring the boards up, run the steps, tear down; never raises for a step.

    Args:
        scenario: a loaded scenario (`load_scenario()`).
        on_event: called with a StepEvent as each step starts and ends.
        stop: set it to stop between steps (the teardown still runs).
        boards_dirs: extra folders of board files.
        runtime: run on this running Runtime instead of a fresh one: boards it does not
            run yet are added, and it is left running (the scenario's leases and
            allocations are still released).

    Raises:
        KeyboardInterrupt: after the teardown, if Ctrl-C came during the run; its
            :func:`partial_report` is the report so far (the running step failed).
    """
    emit = on_event or (lambda _e: None)
    stop = stop or threading.Event()
    total = len(scenario.steps)
    began = time.monotonic()
    results: list[StepResult] = []
    error = ""
    interrupted = False
    rt: Runtime | None = None

    def report() -> ScenarioReport:
        done = results + [
            StepResult(name=s.name, action=s.action, line=s.line, status=SKIPPED)
            for s in scenario.steps[len(results) :]
        ]
        return ScenarioReport(
            name=scenario.name,
            file=scenario.file,
            steps=tuple(done),
            elapsed=time.monotonic() - began,
            error=error,
            interrupted=interrupted,
        )

    emit(
        StepEvent(scenario=scenario.name, index=-1, total=total, step="bring-up", status="bringup")
    )
    ctx: _Context | None = None
    interrupt: KeyboardInterrupt | None = None
    try:
        specs = [
            BoardSpec(b.definition, n, port=b.port, options=b.options)
            for b in scenario.boards
            for n in b.names
        ]
        try:
            if runtime is None:
                rt = Runtime.start(
                    boards=specs, boards_dirs=boards_dirs, timeout=scenario.bringup_timeout
                )
            else:
                running = {status.board for status in runtime.boards()}
                missing = [spec for spec in specs if spec.name not in running]
                if missing:
                    runtime.add_boards(missing, timeout=scenario.bringup_timeout)
                rt = runtime
        except ActorHwError as e:
            error = f"bring-up failed: {e}"
            return report()
        ctx = _Context(rt, scenario, {"scenario": scenario.name, **dict(scenario.variables)})
        for index, step in enumerate(scenario.steps):
            if stop.is_set():
                raise _Interrupted
            emit(StepEvent(scenario=scenario.name, index=index, total=total, step=step.name,
                           status="running"))  # fmt: skip
            result = _run_step(step, ctx, emit=emit, index=index, total=total, stop=stop)
            results.append(result)
            emit(StepEvent(scenario=scenario.name, index=index, total=total, step=step.name,
                           status=result.status, message=result.message))  # fmt: skip
            if stop.is_set():
                raise _Interrupted
            if result.status != PASSED:
                break
    except _Interrupted:
        interrupted = True
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM in the CLI
        interrupted = True
        stop.set()
        interrupt = e
    finally:
        _teardown(scenario, ctx, rt if runtime is None else None, emit, total)
    if interrupt is not None:
        interrupt.partial_report = report()  # type: ignore[attr-defined]
        raise interrupt
    return report()


def partial_report(interrupt: KeyboardInterrupt) -> ScenarioReport | None:
    """The report of the scenario that ``interrupt`` (raised by run_scenario) stopped."""
    found = getattr(interrupt, "partial_report", None)
    return found if isinstance(found, ScenarioReport) else None


def _teardown(
    scenario: Scenario,
    ctx: _Context | None,
    rt: Runtime | None,
    emit: Callable[[StepEvent], None],
    total: int,
) -> None:
    emit(StepEvent(scenario=scenario.name, index=-1, total=total, step="teardown",
                   status="teardown"))  # fmt: skip
    if ctx is not None:
        ctx.teardown()
    if rt is not None:
        rt.stop()


def _run_step(
    step: Step,
    ctx: _Context,
    *,
    emit: Callable[[StepEvent], None],
    index: int,
    total: int,
    stop: threading.Event,
    prefix: str = "",
) -> StepResult:
    began = time.monotonic()
    try:
        name = prefix + ctx.sub(step.name)
    except ActorHwError:  # a variable saved by a step that has not run
        name = prefix + step.name
    if step.action == "parallel":
        return _parallel(step, ctx, emit=emit, index=index, total=total, stop=stop)
    value: Any = None
    failure: ActorHwError | None = None
    held: DeviceId | None = None
    if step.action == "release" and ctx.sub(step.target) in ctx.leases:
        held = ctx.leases[ctx.sub(step.target)].device  # checks after it look at it
    try:
        value = _do(step, ctx)
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
            name=name,
            action=step.action,
            line=step.line,
            status=FAILED,
            elapsed=time.monotonic() - began,
            message=message,
            code=e.code,
            value=_short(value),
        )
    if step.save:
        ctx.vars[step.save] = value
    return StepResult(
        name=name,
        action=step.action,
        line=step.line,
        status=PASSED,
        elapsed=time.monotonic() - began,
        value=_short(value),
    )


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _do(step: Step, ctx: _Context) -> Any:
    """Perform one step's action; returns its value."""
    rt, timeout, action = ctx.rt, step.timeout, step.action
    if action == "acquire":
        device = ctx.device(ctx.sub(step.target), timeout=timeout)
        handle = rt.get(device, timeout=timeout)
        handle.acquire(ctx.sub(step.owner) if step.owner else ctx.scenario.owner)
        if step.alias:
            if step.alias in ctx.leases:
                handle.release()
                raise InvalidArgumentError(
                    f"a lease named {step.alias!r} is already held", argument=step.alias
                )
            ctx.leases[step.alias] = handle
        else:
            ctx.anonymous.append(handle)
        return handle.info().owners_count
    if action == "open":
        ctx.alias(ctx.sub(step.target)).open()
        return None
    if action == "close":
        ctx.alias(ctx.sub(step.target)).close()
        return None
    if action == "release":
        alias = ctx.sub(step.target)
        if alias in ctx.allocations:
            ctx.session().release_allocation(ctx.allocations.pop(alias), timeout=timeout)
            return None
        remaining = ctx.alias(alias).release()
        del ctx.leases[alias]
        return remaining
    if action in ("exec", "task"):
        code = ctx.sub(step.target)
        if action == "task":
            args = ",".join(
                board_value(ctx.data(a), name=f"args[{i}]") for i, a in enumerate(step.args)
            )
            code = f"{ctx.sub(step.define)}\nprint(repr({code}({args})))"
        with ctx.using(step.on, timeout=timeout) as handle:
            if not isinstance(handle, Board):
                raise WrongKindError(
                    f"{handle.device.key} is a {handle.kind.value} device; "
                    f"{action} needs a board device (BOARD)",
                    device=handle.device.key,
                    expected="board",
                    actual=handle.kind.value,
                )
            output = handle.exec(code, timeout=timeout)
        if action == "exec":
            return output
        lines = [line for line in output.splitlines() if line.strip()]
        return parse_result(lines[-1] if lines else "", task=step.target, device=handle.device.key)
    if action == "command":
        with ctx.using(step.on, timeout=timeout) as handle:
            assert handle.lease is not None
            values = tuple(ctx.data(a) for a in step.args)
            return rt.use(handle.lease, ctx.sub(step.target), values, timeout=timeout)
    if action == "fault":
        return rt.inject_fault(ctx.sub(step.board), step.target, timeout=timeout)
    if action == "wait":
        state = DeviceState[step.target]
        if step.board:
            rt.wait_for_board(ctx.sub(step.board), state, timeout=timeout, restarts=step.restarts)
            return state.name
        subject = ctx.subject(step)
        assert isinstance(subject, DeviceId)
        return _wait_device(rt, subject, state, timeout=timeout)
    if action == "allocate":
        return _allocate(step, ctx)
    if action in ("measure", "threshold"):
        return _measure(step, ctx)
    return None  # expect: the checks do the work


def _wait_device(rt: Runtime, device: DeviceId, state: DeviceState, *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    with rt.subscribe(maxsize=1024) as events:
        info = rt.info(device, timeout=timeout)
        if info.state is state:
            return state.name
        try:
            events.wait_for(
                lambda e: (
                    isinstance(e, StateChanged) and e.device is device and e.to_state is state
                ),
                timeout=max(0.0, deadline - time.monotonic()),
            )
        except TimedOutError:
            info = rt.info(device, timeout=timeout)
            if info.state is state:
                return state.name
            raise TimedOutError(
                f"{device.key} not {state.name} within {timeout:g} s; it is {info.state.name}",
                device=device.key,
                timeout=timeout,
            ) from None
    return state.name


def _board_device(step: Step, ctx: _Context) -> DeviceId:
    device = ctx.subject(step)
    assert isinstance(device, DeviceId)
    return device


def _allocate(step: Step, ctx: _Context) -> int:
    """Reserve part of a board in the scenario's session; the value is the amount."""
    options = dict(step.options)
    allocation = ctx.session().allocate(
        _board_device(step, ctx),
        ResourceKind(step.target),
        int(options["amount"]),
        timeout=step.timeout,
    )
    if step.alias:
        ctx.allocations[step.alias] = allocation
    return allocation.amount


def _measure(step: Step, ctx: _Context) -> Any:
    """``measure``: a metric's value now. ``threshold``: set it, sample, and answer
    whether the sample crossed it (the monitor publishes before it answers)."""
    device = _board_device(step, ctx)
    monitor = ctx.rt.monitor
    if step.action == "measure":
        return monitor_api.metric(monitor.status(device, timeout=step.timeout), step.target)
    monitor.set_threshold(device, step.target, dict(step.options)["limit"], timeout=step.timeout)
    with ctx.rt.subscribe(maxsize=1024) as events:
        monitor.status(device, timeout=step.timeout)
        return any(
            isinstance(e, ResourceThresholdExceeded)
            and e.device is device
            and e.metric == step.target
            for e in events.drain()
        )


def _check(
    step: Step, ctx: _Context, value: Any, failure: ActorHwError | None, held: DeviceId | None
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


def _check_value(step: Step, ctx: _Context, expect: Expect, value: Any) -> None:
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


def _check_state(step: Step, ctx: _Context, expect: Expect, held: DeviceId | None) -> None:
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


def _parallel(
    step: Step,
    ctx: _Context,
    *,
    emit: Callable[[StepEvent], None],
    index: int,
    total: int,
    stop: threading.Event,
) -> StepResult:
    """Run the group's steps once per target, ``limit`` targets at a time (a job)."""
    began = time.monotonic()
    targets = [ctx.sub(t) for t in step.targets]

    def one_target(target: str) -> tuple[StepResult, ...]:
        child = _Context(ctx.rt, ctx.scenario, {**ctx.vars, step.var: target})
        done: list[StepResult] = []
        try:
            for sub in step.steps:
                if stop.is_set():
                    break
                result = _run_step(
                    sub, child, emit=emit, index=index, total=total, stop=stop,
                    prefix=f"[{target}] ",
                )  # fmt: skip
                done.append(result)
                emit(StepEvent(scenario=ctx.scenario.name, index=index, total=total,
                               step=result.name, status=result.status,
                               message=result.message))  # fmt: skip
                if result.status != PASSED:
                    break
        finally:
            child.teardown()
        done += [
            StepResult(name=f"[{target}] {s.name}", action=s.action, line=s.line, status=SKIPPED)
            for s in step.steps[len(done) :]
        ]
        return tuple(done)

    limit = step.limit or len(targets)
    deadline = step.timeout * max(1, len(step.steps)) * -(-len(targets) // limit) + 5.0
    children: list[StepResult] = []
    with JobRunner(ctx.rt, workers=limit) as runner:
        job = runner.submit(targets, one_target, name=step.name, limit=limit)
        try:
            result = job.wait(timeout=deadline)
        except BaseException:
            stop.set()  # the targets stop between steps; the runner joins them
            job.cancel()
            raise
    for item in result.results:
        if item.error is not None:
            children.append(
                StepResult(
                    name=f"[{item.target}]",
                    action="parallel",
                    line=step.line,
                    status=FAILED,
                    message=item.error.message,
                    code=item.error.code,
                )
            )
        else:
            assert item.value is not None
            children.extend(item.value)
    failed = [c for c in children if c.status != PASSED]
    return StepResult(
        name=step.name,
        action="parallel",
        line=step.line,
        status=FAILED if failed else PASSED,
        elapsed=time.monotonic() - began,
        message="; ".join(f"{c.name}: {c.message or c.status}" for c in failed[:4]),
        code=failed[0].code if failed else "",
        children=tuple(children),
    )
