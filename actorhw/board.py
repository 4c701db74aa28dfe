"""BoardActor: one board instance, its driver and its device actors.

The board actor owns the driver (and through it the link), starts one DeviceActor per
device of the board, registers them, and drives every device along the lifecycle table
as the board comes up, faults and goes down.  Blocking driver hooks (booting, opening a
port) run here, never in a device's mailbox.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from actorhw.asks import ask, stop_all
from actorhw.boards import BoardDefinition
from actorhw.device import DeviceActor
from actorhw.driver import BoardDriver
from actorhw.errors import ActorHwError, DeviceUnavailableError, UnsupportedOperationError
from actorhw.events import EventBus
from actorhw.ids import DeviceId
from actorhw.lifecycle import DeviceState, check_transition
from actorhw.log import logger
from actorhw.messages import (
    BoardEvent,
    BoardStatus,
    BringUp,
    DeviceFault,
    GetBoardStatus,
    GetInfo,
    InjectFault,
    Recover,
    Register,
    RegistryEntry,
    ResetBoard,
    Transition,
    Unregister,
)
from actorhw.recovery import RecoveryPolicy, RestartTracker

S = DeviceState
#: Deadline of one control ask from the board to one of its devices.
DEVICE_ASK_TIMEOUT = 5.0


class BoardActor(pykka.ThreadingActor):
    """Attaches one board through its driver and keeps its devices' lifecycle."""

    def __init__(
        self,
        *,
        name: str,
        definition: BoardDefinition,
        ids: type[DeviceId],
        driver_class: type[BoardDriver],
        registry: pykka.ActorRef[Any],
        events: EventBus,
        options: dict[str, Any] | None = None,
        policy: RecoveryPolicy | None = None,
    ) -> None:
        super().__init__()
        self._name = name
        self._definition = definition
        self._ids = ids
        self._driver_class = driver_class
        self._options = options or {}
        self._registry = registry
        self._events = events
        self._driver: BoardDriver | None = None
        self._devices: dict[DeviceId, pykka.ActorRef[Any]] = {}
        self._state = S.UNKNOWN
        self._reason = "created"
        self._restarts = 0
        self._policy = policy or RecoveryPolicy()
        self._tracker = RestartTracker(self._policy)
        self._quarantined = False
        self._connected_at = 0.0
        self._timer: threading.Timer | None = None
        self._stopping = False
        self._log = logger.bind(device=name)
        self._handlers: dict[type, Callable[[Any], Any]] = {
            BringUp: self._bring_up,
            GetBoardStatus: lambda _m: self._status(),
            DeviceFault: self._device_fault,
            Recover: self._recover,
            ResetBoard: self._operator_reset,
            InjectFault: self._inject,
        }

    def on_start(self) -> None:
        self._driver = self._driver_class(
            board=self._name, definition=self._definition, options=self._options
        )
        me = self.actor_ref
        entries = []
        for spec in self._definition.devices:
            device = self._ids[spec.name]
            ref = DeviceActor.start(
                device=device,
                spec=spec,
                peripheral=self._driver.peripheral(spec),
                events=self._events,
                on_fault=lambda d, e: me.tell(DeviceFault(device=d, code=e.code, message=str(e))),
            )
            self._devices[device] = ref
            entries.append(
                RegistryEntry(
                    device=device, kind=spec.kind, policy=spec.policy, actor_urn=ref.actor_urn
                )
            )
        ask(self._registry, Register(entries=tuple(entries)), timeout=DEVICE_ASK_TIMEOUT)

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, *_exc_info: object) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join(DEVICE_ASK_TIMEOUT)
        if self._registry.is_alive():
            self._registry.tell(Unregister(board=self._name))
        stop_all(self._devices.values(), timeout=DEVICE_ASK_TIMEOUT)
        if self._driver is not None:
            try:
                self._driver.disconnect()
            finally:
                self._driver.close()

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise UnsupportedOperationError(
                f"board {self._name}: unexpected message {type(message).__name__}"
            )
        return handler(message)

    # --- lifecycle -------------------------------------------------------------------

    def _bring_up(self, message: BringUp) -> BoardStatus:
        assert self._driver is not None
        deadline = time.monotonic() + message.timeout
        try:
            if self._state is S.UNKNOWN:
                if not self._driver.scan(timeout=_left(deadline)):
                    raise DeviceUnavailableError(
                        f"board {self._name} not found by scan",
                        device=self._name,
                        state="UNKNOWN",
                        reason="scan found nothing",
                        since=time.time(),
                    )
                self._move_all(S.DISCOVERED, "found by scan")
            if self._state is S.DISCOVERED:
                self._driver.initialize(timeout=_left(deadline))
                self._move_all(S.INITIALIZED, "initialized")
            if self._state is S.INITIALIZED:
                self._driver.connect(timeout=_left(deadline))
                self._move_all(S.CONNECTED, "connected")
                self._connected_at = time.monotonic()
        except ActorHwError as e:
            self._reason = str(e)
            self._log.warning("bring-up failed: {}", e)
            raise
        return self._status()

    def _device_fault(self, message: DeviceFault) -> None:
        self._log.bind(code=message.code).warning(
            "fault on {}: {}", message.device, message.message
        )
        if self._state not in (S.CONNECTED, S.ACTIVE) or self._stopping:
            return  # already down or recovering: one fault, one recovery
        self._publish("fault", message.message, 0)
        self._go_down(message.message)
        if time.monotonic() - self._connected_at > self._policy.stable_after:
            self._tracker.failures_in_row = 0
        self._schedule(hung=message.code == "timed_out")

    def _schedule(self, *, hung: bool) -> None:
        if self._tracker.exhausted():
            self._quarantined = True
            self._reason = (
                f"quarantined after {self._policy.max_restarts} restarts in "
                f"{self._policy.window:g} s: {self._reason}"
            )
            self._log.error("{}", self._reason)
            self._publish("quarantined", self._reason, self._restarts)
            return
        delay = self._tracker.delay()
        message = Recover(attempt=self._tracker.failures_in_row + 1, hung=hung)
        self._timer = threading.Timer(delay, self._tell_if_running, args=(message,))
        self._timer.daemon = True
        self._timer.start()

    def _tell_if_running(self, message: Recover) -> None:
        if self.actor_ref.is_alive():
            self.actor_ref.tell(message)

    def _recover(self, message: Recover) -> None:
        """One try along ERROR -> DISCONNECTED -> INITIALIZED -> CONNECTED, escalating:
        reconnect (interrupts whatever runs), then power cycle."""
        if self._stopping or self._quarantined or self._state is not S.DISCONNECTED:
            return
        assert self._driver is not None
        self._tracker.record()
        self._restarts += 1
        attempt = message.attempt
        self._publish("recovering", self._reason, attempt)
        step = self._policy.step_timeout
        try:
            self._move_all(S.INITIALIZED, f"recovery attempt {attempt}", attempt)
            self._driver.initialize(timeout=step)  # powers a vanished board back on
            try:
                if message.hung:
                    raise _Escalate
                self._driver.connect(timeout=step)
            except (_Escalate, ActorHwError) as first:
                self._log.info("escalating to a power cycle after: {}", first)
                self._driver.power_cycle(timeout=step)
                self._driver.connect(timeout=step)
            self._move_all(S.CONNECTED, f"recovered (attempt {attempt})", attempt)
        except ActorHwError as e:
            self._reason = f"recovery attempt {attempt} failed: {e}"
            self._log.warning("{}", self._reason)
            self._publish("recovery_failed", self._reason, attempt)
            if self.state is S.INITIALIZED:  # _move_all above may have got this far
                self._move_all(S.DISCONNECTED, self._reason, attempt)
            self._tracker.failures_in_row += 1
            self._schedule(hung=message.hung)
            return
        self._connected_at = time.monotonic()
        self._tracker.failures_in_row = 0
        self._publish("recovered", self._reason, attempt)

    def _inject(self, message: InjectFault) -> None:
        assert self._driver is not None
        if message.fault != "unplug":
            raise UnsupportedOperationError(
                f"unknown fault {message.fault!r}; valid: unplug", fault=message.fault
            )
        self._driver.unplug()

    def _operator_reset(self, message: ResetBoard) -> BoardStatus:
        """Forget the restart history and try again, also a quarantined board."""
        self._quarantined = False
        self._tracker.reset()
        if self._state is S.DISCONNECTED:
            self._recover(Recover(attempt=1, hung=True))
        return self._status()

    def _publish(self, what: str, reason: str, attempt: int) -> None:
        self._events.publish(
            BoardEvent(board=self._name, what=what, reason=reason, attempt=attempt, at=time.time())
        )

    def _go_down(self, reason: str) -> None:
        """Every device to DISCONNECTED through legal edges (ACTIVE goes via ERROR)."""
        for ref in self._devices.values():
            info = ask(ref, GetInfo(), timeout=DEVICE_ASK_TIMEOUT)
            if info.state is S.ACTIVE:
                ask(ref, Transition(to=S.ERROR, reason=reason), timeout=DEVICE_ASK_TIMEOUT)
            if info.state in (S.ACTIVE, S.CONNECTED, S.INITIALIZED):
                ask(ref, Transition(to=S.DISCONNECTED, reason=reason), timeout=DEVICE_ASK_TIMEOUT)
        self._state, self._reason = S.DISCONNECTED, reason
        if self._driver is not None:
            self._driver.disconnect()

    def _move_all(self, to: DeviceState, reason: str, attempt: int = 0) -> None:
        check_transition(self._name, self._state, to)
        for ref in self._devices.values():
            ask(ref, Transition(to=to, reason=reason, attempt=attempt), timeout=DEVICE_ASK_TIMEOUT)
        self._state, self._reason = to, reason

    @property
    def state(self) -> DeviceState:
        """The board's own lifecycle state."""
        return self._state

    def _status(self) -> BoardStatus:
        return BoardStatus(
            board=self._name,
            definition=self._definition.name,
            driver=self._driver_class.name,
            state=self._state,
            reason=self._reason,
            devices=len(self._devices),
            restarts=self._restarts,
            quarantined=self._quarantined,
        )


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


class _Escalate(Exception):
    """A hung board skips the plain reconnect and goes to a power cycle."""
