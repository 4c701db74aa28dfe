"""The ``parallel`` action: the same steps once per target, ``limit`` targets at a time.

A group is a multi-device job (`actorhw.api.jobs`): each target runs the nested
steps in order in its own `StepContext` (its own
variables and leases, released when the target ends); one failing target stops only its
own steps. Groups do not nest.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from actorhw.api.jobs import JobRunner
from actorhw.scenario.context import Progress, StepContext
from actorhw.scenario.model import Step
from actorhw.scenario.reader import VAR, StepSource
from actorhw.scenario.report import FAILED, PASSED, SKIPPED, StepEvent, StepResult


def parse_parallel(src: StepSource, target: str) -> dict[str, Any]:
    """Targets, variable, limit and the nested steps of a group."""
    reader, key = src.reader, src.key("parallel")
    if src.nested:
        raise reader.fail(key, "parallel groups cannot nest")
    raw = src.table["parallel"]
    if raw == "*":
        targets = tuple(reader.boards)
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        targets = tuple(raw)
    else:
        raise reader.fail(key, 'must be "*" (every board) or a non-empty array of strings')
    if len(set(targets)) != len(targets):
        raise reader.fail(key, "targets must be distinct")
    var = reader.ident(src.table.get("var", "board"), src.key("var"), "the target variable")
    if var == "board":
        for t in targets:
            if not VAR.search(t):
                reader.check_board(key, t)
    limit = src.table.get("limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise reader.fail(src.key("limit"), f"must be an int >= 0 (0: all at once), not {limit!r}")
    raw_steps = src.table.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise reader.fail(src.path, "a parallel group needs steps ([[steps.steps]])")
    inner = src.parse_steps(
        raw_steps, src.key("steps"), src.timeout, {*src.scope, var}, set(src.aliases)
    )
    return {"targets": targets, "var": var, "limit": limit, "steps": inner}


def run_parallel(step: Step, ctx: StepContext, progress: Progress) -> StepResult:
    """Run the group's steps once per target, ``limit`` targets at a time (a job)."""
    began = time.monotonic()
    targets = [ctx.sub(t) for t in step.targets]
    stop = progress.stop

    def one_target(target: str) -> tuple[StepResult, ...]:
        child = StepContext(ctx.rt, ctx.scenario, {**ctx.vars, step.var: target})
        inner = Progress(
            emit=progress.emit, stop=stop, index=progress.index, total=progress.total,
            run_step=progress.run_step, prefix=f"[{target}] ",
        )  # fmt: skip
        done: list[StepResult] = []
        try:
            for sub in step.steps:
                if stop.is_set():
                    break
                result = progress.run_step(sub, child, inner)
                done.append(result)
                progress.emit(
                    StepEvent(
                        scenario=ctx.scenario.name, index=progress.index, total=progress.total,
                        step=result.name, status=result.status, message=result.message,
                        counted=True,
                    )
                )  # fmt: skip
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
    batches = -(-len(targets) // limit)
    deadline = min(step.timeout * max(1, len(step.steps)) * batches + 5.0, threading.TIMEOUT_MAX)
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
                    name=f"[{item.target}]", action="parallel", line=step.line, status=FAILED,
                    message=item.error.message, code=item.error.code,
                )
            )  # fmt: skip
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
