"""The device manager's operations on a board actor: lifecycle steps, commands, streams.

:class:`BoardControl` is a part of :class:`~actorhw.board.BoardActor` (a mixin), kept
apart because it serves :mod:`actorhw.manager` rather than supervision.  Each operation
is one message to the board's actor, so the mailbox serializes it with every other
operation on the board: no lock.  The lifecycle table refuses an operation in the wrong
state before anything changes; a failed command moves the board to ERROR.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from actorhw.core.errors import (
    REFUSALS,
    ActorHwError,
    DeviceUnavailableError,
    DriverError,
    InvalidArgumentError,
    InvalidTransitionError,
    UnsupportedOperationError,
)
from actorhw.core.lifecycle import DeviceState, check_transition
from actorhw.core.log import logger
from actorhw.core.messages import (
    AcquisitionEnded,
    BoardCommand,
    BoardStatus,
    BoardStep,
    GetInfo,
    Transition,
)
from actorhw.drivers.streams import STOP_TIMEOUT, StreamControl, StreamHub

if TYPE_CHECKING:
    import pykka

    from actorhw.core.events import EventBus
    from actorhw.core.ids import DeviceId
    from actorhw.core.messages.request import Request
    from actorhw.drivers.board_driver import BoardDriver

R = TypeVar("R")
S = DeviceState
#: Deadline of one control ask from the board to one of its devices.
DEVICE_TIMEOUT = 5.0
#: The operations of :class:`~actorhw.messages.BoardStep`.
STEPS = ("scan", "initialize", "connect", "reset", "close")
#: Faults of an acquisition loop that supervision recovers (the link went or hung).
_LINK_FAULTS = ("link_lost", "timed_out", "protocol_error", "could_not_enter_raw_repl")


class BoardControl:
    """The manager's side of a board actor (mixed into BoardActor)."""

    _streams: StreamControl | None = None

    if TYPE_CHECKING:
        _name: str
        _driver: BoardDriver | None
        _state: DeviceState
        _reason: str
        _events: EventBus
        _devices: dict[DeviceId, pykka.ActorRef[Any]]
        _connected_at: float
        actor_ref: pykka.ActorRef[Any]

        def _move_all(self, to: DeviceState, reason: str, attempt: int = 0) -> None: ...
        def _fault(self, reason: str, *, hung: bool) -> None: ...
        def _status(self) -> BoardStatus: ...
        def _run_connect_scripts(self) -> None: ...
        def _serving(self) -> list[pykka.ActorRef[Any]]: ...
        def _to_device(self, ref: pykka.ActorRef[Any], message: Request[R]) -> R | None: ...

    def _control_handlers(self) -> dict[type, Callable[[Any], Any]]:
        """The messages this part handles."""
        return {
            BoardStep: self._step,
            BoardCommand: self._command,
            AcquisitionEnded: self._acquisition_ended,
        }

    # --- lifecycle steps -------------------------------------------------------------

    def _step(self, message: BoardStep) -> BoardStatus:
        """One of scan, initialize, connect, reset, close (see actorhw.manager)."""
        driver = self._drv()
        op, timeout = message.operation, message.timeout
        if op == "scan":
            check_transition(self._name, self._state, S.DISCOVERED)
            if not driver.scan(timeout=timeout):
                raise DeviceUnavailableError(
                    f"board {self._name} not found by scan",
                    device=self._name,
                    state=self._state.name,
                    reason="scan found nothing",
                    since=time.time(),
                )
            self._move_all(S.DISCOVERED, "found by scan")
        elif op == "initialize":
            check_transition(self._name, self._state, S.INITIALIZED)
            driver.initialize(timeout=timeout)
            self._move_all(S.INITIALIZED, "initialized")
        elif op == "connect":
            check_transition(self._name, self._state, S.CONNECTED)
            try:
                driver.connect(timeout=timeout)
                self._run_connect_scripts()
            except Exception as e:
                self._down(f"connect failed: {e}")
                raise
            self._move_all(S.CONNECTED, "connected")
            self._connected_at = time.monotonic()
        elif op == "reset":
            self._reset(timeout)
        elif op == "close":
            self._stop_stream()
            self._leave_active("closing")
            check_transition(self._name, self._state, S.DISCONNECTED)
            self._down("closed")
        else:
            raise InvalidArgumentError(
                f"unknown board operation {op!r}; valid: {', '.join(STEPS)}", argument="operation"
            )
        return self._status()

    def _reset(self, timeout: float) -> None:
        """ERROR -> DISCONNECTED (initialize next), or a soft reset of a connected board."""
        driver = self._drv()
        if self._state is S.ERROR:
            check_transition(self._name, self._state, S.DISCONNECTED)
            self._down("reset after an error")
            return
        if self._state not in (S.CONNECTED, S.ACTIVE):
            raise InvalidTransitionError(
                f"{self._name}: cannot reset a board that is {self._state.name}; reset "
                "takes CONNECTED or ACTIVE (soft reset) or ERROR (to DISCONNECTED)",
                device=self._name,
                from_state=self._state.name,
                to_state="CONNECTED",
            )
        self._stop_stream()
        self._leave_active("reset")
        try:
            driver.reset(timeout=timeout)
        except Exception as e:
            self._fail(f"reset failed: {e}")
            raise

    # --- commands and streams --------------------------------------------------------

    def _command(self, message: BoardCommand) -> Any:
        """Run a driver command with the board ACTIVE; a failure moves it to ERROR."""
        driver = self._drv()
        commands = type(driver).commands()
        if message.command not in commands:
            raise UnsupportedOperationError(
                f"{self._name}: driver {driver.name!r} has no command {message.command!r}; "
                "supported: " + ", ".join(f"{c} ({d})" for c, d in sorted(commands.items())),
                driver=driver.name,
                command=message.command,
                supported=sorted(commands),
            )
        if self._state is not S.ACTIVE:
            check_transition(self._name, self._state, S.ACTIVE)
            self._state, self._reason = S.ACTIVE, f"running {message.command}"
        streams = self._stream_control()
        try:
            if streams.handles(message.command):
                result = streams.run(message.command, message.args, timeout=message.timeout)
            else:
                result = driver.command(message.command, message.args, timeout=message.timeout)
        except REFUSALS:
            self._leave_active("command refused")
            raise
        except ActorHwError as e:
            self._fail(f"command {message.command!r} failed: {e}")
            raise
        except Exception as e:  # a plugin bug is a failure of the board's driver
            error = DriverError(
                f"{self._name}: command {message.command!r} failed: {e!r}",
                file=type(driver).__module__,
                problem=repr(e),
            )
            self._fail(str(error))
            raise error from e
        self._leave_active(f"{message.command} done")
        return result

    def _acquisition_ended(self, message: AcquisitionEnded) -> None:
        """The loop returned or failed by itself: clean up; a failure is a fault."""
        self._stop_stream()
        if message.code is None:
            self._leave_active("stream ended")
        elif message.code in _LINK_FAULTS:
            self._fault(f"stream failed: {message.message}", hung=message.code == "timed_out")
        elif self._state is S.ACTIVE:
            self._fail(f"stream failed: {message.message}")

    def _stream_control(self) -> StreamControl:
        if self._streams is None:
            me = self.actor_ref

            def on_end(error: ActorHwError | None) -> None:
                if me.is_alive():
                    me.tell(
                        AcquisitionEnded(
                            code=None if error is None else error.code,
                            message="returned" if error is None else str(error),
                        )
                    )

            self._streams = StreamControl(
                board=self._name,
                driver=self._drv(),
                bus=StreamHub.of(self._events).bus(self._name),
                on_end=on_end,
            )
        return self._streams

    def _stop_stream(self) -> None:
        """Stop the board's stream if one runs (also when the board actor stops)."""
        if self._streams is not None and self._streams.running:
            try:
                self._streams.stop(timeout=STOP_TIMEOUT)
            except ActorHwError as e:  # a loop that ignores stop: log it, go on stopping
                logger.bind(device=self._name).error("stopping the stream failed: {}", e)

    # --- helpers ---------------------------------------------------------------------

    def _leave_active(self, reason: str) -> None:
        if self._state is S.ACTIVE and not (self._streams and self._streams.running):
            self._state, self._reason = S.CONNECTED, reason

    def _fail(self, reason: str) -> None:
        """ACTIVE -> ERROR: the stream stops, devices leave service, the link drops."""
        if self._streams is not None and self._streams.running:
            try:
                self._streams.stop(timeout=STOP_TIMEOUT)
            except ActorHwError as e:
                reason = f"{reason}; stopping the stream: {e}"
        if self._state is S.CONNECTED:
            self._state = S.ACTIVE  # the failure happened while the board was in use
        check_transition(self._name, self._state, S.ERROR)
        self._devices_down(reason, to_error=True)
        self._state, self._reason = S.ERROR, reason
        self._drv().disconnect()

    def _down(self, reason: str) -> None:
        """The board and its devices to DISCONNECTED; the link drops."""
        self._devices_down(reason)
        self._state, self._reason = S.DISCONNECTED, reason
        self._drv().disconnect()

    def _devices_down(self, reason: str, *, to_error: bool = False) -> None:
        """Devices out of service by legal edges: ACTIVE -> ERROR (-> DISCONNECTED
        unless ``to_error``), ERROR, CONNECTED, INITIALIZED -> DISCONNECTED."""
        for ref in self._serving():
            info = self._to_device(ref, GetInfo())
            if info is None:  # crashed meanwhile: its successor starts in the board's state
                continue
            state = info.state
            path: list[DeviceState] = []
            if state is S.ACTIVE:
                path = [S.ERROR] if to_error else [S.ERROR, S.DISCONNECTED]
            elif (state is S.ERROR and not to_error) or state in (S.CONNECTED, S.INITIALIZED):
                path = [S.DISCONNECTED]
            for to in path:
                self._to_device(ref, Transition(to=to, reason=reason))

    def _drv(self) -> BoardDriver:
        assert self._driver is not None
        return self._driver
