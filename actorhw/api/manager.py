"""The seeds' DeviceDriverManager API, on the actors.

A *device* of the manager is a board instance attached by a driver plugin (its
``device_id`` is the instance's name): ``scan_devices("sim")`` finds the boards whose
definition names the ``sim`` driver.  Every operation is one message to the board's
actor, whose mailbox serializes it with everything else that happens to the board:
the manager holds no lock and no state of its own.

Results follow the seeds: a dict with ``"status": "success"`` or ``"status": "error"``
(with ``code`` and ``message``) for what the hardware did.  A caller's mistake is
raised instead, before anything changes: an unknown driver (DriverError), an unknown
device (NoSuchBoardError), an unknown command (UnsupportedOperationError, listing the
supported ones), bad arguments (InvalidArgumentError), and an operation the lifecycle
table forbids in the device's state (InvalidTransitionError).

    rt = Runtime.start()
    result = rt.manager.connect_device("sim", "same70-xplained")   # scans, initializes
    rt.manager.execute_command("sim", "start", device_id="same70-xplained")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actorhw.api.protocols import BoardHost
from actorhw.core.errors import (
    REFUSALS,
    ActorHwError,
    DeviceUnavailableError,
    InvalidArgumentError,
    NoSuchBoardError,
    UnsupportedOperationError,
)
from actorhw.core.lifecycle import DeviceState, check_transition
from actorhw.core.messages import BoardCommand, BoardStatus, BoardStep
from actorhw.drivers.board_driver import BoardDriver
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ask

S = DeviceState
#: Default seconds one manager operation (one driver hook) may take.
DEFAULT_TIMEOUT = 30.0
#: A device as the manager takes it: its device_id, or a device dict from a scan.
Device = str | Mapping[str, Any]


class DeviceDriverManager:
    """Scan, initialize, connect, command, reset and close devices by driver name.

    Get it as ``Runtime.manager``.  Any thread may call it: each call is messages to
    the boards' actors, each with a deadline.
    """

    def __init__(self, runtime: BoardHost, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._rt = runtime
        self.timeout = timeout

    # --- discovery --------------------------------------------------------------------

    def scan_devices(self, driver: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Find the devices of ``driver``: UNKNOWN -> DISCOVERED for each one found.

        Every board definition that names the driver gets an instance (if none runs),
        and the driver's scan hook says whether it is there.  Devices already past
        UNKNOWN are listed as they are.

        Returns:
            ``{"status", "driver", "devices": [device dict...], "errors": [...]}``;
            ``status`` is ``"error"`` only when a scan failed and nothing was found.
            A device dict has ``device_id``, ``driver``, ``definition``, ``title`` and
            ``state``.
        """
        self.driver_class(driver)
        timeout = self._timeout(timeout)
        devices: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for name in self._instances(driver, attach=True):
            status = self._status(name)
            if status.state is S.UNKNOWN:
                try:
                    status = self._step(name, "scan", timeout)
                except DeviceUnavailableError:
                    continue  # not there: not listed
                except REFUSALS:
                    raise
                except ActorHwError as e:
                    errors.append({"device_id": name, "code": e.code, "message": e.message})
                    continue
            devices.append(self._describe(status))
        return {
            "status": "error" if errors and not devices else "success",
            "driver": driver,
            "devices": devices,
            "errors": errors,
        }

    # --- lifecycle --------------------------------------------------------------------

    def initialize_device(
        self, driver: str, device: Device, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """DISCOVERED or DISCONNECTED -> INITIALIZED (power, processes, ports)."""
        name = self._resolve(driver, device, attached=True, to=S.INITIALIZED)
        return self._operation(driver, name, "initialize", self._timeout(timeout))

    def connect_device(
        self, driver: str, device: Device, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """-> CONNECTED, scanning an unknown device first and initializing a
        discovered (or disconnected) one first.

        Returns:
            The seeds' result; ``steps`` lists the operations that ran.
        """
        timeout = self._timeout(timeout)
        name = self._resolve(driver, device, attached=False, to=S.CONNECTED)
        steps: list[str] = []
        state = self._status(name).state if name in self._running() else S.UNKNOWN
        if state is S.UNKNOWN:
            steps.append("scan")
            found = self.scan_devices(driver, timeout=timeout)
            if not any(d["device_id"] == name for d in found["devices"]):
                error = next((e for e in found["errors"] if e["device_id"] == name), None)
                return {
                    "status": "error",
                    "driver": driver,
                    "device_id": name,
                    "state": S.UNKNOWN.value,
                    "code": error["code"] if error else "no_such_device",
                    "message": error["message"] if error else f"{name} not found by scan",
                    "steps": steps,
                }
            state = self._status(name).state
        if state in (S.DISCOVERED, S.DISCONNECTED):
            steps.append("initialize")
            result = self._operation(driver, name, "initialize", timeout)
            if result["status"] != "success":
                return result | {"steps": steps}
        steps.append("connect")
        return self._operation(driver, name, "connect", timeout) | {"steps": steps}

    def reset_device(
        self, driver: str, device: Device, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """ERROR -> DISCONNECTED (initialize it next), or a soft reset of a CONNECTED
        or ACTIVE device (its stream stops; it stays CONNECTED)."""
        name = self._resolve(driver, device, attached=True, to=S.DISCONNECTED)
        return self._operation(driver, name, "reset", self._timeout(timeout))

    def close_device(
        self, driver: str, device: Device, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Stop its stream and drop its link: -> DISCONNECTED (initialize to reuse)."""
        name = self._resolve(driver, device, attached=True, to=S.DISCONNECTED)
        return self._operation(driver, name, "close", self._timeout(timeout))

    def cleanup_all_devices(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Close every device of every driver that is past INITIALIZED or in ERROR.

        Returns:
            ``{"status", "results": {device_id: close result}}``; ``status`` is
            ``"error"`` if any close failed.
        """
        timeout = self._timeout(timeout)
        results: dict[str, Any] = {}
        for status in self._rt.boards(timeout=DEFAULT_ASK_TIMEOUT):
            if status.state in (S.INITIALIZED, S.CONNECTED, S.ACTIVE, S.ERROR):
                results[status.board] = self._operation(
                    status.driver, status.board, "close", timeout
                )
        failed = any(r["status"] != "success" for r in results.values())
        return {"status": "error" if failed else "success", "results": results}

    # --- commands ---------------------------------------------------------------------

    def execute_command(
        self,
        driver: str,
        command: str,
        device_id: str | None = None,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run a driver command on a CONNECTED (or streaming, ACTIVE) device.

        The device is ACTIVE while the command runs (and while its stream runs), then
        CONNECTED again; a failure moves it to ERROR (``reset_device`` then
        ``initialize_device`` bring it back).

        Args:
            driver: the driver's name.
            command: one of the driver's commands (``supported_commands``).
            device_id: the device; may be left out when the driver has exactly one
                connected device.
            args: the command's keyword arguments (msgpack values, str keys).
            timeout: seconds the command may take.

        Returns:
            ``{"status": "success", "driver", "device_id", "command", "result"}`` or
            ``{"status": "error", ..., "code", "message", "state"}``.
        """
        commands = self.supported_commands(driver)
        if command not in commands:
            raise UnsupportedOperationError(
                f"driver {driver!r} has no command {command!r}; supported: "
                + ", ".join(f"{c} ({d})" for c, d in sorted(commands.items())),
                driver=driver,
                command=command,
                supported=sorted(commands),
            )
        if args is None:
            args = {}
        if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
            raise InvalidArgumentError(
                f"args must be a dict with str keys, not {args!r}", argument="args"
            )
        if device_id is None:
            device_id = self._only_connected(driver)
        name = self._resolve(driver, device_id, attached=True, to=S.ACTIVE)
        timeout = self._timeout(timeout)
        base = {"driver": driver, "device_id": name, "command": command}
        try:
            result = ask(
                self._rt._board_ref(name),
                BoardCommand(command=command, args=dict(args), timeout=timeout),
                timeout=timeout + 1.0,
            )
        except REFUSALS:
            raise
        except ActorHwError as e:
            return base | self._failure(name, e)
        return base | {"status": "success", "result": result}

    # --- questions --------------------------------------------------------------------

    def driver_class(self, driver: str) -> type[BoardDriver]:
        """The driver plugin named ``driver`` (DriverError lists the loaded ones)."""
        if not isinstance(driver, str):
            raise InvalidArgumentError(
                f"driver must be a driver's name, not {driver!r}", argument="driver"
            )
        return self._rt.drivers.get(driver)

    def supported_commands(self, driver: str) -> dict[str, str]:
        """The driver's commands, name -> description (``start``/``stop`` if it streams)."""
        return self.driver_class(driver).commands()

    def device_state(self, driver: str, device: Device) -> DeviceState:
        """The device's lifecycle state now (UNKNOWN if it was never scanned)."""
        name = self._resolve(driver, device, attached=False, to=None)
        return self._status(name).state if name in self._running() else S.UNKNOWN

    # --- helpers ----------------------------------------------------------------------

    def _operation(self, driver: str, name: str, op: str, timeout: float) -> dict[str, Any]:
        base = {"driver": driver, "device_id": name}
        try:
            status = self._step(name, op, timeout)
        except REFUSALS:
            raise
        except ActorHwError as e:
            return base | self._failure(name, e)
        return base | {"status": "success", "state": status.state.value}

    def _describe(self, status: BoardStatus) -> dict[str, Any]:
        definition = self._rt.catalog.boards.get(status.definition)
        return {
            "device_id": status.board,
            "driver": status.driver,
            "definition": status.definition,
            "title": definition.title if definition is not None else status.definition,
            "state": status.state.value,
        }

    def _failure(self, name: str, error: ActorHwError) -> dict[str, Any]:
        try:
            state = self._status(name).state.value
        except ActorHwError:
            state = "unknown"
        return {"status": "error", "code": error.code, "message": error.message, "state": state}

    def _step(self, name: str, op: str, timeout: float) -> BoardStatus:
        status: BoardStatus = ask(
            self._rt._board_ref(name), BoardStep(operation=op, timeout=timeout), timeout=timeout + 1
        )
        return status

    def _status(self, name: str) -> BoardStatus:
        return self._rt.board_status(name, timeout=DEFAULT_ASK_TIMEOUT)

    def _running(self) -> dict[str, Any]:
        return self._rt._boards

    def _instances(self, driver: str, *, attach: bool) -> list[str]:
        """The running boards of ``driver``, plus (``attach``) an UNKNOWN instance of
        each definition of the driver that has none."""
        running = {s.board: s for s in self._rt.boards(timeout=DEFAULT_ASK_TIMEOUT)}
        names = [n for n, s in running.items() if s.driver == driver]
        definitions = {s.definition for n, s in running.items() if n in names}
        for definition in self._definitions(driver):
            if definition not in definitions and attach and definition not in running:
                names.append(self._rt.attach_board(definition))
        return names

    def _definitions(self, driver: str) -> list[str]:
        return sorted(n for n, d in self._rt.catalog.boards.items() if d.driver == driver)

    def _resolve(self, driver: str, device: Any, *, attached: bool, to: DeviceState | None) -> str:
        """The instance name of ``device``; refuses a device of another driver, an
        unknown one, and (``attached``) one never scanned, by the table's UNKNOWN row."""
        self.driver_class(driver)
        if isinstance(device, Mapping):
            device = device.get("device_id")
        if not isinstance(device, str) or not device:
            raise InvalidArgumentError(
                f"a device is its device_id or a device dict from scan_devices, not {device!r}",
                argument="device",
            )
        if device in self._running():
            status = self._status(device)
            if status.driver != driver:
                raise InvalidArgumentError(
                    f"{device} is attached by driver {status.driver!r}, not {driver!r}",
                    argument="driver",
                )
            return device
        if device not in self._definitions(driver):
            known = sorted(
                {s.board for s in self._rt.boards() if s.driver == driver}
                | set(self._definitions(driver))
            )
            raise NoSuchBoardError(
                f"driver {driver!r} has no device {device!r}; its devices: "
                f"{', '.join(known) or 'none'}",
                board=device,
            )
        if attached and to is not None:
            check_transition(device, S.UNKNOWN, to)  # never scanned: refused by the table
        return device

    def _only_connected(self, driver: str) -> str:
        ready = [
            s.board
            for s in self._rt.boards(timeout=DEFAULT_ASK_TIMEOUT)
            if s.driver == driver and s.state in (S.CONNECTED, S.ACTIVE)
        ]
        if len(ready) != 1:
            raise InvalidArgumentError(
                f"give device_id: driver {driver!r} has {len(ready)} connected devices"
                + (f" ({', '.join(ready)})" if ready else ""),
                argument="device_id",
            )
        return ready[0]

    def _timeout(self, timeout: float | None) -> float:
        value = self.timeout if timeout is None else timeout
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise InvalidArgumentError(
                f"timeout must be a positive number of seconds, not {timeout!r}",
                argument="timeout",
            )
        return float(value)
