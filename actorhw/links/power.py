"""A board's power hook: a command the lab configures to cut and restore its power.

On a bench the power of a USB board is switched by ``uhubctl`` on a switchable hub, a
relay, or a PDU; labgrid calls these power drivers.  actorhw runs the command the
board's configuration names (``power_hook``), bounded by a deadline, with the action in
its environment; the supervisor uses it as the power-cycle step of its escalation.

The command is a list of arguments (no shell), or a string split like a shell would
(``shlex``).  It gets ``ACTORHW_BOARD``, ``ACTORHW_PORT`` and ``ACTORHW_POWER_ACTION``
(``cycle``, ``off`` or ``on``) in its environment; exit status 0 means done.

This module imports core only.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Final

from actorhw.core.errors import InvalidArgumentError, LinkError, TimedOutError

__all__ = ["ACTIONS", "PowerHook"]

ACTIONS: Final = ("cycle", "off", "on")
_OUTPUT_LIMIT: Final = 2000


class PowerHook:
    """Runs the configured power command for one board.

    Args:
        command: the command, as a list of arguments or a shell-like string.
        board: the board's name (``ACTORHW_BOARD``).
        port: the board's port value (``ACTORHW_PORT``).

    Raises:
        InvalidArgumentError: the command is empty or not a string / list of strings.
    """

    def __init__(self, command: str | Sequence[str], *, board: str, port: str = "") -> None:
        if isinstance(command, str):
            argv = shlex.split(command)
        elif isinstance(command, Sequence) and all(isinstance(a, str) for a in command):
            argv = list(command)
        else:
            raise InvalidArgumentError(
                f"power_hook must be a command string or a list of strings, not {command!r}",
                argument="power_hook",
            )
        if not argv:
            raise InvalidArgumentError("power_hook is empty", argument="power_hook")
        self.argv = argv
        self.board = board
        self.port = port
        self.runs = 0

    def __repr__(self) -> str:
        return f"<PowerHook {self.board}: {shlex.join(self.argv)}>"

    def run(self, action: str = "cycle", *, timeout: float) -> str:
        """Run the command for ``action`` and wait for it, at most ``timeout`` seconds.

        Returns:
            What the command printed (stdout and stderr, the last 2000 characters).

        Raises:
            TimedOutError: the command ran longer than ``timeout`` (it is killed).
            LinkError: it could not start, or exited with a non-zero status.
        """
        if action not in ACTIONS:
            raise InvalidArgumentError(
                f"power action {action!r}; valid: {', '.join(ACTIONS)}", argument="action"
            )
        env = dict(os.environ)
        env.update(ACTORHW_BOARD=self.board, ACTORHW_PORT=self.port, ACTORHW_POWER_ACTION=action)
        self.runs += 1
        # Output goes to a file, not a pipe: a process the hook leaves running in the
        # background (a relay daemon, a restarted emulator) must not hold us up.
        with tempfile.TemporaryFile() as out:
            try:
                done = subprocess.run(
                    self.argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=max(timeout, 0.001),
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise TimedOutError(
                    f"{self.board}: power hook {self.argv[0]} ({action}) ran over {timeout:g} s",
                    device=self.board,
                    timeout=timeout,
                    resynced=False,
                ) from exc
            except OSError as exc:
                raise LinkError(
                    f"{self.board}: power hook {self.argv[0]} could not start: {exc}",
                    device=self.board,
                ) from exc
            out.seek(0)
            output = out.read().decode("utf-8", "replace")[-_OUTPUT_LIMIT:]
        if done.returncode != 0:
            raise LinkError(
                f"{self.board}: power hook {self.argv[0]} ({action}) exited with "
                f"{done.returncode}: {output.strip()[-300:]}",
                device=self.board,
                returncode=done.returncode,
            )
        return output
