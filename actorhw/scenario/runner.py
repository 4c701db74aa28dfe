"""Run a `Scenario` against a fresh Runtime.

The runner brings the scenario's boards up, runs the steps in order (each through its
entry in `ACTIONS`), and stops at the first failure.
Whatever happens — a failure, an error, Ctrl-C — the teardown releases every lease the
scenario still holds and stops the runtime. Progress goes to an ``on_event`` callback
as `StepEvent`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from actorhw.api.lab import Lab
from actorhw.api.runtime import BoardSpec, Runtime
from actorhw.core.errors import ActorHwError, InvalidArgumentError
from actorhw.scenario.actions import action_of
from actorhw.scenario.context import Progress, StepContext, substitute
from actorhw.scenario.model import Scenario, Step
from actorhw.scenario.outcome import step_name
from actorhw.scenario.report import (
    FAILED,
    PASSED,
    SKIPPED,
    ScenarioReport,
    StepEvent,
    StepResult,
    partial_report,
)

__all__ = [
    "FAILED",
    "PASSED",
    "SKIPPED",
    "ScenarioReport",
    "StepEvent",
    "StepResult",
    "partial_report",
    "run_scenario",
    "run_step",
    "substitute",
]


class _Interrupted(Exception):
    """A stop was requested between steps."""


def run_step(step: Step, ctx: StepContext, progress: Progress) -> StepResult:
    """Run one step by its action's table entry; an unknown action is a failed step."""
    try:
        action = action_of(step)
    except ActorHwError as e:
        return StepResult(
            name=step_name(step, ctx, progress), action=step.action, line=step.line,
            status=FAILED, message=e.message, code=e.code,
        )  # fmt: skip
    return action.run(step, ctx, progress)


def run_scenario(
    scenario: Scenario,
    *,
    on_event: Callable[[StepEvent], None] | None = None,
    stop: threading.Event | None = None,
    boards_dirs: Sequence[Path | str] = (),
    drivers_dirs: Sequence[Path | str] = (),
    runtime: Lab | None = None,
) -> ScenarioReport:
    """Bring the boards up, run the steps, tear down; never raises for a step.

    Args:
        scenario: a loaded scenario (`load_scenario`).
        on_event: called with a StepEvent as each step starts and ends.
        stop: set it to stop between steps (the teardown still runs).
        boards_dirs: extra folders of board files.
        drivers_dirs: extra folders of driver plugins.
        runtime: run on this running Runtime instead of a fresh one: boards it does not
            run yet are added, and it is left running (the scenario's leases and
            allocations are still released). Or a cluster (``actorhw.cluster.Cluster``)
            for a scenario loaded with ``cluster=``: its boards live on hosts
            (``host/board``) and the bring-up checks that each one answers.

    Raises:
        KeyboardInterrupt: after the teardown, if Ctrl-C came during the run; its
            `partial_report` is the report so far (the running step failed).
    """
    emit = on_event or (lambda _e: None)
    stop = stop or threading.Event()
    total = scenario.step_count
    began = time.monotonic()
    results: list[StepResult] = []
    error = ""
    interrupted = False
    rt: Lab | None = None

    def report() -> ScenarioReport:
        done = results + [_skipped(s) for s in scenario.steps[len(results) :]]
        return ScenarioReport(
            name=scenario.name,
            file=scenario.file,
            steps=tuple(done),
            elapsed=time.monotonic() - began,
            error=error,
            interrupted=interrupted,
        )

    def event(
        index: int, step: str, status: str, message: str = "", counted: bool = False
    ) -> StepEvent:
        return StepEvent(
            scenario=scenario.name, index=index, total=total, step=step, status=status,
            message=message, counted=counted,
        )  # fmt: skip

    emit(event(-1, "bring-up", "bringup"))
    ctx: StepContext | None = None
    interrupt: KeyboardInterrupt | None = None
    try:
        try:
            rt = _bring_up(scenario, runtime, boards_dirs, drivers_dirs)
        except ActorHwError as e:
            error = f"bring-up failed: {e}"
            return report()
        ctx = StepContext(rt, scenario, {"scenario": scenario.name, **dict(scenario.variables)})
        for index, step in enumerate(scenario.steps):
            if stop.is_set():
                raise _Interrupted
            emit(event(index, step.name, "running"))
            progress = Progress(emit=emit, stop=stop, index=index, total=total, run_step=run_step)
            result = run_step(step, ctx, progress)
            results.append(result)
            emit(
                event(
                    index, step.name, result.status, message=result.message,
                    counted=not step.steps,
                )
            )  # fmt: skip
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
        emit(event(-1, "teardown", "teardown"))
        if ctx is not None:
            ctx.teardown()
        if isinstance(rt, Runtime) and runtime is None:
            rt.stop()
    if interrupt is not None:
        interrupt.partial_report = report()  # type: ignore[attr-defined]
        raise interrupt
    return report()


def _bring_up(
    scenario: Scenario,
    runtime: Lab | None,
    boards_dirs: Sequence[Path | str],
    drivers_dirs: Sequence[Path | str],
) -> Lab:
    on_hosts = [b for b in scenario.boards if b.host]
    if on_hosts and (runtime is None or isinstance(runtime, Runtime)):
        raise InvalidArgumentError(
            f"board {on_hosts[0].names[0]} (line {on_hosts[0].line}) lives on a cluster "
            "host: run the scenario on a cluster (actorhw --cluster URL run)",
            argument="runtime",
        )
    if runtime is not None and not isinstance(runtime, Runtime):
        deadline = time.monotonic() + scenario.bringup_timeout
        for name in scenario.board_names:  # each board's host answers for it, or says why
            runtime.board_status(name, timeout=max(0.1, deadline - time.monotonic()))
        return runtime
    specs = [
        BoardSpec(b.definition, n, port=b.port, options=b.options)
        for b in scenario.boards
        for n in b.names
    ]
    if runtime is None:
        return Runtime.start(
            boards=specs,
            boards_dirs=boards_dirs,
            drivers_dirs=drivers_dirs,
            timeout=scenario.bringup_timeout,
        )
    running = {status.board for status in runtime.boards()}
    missing = [spec for spec in specs if spec.name not in running]
    if missing:
        runtime.add_boards(missing, timeout=scenario.bringup_timeout)
    return runtime


def _skipped(step: Step) -> StepResult:
    """A step that did not run; a group's steps are skipped once per target."""
    children = tuple(
        StepResult(name=f"[{t}] {s.name}", action=s.action, line=s.line, status=SKIPPED)
        for t in step.targets
        for s in step.steps
    )
    return StepResult(
        name=step.name, action=step.action, line=step.line, status=SKIPPED, children=children
    )
