"""What the steps of one run share: variables, leases, allocations, and progress.

A `StepContext` is one run of some steps (the scenario, or one target of a
parallel group), used from one thread. `Progress` is how a step reports and how
a group runs its children (the runner's step function, passed in, so the actions need
not import the runner).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from actorhw.api.handles import Handle
from actorhw.api.lab import Lab
from actorhw.api.runtime import Runtime
from actorhw.api.sessions import Session
from actorhw.core.errors import (
    ActorHwError,
    InvalidArgumentError,
    NoSuchDeviceError,
    UnsupportedOperationError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.log import logger
from actorhw.core.messages import Allocation
from actorhw.scenario.model import BytesData, Scenario, Step
from actorhw.scenario.reader import VAR
from actorhw.scenario.report import StepEvent, StepResult


def substitute(text: str, variables: dict[str, Any]) -> str:
    """``text`` with every ``${name}`` replaced by its variable's value."""

    def one(found: Any) -> str:
        name = found.group(1)
        if name not in variables:
            raise InvalidArgumentError(f"unknown variable ${{{name}}}", argument=name)
        return str(variables[name])

    return VAR.sub(one, text)


class StepContext:
    """Variables and leases of one run of some steps (the scenario, or one target of a
    parallel group). Used from one thread."""

    def __init__(self, rt: Lab, scenario: Scenario, variables: dict[str, Any]) -> None:
        self.rt = rt
        self.scenario = scenario
        self.vars = variables
        self.leases: dict[str, Handle] = {}
        self.anonymous: list[Handle] = []
        self.allocations: dict[str, Allocation] = {}
        self._session: Session | None = None

    def local(self, step: Step) -> Runtime:
        """The local Runtime, for a step that needs one (its resource monitor).

        Raises:
            UnsupportedOperationError: the scenario runs on a cluster.
        """
        if not isinstance(self.rt, Runtime):
            raise UnsupportedOperationError(
                f"step '{step.name}' (line {step.line}): {step.action} runs on a local "
                "runtime only, not on a cluster"
            )
        return self.rt

    def session(self, step: Step) -> Session:
        """The session that holds this context's allocations, opened on first use."""
        if self._session is None:
            self._session = self.local(step).session(self.scenario.owner, watch_thread=False)
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


@attrs.frozen(kw_only=True)
class Progress:
    """Where a step stands in its scenario, and how to report and run steps."""

    emit: Callable[[StepEvent], None]
    """Called with a StepEvent as each step starts and ends."""
    stop: threading.Event
    """Set to stop between steps."""
    index: int
    """0-based index of the top-level step."""
    total: int
    """How many top-level steps the scenario has."""
    run_step: Callable[[Step, StepContext, Progress], StepResult]
    """Runs one step in a context (a group's children go through it)."""
    prefix: str = ""
    """Put before step names (``[target] `` inside a parallel group)."""
