"""Programming: Belay-style device classes (@setup, @task, @background, @teardown) that
run MicroPython code on a board.

Modules: ``source`` (the board code of a method), ``wire`` (arguments, results and
records across the wire), ``decorators`` (the decorators and their descriptors),
``batch`` (batches and outcomes), ``cache`` (the result cache), ``loops`` (background
threads), ``device`` ([`MicroPythonDevice`][actorhw.programming.device.MicroPythonDevice]).

May import: api and below.
"""

from actorhw.programming.batch import Batch, Outcome
from actorhw.programming.decorators import (
    Background,
    BoundTask,
    Setup,
    Task,
    Teardown,
    background,
    setup,
    task,
    teardown,
)
from actorhw.programming.device import BoardLike, MicroPythonDevice
from actorhw.programming.loops import BackgroundStatus
from actorhw.programming.source import body_source, function_source
from actorhw.programming.wire import board_value, literal, parse_result, render_args

__all__ = [
    "Background",
    "BackgroundStatus",
    "Batch",
    "BoardLike",
    "BoundTask",
    "MicroPythonDevice",
    "Outcome",
    "Setup",
    "Task",
    "Teardown",
    "background",
    "board_value",
    "body_source",
    "function_source",
    "literal",
    "parse_result",
    "render_args",
    "setup",
    "task",
    "teardown",
]
