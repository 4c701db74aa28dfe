"""Requests name their answer's type: ``ask(ref, GetInfo())`` is a DeviceInfo to mypy."""

from __future__ import annotations

import typing
from pathlib import Path

import attrs
import pytest

from actorhw.core import messages
from actorhw.core.messages import Request
from tests.mypy_snippet import mypy_snippet

SNIPPET = """
from typing import Any
from actorhw.core.messages import Crash, GetInfo, ListDevices, Lookup, Acquire
from actorhw.tree.asks import ActorRef, ask, ask_later

def use(ref: ActorRef[Any], device: Any) -> None:
    reveal_type(ask(ref, GetInfo(), timeout=1.0))
    reveal_type(ask(ref, ListDevices(), timeout=1.0))
    reveal_type(ask_later(ref, Lookup(device=device)).wait(timeout=1.0))
    reveal_type(ask(ref, Acquire(owner="a"), timeout=1.0).token)
    ask(ref, Crash(reason="told, never asked"), timeout=1.0)
"""


@pytest.mark.timeout(120)
def test_mypy_sees_the_answer_type_of_each_request(tmp_path: Path) -> None:
    result = mypy_snippet(tmp_path, SNIPPET)
    out = result.stdout
    revealed = {
        line.split(":")[1]: line.split('Revealed type is "')[1].rstrip('"')
        for line in out.splitlines()
        if "Revealed type is" in line
    }
    assert revealed == {
        "7": "actorhw.core.messages.devices.DeviceInfo",
        "8": "tuple[actorhw.core.messages.registry.RegistryEntry, ...]",
        "9": "actorhw.core.messages.registry.RegistryEntry",
        "10": "int",
    }, out
    # a message that is only told is refused by ask
    assert 'snippet.py:11: error: Argument 2 to "ask" has incompatible type "Crash"' in out, out
    assert result.returncode == 1


def test_every_answered_message_is_a_request_naming_its_answer() -> None:
    classes = [o for o in vars(messages).values() if isinstance(o, type) and attrs.has(o)]
    answered = [c for c in classes if "Answered with" in (c.__doc__ or "")]
    requests = [c for c in classes if issubclass(c, Request)]
    assert len(answered) >= 25
    assert set(answered) <= set(requests), set(answered) - set(requests)
    for request in requests:
        (base,) = [b for b in request.__orig_bases__ if typing.get_origin(b) is Request]
        (answer,) = typing.get_args(base)
        assert not isinstance(answer, typing.TypeVar), request
