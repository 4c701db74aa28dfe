"""DispatchActor: the one type -> handler table every actor of the tree answers through."""

from __future__ import annotations

from typing import Any

import pytest

from actorhw.errors import UnsupportedOperationError
from actorhw.tree.asks import ask
from actorhw.tree.board import BoardActor
from actorhw.tree.device import DeviceActor
from actorhw.tree.dispatch import DispatchActor
from actorhw.tree.limiter import OperationLimiterActor
from actorhw.tree.monitor import ResourceMonitorActor
from actorhw.tree.registry import RegistryActor
from actorhw.tree.supervision import SupervisedActor
from actorhw.tree.supervisor import SupervisorActor

T = 5.0


class _Echo(DispatchActor):
    label = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.handle({str: lambda m: f"str {m}", int: lambda m: m + 1})
        self.handle({int: lambda m: m * 10})  # a later entry replaces the earlier


def test_messages_go_to_the_handler_for_their_type() -> None:
    ref = _Echo.start()
    try:
        assert ask(ref, "hi", timeout=T) == "str hi"
        assert ask(ref, 4, timeout=T) == 40
    finally:
        ref.stop()


def test_an_unknown_type_is_a_typed_error_naming_the_actor() -> None:
    ref = _Echo.start()
    try:
        with pytest.raises(UnsupportedOperationError, match=r"echo: unexpected message float"):
            ask(ref, 1.5, timeout=T)
        assert ask(ref, 1, timeout=T) == 10  # the actor keeps serving
    finally:
        ref.stop()


@pytest.mark.parametrize(
    "actor",
    [
        SupervisedActor,
        RegistryActor,
        DeviceActor,
        BoardActor,
        SupervisorActor,
        OperationLimiterActor,
        ResourceMonitorActor,
    ],
)
def test_every_actor_of_the_tree_dispatches_through_the_base(actor: type[Any]) -> None:
    assert issubclass(actor, DispatchActor)
    assert actor.on_receive is DispatchActor.on_receive
