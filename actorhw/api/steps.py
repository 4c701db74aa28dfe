"""Steps: a device's work in a job as data, handle calls in order.

    toggle_20 = Steps.repeat("toggle", times=20)
    run_job(rt, ids, toggle_20, owner="ci")             # each device: handle.toggle() x 20
    cluster.run_job(ids, toggle_20)                     # the same, one request per host

Called with a handle, Steps performs its calls through the handle's public methods and
returns their results in a list, exactly as a function of the handle would.  Being
data, it also crosses the wire: a cluster sends each host one request with the steps
and the leased devices it holds there, and the host runs them next to its boards (its
devices at once), so a job over many hosts costs a round trip per host, not per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actorhw.api.handles import Handle
from actorhw.core.errors import InvalidArgumentError
from actorhw.core.messages import Step

#: Handle methods that are not device work: a job's runner does these itself.
NOT_STEPS = frozenset({"acquire", "open", "close", "release", "info"})


class Steps:
    """Handle calls in order, as data (see the module's doc)."""

    __slots__ = ("steps",)

    def __init__(self, *calls: Step | tuple[Any, ...] | str) -> None:
        """Each call is a Step, a method name, or ``(name, arg, ...)``."""
        self.steps: tuple[Step, ...] = tuple(_step(c) for c in calls)

    @classmethod
    def repeat(cls, name: str, *args: Any, times: int) -> Steps:
        """``handle.name(*args)``, ``times`` times."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise InvalidArgumentError(
                f"times must be an int >= 0, not {times!r}", argument="times"
            )
        return cls(*[Step(name=name, args=tuple(args))] * times)

    @classmethod
    def of(cls, steps: Iterable[Step]) -> Steps:
        """Steps from Step messages (as a host receives them)."""
        return cls(*steps)

    def __call__(self, handle: Handle) -> list[Any]:
        """Perform every step on ``handle``; their results."""
        return [perform(handle, step) for step in self.steps]

    def __repr__(self) -> str:
        return f"Steps({', '.join(s.name for s in self.steps[:4])}{', ...' * (len(self) > 4)})"

    def __len__(self) -> int:
        return len(self.steps)


def _step(call: Step | tuple[Any, ...] | str) -> Step:
    if isinstance(call, Step):
        step = call
    elif isinstance(call, str):
        step = Step(name=call)
    elif isinstance(call, tuple) and call and isinstance(call[0], str):
        step = Step(name=call[0], args=tuple(call[1:]))
    else:
        raise InvalidArgumentError(
            f"a step is a method name, (name, arg, ...) or a Step, not {call!r}", argument="steps"
        )
    if step.name.startswith("_") or step.name in NOT_STEPS:
        raise InvalidArgumentError(
            f"{step.name!r} is not a device operation a step may call", argument="steps"
        )
    return step


def perform(handle: Handle, step: Step) -> Any:
    """``handle.<step.name>(*step.args)``, if that is a public device method of the
    handle's kind (InvalidArgumentError names the kind's methods if not)."""
    method = None
    if not step.name.startswith("_") and step.name not in NOT_STEPS:
        method = getattr(type(handle), step.name, None)
    if not callable(method) or isinstance(method, property):
        valid = sorted(
            n
            for n, v in vars(type(handle)).items()
            if callable(v) and not n.startswith("_") and n not in NOT_STEPS
        )
        raise InvalidArgumentError(
            f"{handle.device.key}: a {type(handle).__name__} has no step {step.name!r} "
            f"(its steps: {', '.join(valid) or 'none'})",
            argument="steps",
        )
    return method(handle, *step.args)
