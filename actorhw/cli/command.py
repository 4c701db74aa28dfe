"""A subcommand of ``actorhw``, as data: its name, help, arguments and what it runs.

Each subcommand lives in its own module of actorhw.cli and defines ``COMMAND``; the
table in `actorhw.cli.main` lists them. A new subcommand is a new module and one
line in that table. Every subcommand also takes the common options (``--json``,
``--boards-dir``, ``--drivers-dir``, ``--debug``, ``-v``), before or after its name.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs
from rich.console import Console

#: Runs a subcommand: the parsed arguments, the console for its output; the exit code.
Handler = Callable[[argparse.Namespace, Console], int]


@attrs.frozen(kw_only=True)
class Command:
    """One subcommand."""

    name: str
    """What the user types: ``actorhw NAME``."""
    help: str
    """One line in the top-level listing."""
    description: str
    """What it does, at the top of its --help."""
    examples: str
    """Example command lines (and notes), at the end of its --help."""
    arguments: Callable[[argparse.ArgumentParser], None]
    """Adds its own arguments to its parser."""
    run: Handler
    """Runs it."""


def add_common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every subcommand takes. On a subcommand they default to nothing
    given, so the same option given before the subcommand's name still holds."""
    flag: dict[str, Any] = {"action": "store_true"}
    folders: dict[str, Any] = {"action": "append", "metavar": "DIR"}
    if top:
        folders["default"] = []
    else:
        flag["default"] = folders["default"] = argparse.SUPPRESS
    options: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
        (("--json",), "JSON output, errors too", flag),
        (("--boards-dir",), "a folder of board files (repeatable)", folders),
        (("--drivers-dir",), "a folder of drv_*.py driver plugins (repeatable)", folders),
        (("--debug",), "show tracebacks of errors", flag),
        (("-v", "--verbose"), "log lifecycle events", flag),
    ]
    for names, text, how in options:
        if names[-1] not in parser._option_string_actions:  # a subcommand's own stays
            parser.add_argument(*names, help=text, **how)
