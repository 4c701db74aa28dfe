"""The step actions, as one table: action -> (keys, parse, run).

`ACTIONS` is the only place an action is defined. The loader checks a step's keys
against its entry and calls ``parse`` (action-specific checks, extra Step fields); the
runner calls ``run``. A step whose action is not in the table is refused at load time,
and a Step built by hand with an unknown action is refused when it runs
(`action_of`), never skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from actorhw.api.handles import Board
from actorhw.core import resources as monitor_api
from actorhw.core.errors import InvalidArgumentError, WrongKindError
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import ResourceKind, ResourceThresholdExceeded
from actorhw.core.resources import METRICS
from actorhw.core.suggest import did_you_mean
from actorhw.programming.wire import board_value, parse_result
from actorhw.scenario.context import StepContext
from actorhw.scenario.model import Step
from actorhw.scenario.outcome import RunStep, plain
from actorhw.scenario.parallel import parse_parallel, run_parallel
from actorhw.scenario.reader import IDENT, VAR, StepSource

#: Faults a ``fault`` step may inject (Runtime.inject_fault).
FAULTS = ("unplug", "hang", "power_cycle", "memory_error")
STATES = tuple(s.name for s in DeviceState)
KINDS = tuple(k.value for k in ResourceKind)

#: Checks a step's own keys beyond the common ones; returns extra Step fields.
Parse = Callable[[StepSource, str], dict[str, Any]]


@attrs.frozen(kw_only=True)
class Action:
    """One kind of step."""

    keys: frozenset[str]
    """The keys its step may have besides the action's own and name/timeout/expect/save."""
    parse: Parse
    """Checks the step (its target is the second argument); returns extra Step fields."""
    run: RunStep
    """Runs the step to its result."""
    needs_on: bool = False
    """The step acts on a lease alias or device: ``on`` is required."""
    needs_board: bool = False
    """The step acts on a board instance: ``board`` is required."""
    has_target: bool = True
    """The action's key holds a non-empty string (all but ``expect`` and ``parallel``)."""
    local_only: bool = False
    """It needs a local Runtime (its resource monitor): refused in a cluster scenario."""


def _nothing(src: StepSource, target: str) -> dict[str, Any]:
    return {}


def _one_of(choices: tuple[str, ...], what: str) -> Parse:
    def parse(src: StepSource, target: str) -> dict[str, Any]:
        if target not in choices:  # run as written: no variables here
            raise src.reader.fail(
                src.key(src.action),
                f"unknown {what} {target!r}{did_you_mean(target, choices)}; "
                f"valid: {', '.join(choices)}",
            )
        return {}

    return parse


# --- parse ------------------------------------------------------------------------------


def _parse_acquire(src: StepSource, target: str) -> dict[str, Any]:
    if not VAR.search(target) and "." not in target:
        raise src.reader.fail(src.key("acquire"), "must name a device as 'board.DEVICE'")
    src.reader.check_device(src.key("acquire"), target)
    alias = src.table.get("as", "")
    if alias:
        src.aliases.add(src.reader.ident(alias, src.key("as"), "the lease"))
    return {"alias": alias}


def _parse_lease(src: StepSource, target: str) -> dict[str, Any]:
    if not VAR.search(target) and target not in src.aliases:
        raise src.reader.fail(
            src.key(src.action),
            f"no lease named {target!r}{did_you_mean(target, src.aliases)}; "
            f"acquired so far: {', '.join(sorted(src.aliases))}",
        )
    return {}


def _parse_task(src: StepSource, target: str) -> dict[str, Any]:
    if not IDENT.match(target):
        raise src.reader.fail(
            src.key("task"), "must be the name of the board-side function to call"
        )
    return {}


def _parse_allocate(src: StepSource, target: str) -> dict[str, Any]:
    _one_of(KINDS, "resource")(src, target)
    amount = src.table.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise src.reader.fail(src.key("amount"), f"must be an amount > 0, not {amount!r}")
    alias = src.reader.string(src.table, src.key("as"), required=False)
    if alias:
        src.aliases.add(src.reader.ident(alias, src.key("as"), "the allocation"))
    return {"alias": alias, "options": (("amount", amount),)}


def _parse_threshold(src: StepSource, target: str) -> dict[str, Any]:
    _one_of(METRICS, "metric")(src, target)
    limit = src.table.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        raise src.reader.fail(src.key("limit"), f"must be a number, not {limit!r}")
    return {"options": (("limit", float(limit)),)}


def _parse_wait(src: StepSource, target: str) -> dict[str, Any]:
    _one_of(STATES, "state")(src, target)
    if "restarts" not in src.table:
        return {}
    restarts = src.reader.integer(src.table, src.key("restarts"), 0, 0)
    if "board" not in src.table:
        raise src.reader.fail(src.key("restarts"), "restarts are a board's: set 'board'")
    return {"restarts": restarts}


# --- run --------------------------------------------------------------------------------


def _acquire(step: Step, ctx: StepContext) -> Any:
    device = ctx.device(ctx.sub(step.target), timeout=step.timeout)
    handle = ctx.rt.get(device, timeout=step.timeout)
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


def _open(step: Step, ctx: StepContext) -> None:
    ctx.alias(ctx.sub(step.target)).open()


def _close(step: Step, ctx: StepContext) -> None:
    ctx.alias(ctx.sub(step.target)).close()


def _release(step: Step, ctx: StepContext) -> int | None:
    alias = ctx.sub(step.target)
    if alias in ctx.allocations:
        ctx.session(step).release_allocation(ctx.allocations.pop(alias), timeout=step.timeout)
        return None
    remaining = ctx.alias(alias).release()
    del ctx.leases[alias]
    return remaining


def _exec_on_board(step: Step, ctx: StepContext, code: str) -> tuple[str, DeviceId]:
    with ctx.using(step.on, timeout=step.timeout) as handle:
        if not isinstance(handle, Board):
            raise WrongKindError(
                f"{handle.device.key} is a {handle.kind.value} device; "
                f"{step.action} needs a board device (BOARD)",
                device=handle.device.key,
                expected="board",
                actual=handle.kind.value,
            )
        return handle.exec(code, timeout=step.timeout), handle.device


def _exec(step: Step, ctx: StepContext) -> str:
    return _exec_on_board(step, ctx, ctx.sub(step.target))[0]


def _task(step: Step, ctx: StepContext) -> Any:
    args = ",".join(board_value(ctx.data(a), name=f"args[{i}]") for i, a in enumerate(step.args))
    code = f"{ctx.sub(step.define)}\nprint(repr({ctx.sub(step.target)}({args})))"
    output, device = _exec_on_board(step, ctx, code)
    lines = [line for line in output.splitlines() if line.strip()]
    return parse_result(lines[-1] if lines else "", task=step.target, device=device.key)


def _command(step: Step, ctx: StepContext) -> Any:
    with ctx.using(step.on, timeout=step.timeout) as handle:
        assert handle.lease is not None
        values = tuple(ctx.data(a) for a in step.args)
        return ctx.rt.use(handle.lease, ctx.sub(step.target), values, timeout=step.timeout)


def _fault(step: Step, ctx: StepContext) -> Any:
    board = ctx.sub(step.board)
    return ctx.rt.inject_fault(board, step.target, owner=ctx.scenario.owner, timeout=step.timeout)


def _wait(step: Step, ctx: StepContext) -> str:
    state = DeviceState[step.target]
    if step.board:
        ctx.rt.wait_for_board(
            ctx.sub(step.board), state, timeout=step.timeout, restarts=step.restarts
        )
        return state.name
    ctx.rt.wait_for_device(_board_device(step, ctx), state, timeout=step.timeout)
    return state.name


def _board_device(step: Step, ctx: StepContext) -> DeviceId:
    device = ctx.subject(step)
    assert isinstance(device, DeviceId)
    return device


def _allocate(step: Step, ctx: StepContext) -> int:
    """Reserve part of a board in the scenario's session; the value is the amount."""
    allocation = ctx.session(step).allocate(
        _board_device(step, ctx),
        ResourceKind(step.target),
        int(dict(step.options)["amount"]),
        timeout=step.timeout,
    )
    if step.alias:
        ctx.allocations[step.alias] = allocation
    return allocation.amount


def _measure(step: Step, ctx: StepContext) -> Any:
    """A metric's value now."""
    status = ctx.local(step).monitor.status(_board_device(step, ctx), timeout=step.timeout)
    return monitor_api.metric(status, step.target)


def _threshold(step: Step, ctx: StepContext) -> bool:
    """Set the threshold, sample, and answer whether the sample crossed it (the monitor
    publishes before it answers)."""
    device = _board_device(step, ctx)
    rt = ctx.local(step)
    monitor = rt.monitor
    monitor.set_threshold(device, step.target, dict(step.options)["limit"], timeout=step.timeout)
    with rt.subscribe(maxsize=1024) as events:
        monitor.status(device, timeout=step.timeout)
        return any(
            isinstance(e, ResourceThresholdExceeded)
            and e.device is device
            and e.metric == step.target
            for e in events.drain()
        )


def _expect(step: Step, ctx: StepContext) -> None:
    """Nothing to do: the step's checks do the work."""


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


#: Every step action. ``expect`` alone is a step that only checks.
ACTIONS: Mapping[str, Action] = {
    "acquire": Action(keys=_keys("as", "owner"), parse=_parse_acquire, run=plain(_acquire)),
    "open": Action(keys=_keys(), parse=_parse_lease, run=plain(_open)),
    "close": Action(keys=_keys(), parse=_parse_lease, run=plain(_close)),
    "release": Action(keys=_keys(), parse=_parse_lease, run=plain(_release)),
    "exec": Action(keys=_keys("on"), parse=_nothing, run=plain(_exec), needs_on=True),
    "task": Action(
        keys=_keys("on", "define", "args"), parse=_parse_task, run=plain(_task), needs_on=True
    ),
    "command": Action(keys=_keys("on", "args"), parse=_nothing, run=plain(_command), needs_on=True),
    "allocate": Action(
        keys=_keys("on", "amount", "as"),
        parse=_parse_allocate,
        run=plain(_allocate),
        needs_on=True,
        local_only=True,
    ),
    "measure": Action(
        keys=_keys("on"),
        parse=_one_of(METRICS, "metric"),
        run=plain(_measure),
        needs_on=True,
        local_only=True,
    ),
    "threshold": Action(
        keys=_keys("on", "limit"),
        parse=_parse_threshold,
        run=plain(_threshold),
        needs_on=True,
        local_only=True,
    ),
    "fault": Action(
        keys=_keys("board"), parse=_one_of(FAULTS, "fault"), run=plain(_fault), needs_board=True
    ),
    "wait": Action(keys=_keys("board", "on", "restarts"), parse=_parse_wait, run=plain(_wait)),
    "parallel": Action(
        keys=_keys("var", "limit", "steps"),
        parse=parse_parallel,
        run=run_parallel,
        has_target=False,
    ),
    "expect": Action(
        keys=_keys("on", "board"), parse=_nothing, run=plain(_expect), has_target=False
    ),
}


def action_of(step: Step) -> Action:
    """The table entry of ``step``'s action.

    Raises:
        InvalidArgumentError: the action is not in the table (a Step built by hand).
    """
    try:
        return ACTIONS[step.action]
    except KeyError:
        raise InvalidArgumentError(
            f"step '{step.name}' (line {step.line}): unknown action {step.action!r}"
            f"{did_you_mean(step.action, ACTIONS)}; valid: {', '.join(ACTIONS)}",
            argument="action",
        ) from None
