"""Any MicroPython board on a serial port: by path, URL or USB identity.

The board's ``port`` option (``BoardSpec(..., port=...)``, ``port =`` in a scenario's
board entry, ``--port`` on the command line) says where it is: a device path, a pyserial
URL (``socket://``, ``rfc2217://``), ``serial:NUMBER``, ``VID:PID``, ``location:LOC`` or
``auto`` (see :mod:`actorhw.links.ports`).  A port given by USB identity is looked up
again each time the board is (re)attached, so a board that is unplugged and comes back
on another path is found by the supervisor's recovery.

Options (board file ``[board.options]`` or the instance's options):

- ``port``: where the board is (required).
- ``baudrate``: line speed (default 115200; ptys and USB CDC ignore it).
- ``dtr``, ``rts``: levels to set on open; left alone when not given (ESP32 boards reset
  on DTR/RTS: their definition sets both false).
- ``reset``: how the escalation's reset step resets the board: ``soft`` (Ctrl-D, the
  default), ``machine`` (``machine.reset()`` and reconnect), ``dtr_rts`` (the ESP32
  auto-reset circuit), ``power`` (the power hook).
- ``power_hook``: a command that power-cycles the board (uhubctl, a relay, a PDU); see
  :class:`actorhw.links.power.PowerHook`.  Without one, a board that Ctrl-C cannot reach
  needs a hand, and the supervisor quarantines it saying so.
- ``verify_over``: send code longer than this verified (boards that drop input bytes);
  set automatically to 60 on a micro:bit without raw-paste.
- ``boot_timeout``: how long the firmware may take to answer after power-on (10 s).
- ``resync_timeout``: how long the raw prompt may take to come back after the Ctrl-C
  that ends a timed-out call (0.15 s); a board silent that long is hung, and its
  recovery goes straight to the power hook.
- ``exclusive``: lock the port against other programs (default true).
- ``api``: ``machine`` (default) or ``microbit``: which peripherals the devices are.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from actorhw.core.errors import (
    ActorHwError,
    DeviceUnavailableError,
    InvalidArgumentError,
    LinkLostError,
    UnsupportedOperationError,
)
from actorhw.drivers.mpy_board import OP_TIMEOUT, MicroPythonBoard
from actorhw.links.ports import PortSpec, parse_port, resolve_port
from actorhw.links.power import PowerHook
from actorhw.links.qemu import MICROBIT_VERIFY_OVER
from actorhw.links.raw_repl import RawReplLink
from actorhw.links.serial_port import dtr_rts_reset
from actorhw.links.terminal import passthrough

#: Deadline for the firmware to answer after power-on or a reset.
BOOT_TIMEOUT = 10.0
#: How long the link tries to get the raw prompt back after a timed-out call: a board
#: that answers Ctrl-C does so in milliseconds (over USB too), and a hung board's
#: recovery waits for it, so this is part of every hang's recovery time.
RESYNC_TIMEOUT = 0.15
#: How often a port that is expected back (after a power cycle or reset) is looked for.
PORT_POLL_S = 0.05
RESETS = ("soft", "machine", "dtr_rts", "power")
_DEVICE_KINDS = ("path", "serial", "vidpid", "location", "auto")
"""Port forms that resolve to a device path (the rest are URLs)."""


class MicroPythonSerialBoard(MicroPythonBoard):
    """A MicroPython board on a serial port, attached by the generic driver."""

    name = "micropython"

    supported_commands: ClassVar[Mapping[str, str]] = {
        "link_info": "the port, the firmware's platform and how code is sent (raw-paste)",
        "repl": "pass the friendly REPL through to {stdin_fd, stdout_fd} until Ctrl-]",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.device = ""
        """The path or URL the port resolved to last."""
        self.platform = ""
        """``sys.platform`` of the firmware, read at each connect."""
        self._spec: PortSpec | None = None
        self._hook: PowerHook | None = None

    # --- options ------------------------------------------------------------------------

    def _port(self) -> PortSpec:
        if self._spec is None:
            port = self.options.get("port")
            if port is None:
                raise InvalidArgumentError(
                    f"board {self.board} (driver micropython) needs a port: "
                    "BoardSpec(..., port=...), port = in the scenario, or --port",
                    argument="port",
                    board=self.board,
                )
            self._spec = parse_port(port)
            reset = self.options.get("reset", "soft")
            if reset not in RESETS:
                raise InvalidArgumentError(
                    f"board {self.board}: reset {reset!r}; valid: {', '.join(RESETS)}",
                    argument="reset",
                )
            hook = self.options.get("power_hook")
            if hook is not None:
                self._hook = PowerHook(hook, board=self.board, port=self._spec.text)
        return self._spec

    @property
    def power_hook(self) -> PowerHook | None:
        """The board's power hook, if its options name one."""
        self._port()
        return self._hook

    # --- commands ----------------------------------------------------------------------

    def command(self, command: str, args: Mapping[str, Any], *, timeout: float) -> Any:
        if command == "link_info":
            return self.submit(self._link_info, what="link_info").wait(timeout=timeout)
        if command == "repl":
            stdin_fd, stdout_fd = args.get("stdin_fd"), args.get("stdout_fd")
            if not (
                isinstance(stdin_fd, int)
                and isinstance(stdout_fd, int)
                and not isinstance(stdin_fd, bool)
                and not isinstance(stdout_fd, bool)
            ):
                raise InvalidArgumentError("stdin_fd and stdout_fd must be ints", argument="args")
            return self.submit(
                lambda link: passthrough(_raw(link), stdin_fd, stdout_fd, timeout=timeout),
                what="repl",
            ).wait(timeout=timeout + 6)
        return super().command(command, args, timeout=timeout)

    def _link_info(self, any_link: Any) -> dict[str, Any]:
        link = _raw(any_link)
        return {
            "port": self._port().text,
            "device": self.device,
            "platform": self.platform,
            "raw_paste": bool(link.raw_paste),
            "raw_paste_window": link.raw_paste_window,
            "raw_paste_sends": link.raw_paste_sends,
            "verify_over": link.verify_over,
            "power_hook": self._hook is not None,
        }

    # --- lifecycle hooks -------------------------------------------------------------

    def scan(self, *, timeout: float) -> bool:
        """Is the port there? A USB identity is looked up; a path must exist."""
        self.device = self._find()
        return True

    def initialize(self, *, timeout: float) -> None:
        """Find the port again (after an unplug it may be on another path)."""
        self.device = self._find()

    def _find(self) -> str:
        spec = self._port()
        device = resolve_port(spec, board=self.board)
        if spec.kind in _DEVICE_KINDS and not os.path.exists(device):
            raise DeviceUnavailableError(
                f"board {self.board}: port {device} does not exist (unplugged?)",
                device=self.board,
                state="UNKNOWN",
                reason=f"{device} missing",
                port=spec.text,
            )
        return device

    # --- the board's watch -------------------------------------------------------------

    def check(self) -> str | None:
        """Without I/O: the port hung up or failed (an unplugged USB board, the process
        behind a pty ended), was closed, or its device path vanished."""
        link = self.link
        if link is None:
            return None
        reason = _raw(link).gone()  # its name is the board's
        if reason is None and self._is_device() and not os.path.exists(self.device):
            reason = f"{self.board}: {self.device} no longer exists (unplugged?)"
        return reason

    def _is_device(self) -> bool:
        """The port is a device path (not a URL): it can vanish from /dev."""
        spec = self._spec
        return bool(self.device) and spec is not None and spec.kind in _DEVICE_KINDS

    def open_link(self, *, timeout: float) -> RawReplLink:
        if not self.device:
            self.device = self._find()
        verify = self.options.get("verify_over")
        link = RawReplLink.open(
            self.device,
            timeout=min(timeout, float(self.options.get("boot_timeout", BOOT_TIMEOUT))),
            resync_timeout=float(self.options.get("resync_timeout", RESYNC_TIMEOUT)),
            baudrate=int(self.options.get("baudrate", 115200)),
            dtr=self.options.get("dtr"),
            rts=self.options.get("rts"),
            verify_over=None if verify is None else int(verify),
            exclusive=bool(self.options.get("exclusive", True)),
            name=self.board,
        )
        try:
            self.platform = link.exec_checked(
                "import sys\nprint(sys.platform)", timeout=OP_TIMEOUT
            ).strip()
        except BaseException:
            link.close()
            raise
        if verify is None and not link.raw_paste and self.platform == "microbit":
            link.verify_over = MICROBIT_VERIFY_OVER  # its 64-byte ring drops bytes
        return link

    def reset(self, *, timeout: float) -> None:
        """Reset as the ``reset`` option says, and leave the board connected."""
        deadline = time.monotonic() + timeout
        kind = self.options.get("reset", "soft")
        if self.link is None or kind == "power":
            if kind == "power":
                self.power_cycle(timeout=timeout)
            self.connect(timeout=_left(deadline))
            return
        if kind == "soft":
            try:
                self.submit(lambda link: link.soft_reset(timeout=_left(deadline))).wait(
                    timeout=_left(deadline) + 1
                )
            except LinkLostError:
                # The firmware's soft reset ended the board (the unix port exits): for
                # this board a soft reset is a power-off, so power it on again.
                if self.power_hook is None:
                    raise
                self.power_cycle(timeout=_left(deadline))
                self.connect(timeout=_left(deadline))
                return
            self.submit(
                lambda link: link.exec_checked(
                    "import machine" if self.api == "machine" else "import microbit",
                    timeout=OP_TIMEOUT,
                ),
                what="setup",
            ).wait(timeout=OP_TIMEOUT + 1)
            return
        if kind == "machine":
            self.submit(
                lambda link: _raw(link).send_reset(
                    "import machine\nmachine.reset()", timeout=_left(deadline)
                ),
                what="machine.reset",
            ).wait(timeout=_left(deadline) + 1)
        else:
            link = self.link
            assert isinstance(link, RawReplLink)
            dtr_rts_reset(link.port, name=self.board)
        self.disconnect()
        self._wait_for_port(deadline)
        self.connect(timeout=_left(deadline))

    def power_cycle(self, *, timeout: float) -> None:
        """Run the power hook, then wait for the port to be back (connect follows).

        Raises:
            UnsupportedOperationError: no power hook (``needs_hand``: a person must
                power-cycle the board).
        """
        deadline = time.monotonic() + timeout
        hook = self.power_hook
        if hook is None:
            raise UnsupportedOperationError(
                f"board {self.board} has no power hook: if it hangs, it needs a hand "
                "(set power_hook in its options to a command that power-cycles it)",
                driver=self.name,
                board=self.board,
                needs_hand=True,
            )
        self.disconnect()
        hook.run("cycle", timeout=_left(deadline))
        self._wait_for_port(deadline)

    def unplug(self) -> None:
        """Cut the board's power through its hook (fault injection)."""
        hook = self.power_hook
        if hook is None:
            raise UnsupportedOperationError(
                f"board {self.board} has no power hook to unplug it with", driver=self.name
            )
        hook.run("off", timeout=BOOT_TIMEOUT)

    def _wait_for_port(self, deadline: float) -> None:
        """Until the port is listed and exists again (a rebooting USB board re-enumerates)."""
        while True:
            try:
                self.device = self._find()
                return
            except ActorHwError:
                if time.monotonic() + PORT_POLL_S >= deadline:
                    raise
            time.sleep(PORT_POLL_S)


def _raw(link: Any) -> RawReplLink:
    assert isinstance(link, RawReplLink)
    return link


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
