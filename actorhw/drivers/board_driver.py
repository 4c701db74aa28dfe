"""The driver contract: what a plugin implements to attach a board and its devices.

A driver plugin is a ``drv_*.py`` file (see :mod:`actorhw.plugins`) with a subclass of
:class:`BoardDriver`.  The runtime calls its lifecycle hooks (the seeds' scan, initialize,
connect, reset, close) from the board's actor, each with a deadline, and asks it for one
:class:`Peripheral` per device of the board.  Drivers know nothing of actors.
"""

from __future__ import annotations

import abc
import concurrent.futures
import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from actorhw.core.errors import TimedOutError, UnsupportedOperationError
from actorhw.core.ids import DeviceKind
from actorhw.drivers.definitions import BoardDefinition, DeviceSpec
from actorhw.drivers.streams import STREAM_COMMANDS, StreamWriter

#: Every operation of every device kind: the contract between handles and peripherals.
OPERATIONS: Mapping[DeviceKind, frozenset[str]] = {
    DeviceKind.UART: frozenset({"write", "read"}),
    DeviceKind.GPIO: frozenset({"read", "write"}),
    DeviceKind.I2C: frozenset({"write", "read"}),
    DeviceKind.SPI: frozenset({"transfer"}),
    DeviceKind.ADC: frozenset({"read"}),
    DeviceKind.DAC: frozenset({"write"}),
    DeviceKind.PWM: frozenset({"set_duty", "set_frequency", "read"}),
    DeviceKind.LED: frozenset({"set", "get", "toggle"}),
    DeviceKind.BUTTON: frozenset({"is_pressed"}),
    DeviceKind.DISPLAY: frozenset({"show", "clear", "read"}),
    DeviceKind.ACCELEROMETER: frozenset({"read"}),
    # resources: figures read from the board (a dict, see RESOURCE_FIGURES), or a
    # PendingIO of it; interrupt: stop the code running on the board now (Ctrl-C).
    DeviceKind.BOARD: frozenset({"exec", "resources", "interrupt"}),
}


#: The keys a BOARD peripheral's ``resources`` operation may return, all optional: a
#: missing key is a figure the firmware cannot report (unknown, never zero).
RESOURCE_FIGURES: frozenset[str] = frozenset(
    {
        "memory.total", "memory.used", "memory.free", "memory.largest_free_block",
        "storage.total", "storage.used", "storage.free",
        "cpu.uptime_s", "cpu.active_threads", "cpu.usage_percent",
    }
)  # fmt: skip


class PendingIO:
    """An operation running off the device's mailbox (on a board's I/O thread).

    A peripheral returns one instead of a value when the work may block; the device
    actor hands it to the caller, who waits on it with its own deadline.  A caller that
    ran the work itself (an idle board's :class:`~actorhw.drivers.io_lane.IOLane`) gets
    one that is done already (:attr:`ran_here`): its :meth:`outcome` needs no future.
    """

    __slots__ = ("_future", "error", "ran_here", "value", "what")

    def __init__(self, future: concurrent.futures.Future[Any] | None, *, what: str) -> None:
        self._future = future
        self.value: Any = None
        """The result of work that :attr:`ran_here` and succeeded (see :meth:`outcome`)."""
        self.error: BaseException | None = None
        """The error of work that :attr:`ran_here` (None: it succeeded, or it did not
        run here)."""
        self.ran_here = future is None
        """The work ran in the caller's thread and is done: see :meth:`outcome`."""
        self.what = what

    @classmethod
    def ran(cls, value: Any, *, what: str) -> PendingIO:
        """Done already, in the caller's thread, with ``value``."""
        done = cls.__new__(cls)  # every slot set here: one call on the fast path
        done._future, done.value, done.error, done.ran_here, done.what = (
            None, value, None, True, what,
        )  # fmt: skip
        return done

    @classmethod
    def failed(cls, error: BaseException, *, what: str) -> PendingIO:
        """Done already, in the caller's thread, with ``error``."""
        done = cls(None, what=what)
        done.error = error
        return done

    def outcome(self) -> Any:
        """The result of work that :attr:`ran_here`; raises its error."""
        if self.error is not None:
            raise self.error
        return self.value

    @property
    def future(self) -> concurrent.futures.Future[Any]:
        """The operation's future (for work that ran here, a done one, made on demand)."""
        if self._future is None:
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            if self.error is not None:
                future.set_exception(self.error)
            else:
                future.set_result(self.value)
            self._future = future
        return self._future

    def wait(self, *, timeout: float) -> Any:
        """The operation's result; TimedOutError if it has none within ``timeout`` s."""
        if self.ran_here:
            return self.outcome()
        assert self._future is not None
        try:
            return self._future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise TimedOutError(
                f"{self.what}: no answer within {timeout:.3g} s",
                operation=self.what,
                timeout=timeout,
            ) from None


class Peripheral:
    """The driver side of one device: performs its kind's operations.

    Subclasses define one method per operation in :data:`OPERATIONS` for their kind.
    A method returns a value, or a :class:`PendingIO` when the work may block.
    """

    #: True when :meth:`perform` keeps no state of its own and only hands work to the
    #: board's I/O thread (which serializes it): then a caller's thread may perform an
    #: operation of an opened lease directly, without a hop through the device's
    #: mailbox (the runtime's fast dispatch). False (the default): every operation is
    #: performed in the device actor, one at a time.
    callers_may_perform: ClassVar[bool] = False

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec

    def perform(self, verb: str, args: tuple[Any, ...]) -> Any:
        """Run operation ``verb`` with ``args``."""
        method = getattr(self, verb, None)
        if verb not in OPERATIONS[self.spec.kind] or method is None:
            raise UnsupportedOperationError(
                f"{self.spec.name} ({self.spec.kind.value}) has no operation {verb!r}; "
                f"valid: {', '.join(sorted(OPERATIONS[self.spec.kind]))}",
                device=self.spec.name,
                op=verb,
            )
        return method(*args)

    def operations(self) -> dict[str, Callable[..., Any]]:
        """Each operation of the device's kind that it has, as a callable of the
        operation's arguments: what :meth:`perform` would call, found once (the
        runtime's fast dispatch calls it directly).  A subclass that overrides
        :meth:`perform` is called through it."""
        ops = OPERATIONS[self.spec.kind]
        if type(self).perform is Peripheral.perform:
            found = {op: getattr(self, op, None) for op in ops}
            return {op: method for op, method in found.items() if method is not None}
        perform = self.perform
        return {op: functools.partial(_through, perform, op) for op in ops}

    def reset(self) -> None:
        """Put the device back in its power-on state; called on the last release."""


def _through(perform: Callable[[str, tuple[Any, ...]], Any], verb: str, *args: Any) -> Any:
    return perform(verb, args)


class BoardDriver(abc.ABC):
    """Attaches one board instance: its lifecycle hooks and its peripherals.

    Every hook is called from the board's actor, one at a time, with a deadline.
    """

    name: ClassVar[str]
    """The driver's name, as board files write it (``driver = "sim"``)."""

    def __init__(
        self, *, board: str, definition: BoardDefinition, options: Mapping[str, Any] | None = None
    ) -> None:
        self.board = board
        self.definition = definition
        self.options = dict(definition.options) | dict(options or {})

    def scan(self, *, timeout: float) -> bool:
        """Is the board there? UNKNOWN -> DISCOVERED when True."""
        return True

    def initialize(self, *, timeout: float) -> None:  # noqa: B027 - optional hook
        """Prepare the board (power, processes, ports). DISCOVERED -> INITIALIZED."""

    def connect(self, *, timeout: float) -> None:  # noqa: B027 - optional hook
        """Open the link and bring the board to a known state. INITIALIZED -> CONNECTED."""

    def disconnect(self) -> None:  # noqa: B027 - optional hook
        """Drop the link; the board may be reconnected later. -> DISCONNECTED."""

    def reset(self, *, timeout: float) -> None:
        """Soft-reset the board and leave it connected (the escalation's second step).

        The default reconnects; a driver that can soft-reset its board overrides it.
        """
        self.connect(timeout=timeout)

    def power_cycle(self, *, timeout: float) -> None:
        """Cut and restore the board's power, where the driver can."""
        raise UnsupportedOperationError(
            f"driver {self.name!r} cannot power-cycle", driver=self.name
        )

    def unplug(self) -> None:
        """Make the link vanish as a pulled cable would (fault injection)."""
        raise UnsupportedOperationError(f"driver {self.name!r} cannot unplug", driver=self.name)

    def hang(self) -> None:
        """Make the board hang for good, as ``microbit.temperature()`` does in QEMU
        (fault injection): it stops answering, Ctrl-C included, until a power cycle."""
        raise UnsupportedOperationError(f"driver {self.name!r} cannot hang", driver=self.name)

    def exhaust_memory(self, *, timeout: float) -> str:
        """Allocate past the board's heap (fault injection); returns the board's error."""
        raise UnsupportedOperationError(
            f"driver {self.name!r} cannot exhaust memory", driver=self.name
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """End of the board's life in this runtime: release every OS resource."""

    # --- the board's watch (idle boards) --------------------------------------------------

    def check(self) -> str | None:
        """Without I/O: why the connected board's link is gone (a closed port, an exited
        process), or None while it looks there.  Called every ``watch_every`` s."""
        return None

    def probe(self, *, timeout: float) -> PendingIO | None:
        """Start one cheap round trip to the connected board, unless its I/O is busy (a
        busy link proves itself); None: no probe now.  A hang fails it with a
        TimedOutError that is not ``resynced``.  Called every ``probe_every`` s."""
        return None

    @abc.abstractmethod
    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        """The peripheral backend for one device of the board."""

    # --- commands and streaming (the seeds' command and acquisition hooks) -----------

    supported_commands: ClassVar[Mapping[str, str]] = {}
    """The commands :meth:`command` runs, name -> description (the seeds' dict)."""

    stream_channels: ClassVar[Mapping[str, str]] = {}
    """Channels the acquisition loop streams, name -> description.  A driver with any
    gets the ``start`` and ``stop`` commands (see :mod:`actorhw.streams`)."""

    @classmethod
    def commands(cls) -> dict[str, str]:
        """Every command of the driver: its own and, if it streams, start and stop."""
        return dict(cls.supported_commands) | (dict(STREAM_COMMANDS) if cls.stream_channels else {})

    def command(self, command: str, args: Mapping[str, Any], *, timeout: float) -> Any:
        """Run one of :attr:`supported_commands` on the board; returns plain data.

        Called from the board's actor with the board CONNECTED (ACTIVE while it runs).
        Raise InvalidArgumentError for bad ``args`` (nothing changes); any other error
        is a failure and moves the board to ERROR.
        """
        raise UnsupportedOperationError(
            f"driver {self.name!r} has no command {command!r}; "
            f"supported: {', '.join(sorted(self.commands())) or 'none'}",
            driver=self.name,
            command=command,
        )

    def setup_acquisition(  # noqa: B027 - optional hook
        self, channels: tuple[str, ...], args: Mapping[str, Any], *, timeout: float
    ) -> None:
        """Prepare the hardware to stream ``channels`` (the ``start`` command's args)."""

    def acquisition_loop(self, stream: StreamWriter) -> None:
        """Publish samples with ``stream.publish`` while ``stream.running``; runs on a
        thread of its own, never in a mailbox.  Raising ends the stream (an ERROR
        notice) and reports the failure to the board."""
        raise UnsupportedOperationError(f"driver {self.name!r} does not stream", driver=self.name)

    def cleanup_acquisition(self) -> None:  # noqa: B027 - optional hook
        """Undo :meth:`setup_acquisition`; called after the loop returned."""
