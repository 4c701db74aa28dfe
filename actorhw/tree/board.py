"""BoardActor: one board instance, its driver and its device actors.

The board actor owns the driver (and through it the link), starts one DeviceActor per
device of the board, registers them, and drives every device along the lifecycle table
as the board comes up, faults and goes down.  Blocking driver hooks (booting, opening a
port) run here, never in a device's mailbox.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from actorhw.core.errors import (
    ActorDeadError,
    ActorHwError,
    DeviceUnavailableError,
    InvalidArgumentError,
    UnsupportedOperationError,
)
from actorhw.core.events import EventBus
from actorhw.core.ids import DeviceId, DeviceKind
from actorhw.core.lifecycle import DeviceState, check_transition
from actorhw.core.log import logger
from actorhw.core.messages import (
    BoardEvent,
    BoardStatus,
    BringUp,
    ConnectScript,
    Crash,
    DeviceFault,
    DeviceSnapshot,
    GetBoardStatus,
    GetInfo,
    InjectFault,
    Recover,
    Reregister,
    ResetBoard,
    Revive,
    TakeSnapshot,
    Transition,
    Unregister,
)
from actorhw.core.recovery import RecoveryPolicy, RestartTracker
from actorhw.drivers.board_driver import BoardDriver, PendingIO, Peripheral
from actorhw.drivers.definitions import BoardDefinition, DeviceSpec
from actorhw.tree.asks import Pending, ask, ask_each, by_urn, stop_all, tell_if_alive
from actorhw.tree.board_control import BoardControl
from actorhw.tree.board_watch import BoardWatch
from actorhw.tree.device_supervision import DeviceSupervision
from actorhw.tree.status_book import PostsStatus, StatusBook
from actorhw.tree.supervision import SupervisedActor

S = DeviceState
#: The faults :class:`InjectFault` can cause, as hardware does.
FAULTS = ("unplug", "hang", "power_cycle", "memory_error")
#: Deadline of one control ask from the board to one of its devices.
DEVICE_ASK_TIMEOUT = 5.0


class BoardActor(BoardControl, DeviceSupervision, BoardWatch, PostsStatus, SupervisedActor):
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
        restore: tuple[DeviceSnapshot, ...] = (),
        statuses: StatusBook | None = None,
        ask_timeout: float = DEVICE_ASK_TIMEOUT,
    ) -> None:
        super().__init__()
        self._book = statuses
        self._posting = False  # on once the status can be built
        # The caller's deadline scales every internal one: never shorter than the default.
        self._ask_timeout = max(DEVICE_ASK_TIMEOUT, ask_timeout)
        # A restarted board restarts its driver: the hardware's state is gone, so leases
        # carry over but what they opened must be opened again (a new generation).
        self._restore = {
            snap.name: attrs.evolve(snap, generation=snap.generation + 1) for snap in restore
        }
        self._specs: dict[DeviceId, DeviceSpec] = {}
        self._peripherals: dict[DeviceId, Peripheral] = {}
        self._name = name
        self.label = f"board {name}"
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
        self.handle(
            {
                BringUp: self._bring_up,
                GetBoardStatus: lambda _m: self._status(),
                DeviceFault: self._device_fault,
                Recover: self._recover,
                ResetBoard: self._operator_reset,
                InjectFault: self._inject,
                ConnectScript: self._set_script,
                Crash: lambda m: self.crash(m.reason),
                Reregister: self._reregister,
                Revive: self._revive,
            }
        )
        self._scripts: dict[str, tuple[tuple[str, ...], float]] = {}
        self._registering: Pending[None] | None = None  # the Register sent by started()
        self._board_io: Peripheral | None = None
        self.handle(self._control_handlers())  # the device manager's
        self.handle(self._supervise_devices())  # crashes, quarantine, releases
        self.handle(self._watch_handlers())  # an idle board's link and probes
        self._posting = True
        self._post()  # now, in the starter's thread: a predecessor's status is stale

    def started(self) -> None:
        self._driver = self._driver_class(
            board=self._name, definition=self._definition, options=self._options
        )
        for spec in self._definition.devices:
            device = self._ids[spec.name]
            peripheral = self._driver.peripheral(spec)
            if spec.kind is DeviceKind.BOARD and self._board_io is None:
                self._board_io = peripheral
            self._specs[device], self._peripherals[device] = spec, peripheral
            self._devices[device] = self._start_device(device, self._restore.get(spec.name))
        self._registering = self._register_later(tuple(self._devices))
        self._post()
        self._start_watch()

    def on_stop(self) -> None:
        self._shutdown(unregister=True)

    def failed(self) -> None:
        # No Unregister after a crash: the successor's Register could arrive first and be
        # undone.  The successor registers over these entries; the supervisor unregisters
        # a board it quarantines instead.
        self._shutdown(unregister=False)

    def snapshot(self) -> tuple[DeviceSnapshot, ...]:
        """Every device's leases, so the board's successor keeps them."""
        snaps = self._device_snapshots()  # of the devices that have no actor
        for ref in self._devices.values():
            if not ref.is_alive():
                continue
            try:
                snaps.append(ask(ref, TakeSnapshot(), timeout=DEVICE_ASK_TIMEOUT))
            except ActorHwError as e:
                self._log.warning("no snapshot of {}: {}", ref, e)
        return tuple(snaps)

    def _reregister(self, message: Reregister) -> None:
        registry = by_urn(message.registry_urn)
        if registry is not None:
            self._registry = registry
            try:
                self._register(tuple(self._devices))
            except ActorDeadError:  # it crashed again: its successor sends a new Reregister
                self._log.warning("the registry died before {} re-registered", self._name)

    def _revive(self, message: Revive) -> None:
        """Come up again after this actor's restart; recovery takes over on failure."""
        try:
            self._bring_up(BringUp(timeout=message.timeout))
        except ActorHwError as e:
            self._publish("recovery_failed", f"after a restart: {e}", 0)
            if self._state is S.INITIALIZED:
                self._move_all(S.DISCONNECTED, str(e))
                self._schedule(hung=False)
            return
        self._publish("recovered", "after the board actor restarted", 0)

    def _shutdown(self, *, unregister: bool) -> None:
        self._stopping = True
        self._stop_watch()
        self._fail_waiting()
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join(self._ask_timeout)
        if unregister:
            tell_if_alive(self._registry, Unregister(board=self._name))
        self._stop_stream()
        stop_all(self._devices.values(), timeout=self._ask_timeout)
        if self._driver is not None:
            try:
                self._driver.disconnect()
            finally:
                self._driver.close()

    # --- lifecycle -------------------------------------------------------------------

    def _bring_up(self, message: BringUp) -> BoardStatus:
        assert self._driver is not None
        deadline = time.monotonic() + message.timeout
        self._ask_timeout = max(self._ask_timeout, message.timeout)
        registering, self._registering = self._registering, None
        if registering is not None:  # sent as the board started: done by now, mostly
            # A registry that died meanwhile: its successor gets a Reregister from the
            # supervisor (rest_for_one), and this board's entries then.
            with contextlib.suppress(ActorDeadError):
                registering.wait(timeout=max(self._ask_timeout, _left(deadline)))
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
                self._run_connect_scripts()
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
        self._fault(message.message, hung=message.code == "timed_out")

    def _fault(self, reason: str, *, hung: bool) -> None:
        if self._state not in (S.CONNECTED, S.ACTIVE) or self._stopping:
            return  # already down or recovering: one fault, one recovery
        self._publish("fault", reason, 0)
        self._go_down(reason)
        if time.monotonic() - self._connected_at > self._policy.stable_after:
            self._tracker.failures_in_row = 0
        self._schedule(hung=hung)

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
        if delay <= 0:  # the first try: next in the mailbox, no timer thread to start
            self.actor_ref.tell(message)
            return
        self._timer = threading.Timer(delay, tell_if_alive, args=(self.actor_ref, message))
        self._timer.daemon = True
        self._timer.start()

    def _recover(self, message: Recover) -> None:
        """One try along ERROR -> DISCONNECTED -> INITIALIZED -> CONNECTED."""
        if self._stopping or self._quarantined or self._state is not S.DISCONNECTED:
            return
        assert self._driver is not None
        self._tracker.record()
        self._restarts += 1
        attempt = message.attempt
        self._publish("recovering", self._reason, attempt)
        try:
            self._move_all(S.INITIALIZED, f"recovery attempt {attempt}", attempt)
            self._driver.initialize(timeout=self._policy.step_timeout)  # a vanished board
            step = self._escalate(hung=message.hung, attempt=attempt)
            self._run_connect_scripts()
            self._move_all(S.CONNECTED, f"recovered by {step} (attempt {attempt})", attempt)
        except ActorHwError as e:
            self._reason = f"recovery attempt {attempt} failed: {e}"
            self._log.warning("{}", self._reason)
            self._publish("recovery_failed", self._reason, attempt)
            if self.state is S.INITIALIZED:  # _move_all above may have got this far
                self._move_all(S.DISCONNECTED, self._reason, attempt)
            if isinstance(e, DeviceUnavailableError) and e.needs_hand:
                self._needs_hand()
                return
            self._tracker.failures_in_row += 1
            self._schedule(hung=message.hung)
            return
        self._connected_at = time.monotonic()
        self._tracker.failures_in_row = 0
        self._publish("recovered", self._reason, attempt)

    def _needs_hand(self) -> None:
        """No step revived the board and nothing can cut its power: quarantine it now and
        say a person is needed (retrying cannot help; an operator reset tries again)."""
        self._quarantined = True
        self._reason = (
            f"needs a hand: {self._name} does not answer, Ctrl-C does not reach it and it "
            "has no power hook; power-cycle it by hand, then reset_board"
        )
        self._log.error("{}", self._reason)
        self._publish("needs_hand", self._reason, self._restarts)
        self._publish("quarantined", self._reason, self._restarts)

    def _escalate(self, *, hung: bool, attempt: int) -> str:
        """Reattach the board, each step bounded in time; returns the step that worked.

        Reconnect (its raw-REPL entry interrupts whatever runs) and soft reset, then a
        power cycle through the driver's power hook, then rediscovery (scan, initialize,
        connect).  A hung board, whose link already sent Ctrl-C in vain, has shown that
        it answers nothing: it goes to the power hook at once.
        """
        driver, p = self._driver, self._policy
        assert driver is not None

        def power_cycle() -> None:
            driver.power_cycle(timeout=p.step_timeout)
            driver.connect(timeout=p.step_timeout)

        def rediscover() -> None:
            if not driver.scan(timeout=p.step_timeout):
                raise DeviceUnavailableError(
                    f"board {self._name} not found by scan",
                    device=self._name,
                    state="DISCONNECTED",
                    reason="scan found nothing",
                    since=time.time(),
                )
            driver.initialize(timeout=p.step_timeout)
            driver.connect(timeout=p.step_timeout)

        ladder: list[tuple[str, Callable[[], None]]] = []
        if not hung:  # a hung board answers neither a reconnect nor a soft reset
            ladder.append(("reconnect", lambda: driver.connect(timeout=p.step_timeout)))
            ladder.append(("soft reset", lambda: driver.reset(timeout=p.reset_timeout)))
        ladder += [("power cycle", power_cycle), ("rediscovery", rediscover)]
        failures = []
        needs_hand = False
        for step, run in ladder:
            started = time.monotonic()
            try:
                run()
            except ActorHwError as e:
                failures.append(f"{step}: {e}")
                needs_hand = needs_hand or (
                    isinstance(e, UnsupportedOperationError) and e.needs_hand
                )
                self._log.bind(attempt=attempt).info(
                    "{} failed after {:.2f} s: {}", step, time.monotonic() - started, e
                )
                self._publish("escalation_failed", f"{step}: {e}", attempt)
                driver.disconnect()
                continue
            self._log.bind(attempt=attempt).info(
                "{} worked in {:.2f} s", step, time.monotonic() - started
            )
            return step
        raise DeviceUnavailableError(
            f"board {self._name}: every recovery step failed: " + "; ".join(failures),
            device=self._name,
            state="DISCONNECTED",
            reason=failures[-1],
            since=time.time(),
            needs_hand=needs_hand,
        )

    def _run_connect_scripts(self) -> None:
        """Run the registered connect scripts (device classes' definitions and setups),
        so that host and board agree on the board's state before it is CONNECTED."""
        if not self._scripts:
            return
        if self._board_io is None:
            raise UnsupportedOperationError(
                f"board {self._name} has no BOARD device to run connect scripts on",
                board=self._name,
            )
        for key, (codes, timeout) in list(self._scripts.items()):
            for code in codes:
                try:
                    result = self._board_io.perform("exec", (code, timeout))
                    if isinstance(result, PendingIO):
                        result.wait(timeout=timeout + 1)
                except ActorHwError as e:
                    e.add_note(f"in the connect script {key!r} of board {self._name}")
                    raise

    def _set_script(self, message: ConnectScript) -> None:
        if message.codes:
            self._scripts[message.key] = (message.codes, message.timeout)
        else:
            self._scripts.pop(message.key, None)

    def _inject(self, message: InjectFault) -> str | None:
        assert self._driver is not None
        fault = message.fault
        if fault not in FAULTS:
            raise InvalidArgumentError(
                f"unknown fault {fault!r}; valid: {', '.join(FAULTS)}",
                argument="fault",
                value=fault,
            )
        self._publish("fault_injected", fault, 0)
        if fault == "unplug":
            self._driver.unplug()
        elif fault == "hang":
            self._driver.hang()
        elif fault == "power_cycle":
            self._driver.power_cycle(timeout=self._policy.step_timeout)
            self._fault("power cycled: the board's state was lost", hung=False)
        else:
            return self._driver.exhaust_memory(timeout=self._policy.step_timeout)
        return None

    def _operator_reset(self, message: ResetBoard) -> BoardStatus:
        """Forget the restart history and try again, also a quarantined board."""
        self._quarantined = False
        self._tracker.reset()
        self._revive_devices()
        self._post()
        if self._state is S.UNKNOWN:  # revived by the supervisor: come up now
            return self._bring_up(BringUp(timeout=message.timeout))
        if self._state is S.DISCONNECTED:
            self._recover(Recover(attempt=1, hung=True))
        return self._status()

    def _publish(self, what: str, reason: str, attempt: int) -> None:
        self._events.publish(
            BoardEvent(board=self._name, what=what, reason=reason, attempt=attempt, at=time.time())
        )

    def _go_down(self, reason: str) -> None:
        """Every device to DISCONNECTED through legal edges (ACTIVE goes via ERROR)."""
        for ref in self._serving():
            info = self._to_device(ref, GetInfo())
            # An ACTIVE device (or one opened meanwhile) passes through ERROR: the device
            # decides in its own mailbox, so a user's open or close cannot race this.
            if info is not None and info.state in (S.ACTIVE, S.CONNECTED, S.INITIALIZED):
                self._to_device(ref, Transition(to=S.DISCONNECTED, reason=reason))
        self._set_status(S.DISCONNECTED, reason)
        if self._driver is not None:
            self._driver.disconnect()

    def _move_all(self, to: DeviceState, reason: str, attempt: int = 0) -> None:
        check_transition(self._name, self._state, to)
        # Sent to every device at once, then collected: the devices move in parallel.  A
        # device that crashed meanwhile is skipped: its successor starts in our state.
        message = Transition(to=to, reason=reason, attempt=attempt)
        ask_each(self._serving(), message, timeout=self._ask_timeout)
        self._set_status(to, reason)

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
            devices=len(self._definition.devices),
            restarts=self._restarts,
            quarantined=self._quarantined or bool(self._quarantined_devices),
            quarantined_devices=tuple(d.name for d in self._quarantined_devices),
        )


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
