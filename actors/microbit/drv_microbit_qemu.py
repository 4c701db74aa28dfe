"""The BBC micro:bit MicroPython firmware in QEMU, attached as a real board.

Power on boots ``qemu-system-arm -M microbit`` with the firmware; the board's pty is
held open by one raw-REPL link for the board's whole life in this runtime.  Every
exchange with the board runs on the board's single I/O thread, so a device's mailbox
never waits on the wire: peripherals hand back a PendingIO.  Power off ends the QEMU
process (an unplug); power cycle boots a fresh one (a replug).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from actorhw.core.errors import (
    ActorHwError,
    InvalidArgumentError,
    LinkLostError,
    ResultParseError,
)
from actorhw.core.ids import DeviceKind
from actorhw.core.log import logger
from actorhw.drivers import mpy_resources
from actorhw.drivers.board_driver import BoardDriver, PendingIO, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.io_lane import IOLane, op_timeout
from actorhw.drivers.mpy_peripherals import (
    MicrobitAccelerometer,
    MicrobitButton,
    MicrobitDisplay,
    literal,
)
from actorhw.drivers.streams import Sample, StreamWriter
from actorhw.links.qemu import QemuMicrobit
from actorhw.links.raw_repl import RawReplLink

T = TypeVar("T")

#: Deadline of one peripheral operation on the board (pins, buttons, display).
OP_TIMEOUT = 2.0
#: Deadline of an interrupt when nothing runs (Ctrl-C, then the raw prompt back).
INTERRUPT_TIMEOUT = 0.5
#: How long the link waits for the raw prompt after a Ctrl-C that ends a late task: the
#: firmware answers in milliseconds unless hung, and a hung board waits for recovery.
RESYNC_TIMEOUT = 0.15
#: Deadline for the firmware to answer after power-on.
BOOT_TIMEOUT = 10.0


class MicrobitQemuBoard(BoardDriver):
    """One micro:bit in QEMU: its power (the process), its link, its I/O thread."""

    #: Its MicroPython API family: the shared microbit peripherals act through it.
    api = "microbit"

    name = "microbit-qemu"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.power = QemuMicrobit(name=self.board, **_qemu_options(self.options))
        self.link: RawReplLink | None = None
        self._io: IOLane | None = None
        self._log = logger.bind(device=self.board)

    # --- lifecycle hooks -------------------------------------------------------------

    def initialize(self, *, timeout: float) -> None:
        """Power on: boot QEMU (a fresh process if the last one died)."""
        if not self.power.alive:
            self.power.power_on(timeout=timeout)

    def connect(self, *, timeout: float) -> None:
        """Open the one link on the board's pty and enter the raw REPL."""
        self.disconnect()
        self.link = self.power.open_link(
            timeout=min(timeout, BOOT_TIMEOUT), resync_timeout=RESYNC_TIMEOUT
        )
        self._io = IOLane(self.board)
        self.submit(lambda link: link.exec_checked("import microbit", timeout=OP_TIMEOUT)).wait(
            timeout=timeout
        )

    def disconnect(self) -> None:
        """Close the link and end the I/O thread; the QEMU process stays as it is."""
        io, self._io = self._io, None
        link, self.link = self.link, None
        if link is not None:
            link.close()  # wakes a read in progress: it ends with LinkLostError
        if io is not None:
            io.shutdown(wait=True)

    def reset(self, *, timeout: float) -> None:
        """Soft-reset the firmware (Ctrl-D) and reconnect: fresh globals, same process."""
        deadline = time.monotonic() + timeout
        if self.link is None or self._io is None:
            self.connect(timeout=timeout)
        left = max(0.0, deadline - time.monotonic())
        self.submit(lambda link: link.soft_reset(timeout=left), what="soft reset").wait(
            timeout=left + 1
        )
        self.submit(
            lambda link: link.exec_checked("import microbit", timeout=OP_TIMEOUT), what="import"
        ).wait(timeout=OP_TIMEOUT)

    def power_cycle(self, *, timeout: float) -> None:
        """Kill QEMU and boot a new one (a replug); reconnect with :meth:`connect`."""
        self.disconnect()
        self.power.power_cycle(timeout=timeout)

    def unplug(self) -> None:
        """Kill QEMU, as pulling the cable would. Reads in progress see link_lost."""
        self.power.power_off()

    def hang(self) -> None:
        """Call ``microbit.temperature()``: the firmware in QEMU hangs for good.

        Sent on the I/O thread without waiting: the next operation finds the board
        silent (timed_out, not resynced) and the board's supervisor recovers it.
        """
        self.submit(
            lambda link: link.exec("import microbit\nmicrobit.temperature()", timeout=0.2),
            what="hang",
        )

    def exhaust_memory(self, *, timeout: float) -> str:
        """Allocate past the heap; returns the MemoryError line the board printed."""
        result = self.submit(
            lambda link: link.exec(
                "import gc\ngc.collect()\nbytearray(gc.mem_free() + 1024)", timeout=timeout
            ),
            what="exhaust_memory",
        ).wait(timeout=timeout + 1)
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "no error: the allocation succeeded"

    def close(self) -> None:
        self.disconnect()
        self.power.power_off()

    # --- the board's watch -------------------------------------------------------------

    def check(self) -> str | None:
        """The QEMU process exited (killed, crashed: the pty closed), or the link died."""
        link = self.link
        if link is None:
            return None
        if not self.power.alive:
            return f"{self.board}: QEMU exited, its port closed (unplugged)"
        if link.lost:
            return f"{self.board}: the link was lost"
        return None

    def probe(self, *, timeout: float) -> PendingIO | None:
        """A ``pass`` exec (about 2 ms on the board) when the I/O thread is idle."""
        io = self._io
        if io is None or io.busy or self.link is None:
            return None
        return self.submit(lambda link: link.exec_checked("pass", timeout=timeout), what="probe")

    # --- I/O ---------------------------------------------------------------------------

    def submit(self, work: Callable[[RawReplLink], T], *, what: str = "exec") -> PendingIO:
        """Run ``work(link)`` on the board's I/O lane (its thread, or an idle caller's
        turn: see :mod:`actorhw.drivers.io_lane`); the caller waits on the result."""
        io, link = self._io, self.link
        if io is None or link is None:
            raise LinkLostError(f"{self.board} is not connected", device=self.board)
        return io.submit(work, link, what=f"{self.board}: {what}")

    def query(self, expression: str, *, what: str) -> PendingIO:
        """Evaluate a MicroPython expression; its repr comes back as a Python literal."""
        timeout = op_timeout(OP_TIMEOUT)
        return self.submit(
            lambda link: literal(
                link.exec_checked(f"print(repr({expression}))", timeout=timeout), what
            ),
            what=what,
        )

    def run(self, statement: str, *, what: str) -> PendingIO:
        """Run a MicroPython statement for its effect."""
        timeout = op_timeout(OP_TIMEOUT)
        return self.submit(
            lambda link: (link.exec_checked(statement, timeout=timeout), None)[1], what=what
        )

    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        return _KINDS[spec.kind](spec, self)

    # --- streaming: accelerometer and pins sampled by the firmware --------------------

    stream_channels: ClassVar[Mapping[str, str]] = {
        "accelerometer": "(x, y, z) in milli-g from microbit.accelerometer",
        "pin0": "pin0.read_analog(), 0..1023",
        "pin1": "pin1.read_analog(), 0..1023",
        "pin2": "pin2.read_analog(), 0..1023",
    }

    def setup_acquisition(
        self, channels: tuple[str, ...], args: Mapping[str, Any], *, timeout: float
    ) -> None:
        """Define the sampler on the board: one short call per sample afterwards.

        The definition is longer than the firmware's 64-byte receive ring, so the link
        sends it verified; the call itself (``_ahs()``) fits the ring many times over.
        """
        interval = args.get("interval", 0.0)
        if not isinstance(interval, int | float) or isinstance(interval, bool) or interval < 0:
            raise InvalidArgumentError(
                f"interval must be a number >= 0, not {interval!r}", argument="interval"
            )
        reads = [
            "a[0],a[1],a[2]" if c == "accelerometer" else f"microbit.{c}.read_analog()"
            for c in channels
        ]
        code = (
            f"def {_SAMPLER}():\n"
            + (" a=microbit.accelerometer.get_values()\n" if "accelerometer" in channels else "")
            + f" print({','.join(reads)})"
        )
        self.run(code, what="stream setup").wait(timeout=timeout)
        self._acq = (channels, float(interval))

    def acquisition_loop(self, stream: StreamWriter) -> None:
        """One exec per sample, run in bursts of up to BURST_S on the board's I/O thread:
        device operations queued there interleave between bursts, and the thread hop
        is paid once a burst, not once a sample.  Samples are published from here, one
        batch per burst.  At full speed each burst queues the next one on the I/O
        thread as it ends (behind any work already waiting there), so the board goes
        on sampling while a burst is handed here and published."""
        channels, interval = self._acq
        call = f"{_SAMPLER}()"
        deadline = OP_TIMEOUT + BURST_S + 1

        def burst(link: RawReplLink) -> tuple[list[tuple[float, str]], PendingIO | None]:
            end = time.monotonic() + BURST_S
            taken: list[tuple[float, str]] = []
            while stream.running:
                taken.append((time.time(), link.exec_checked(call, timeout=OP_TIMEOUT)))
                if interval or time.monotonic() >= end:
                    break
            following = None
            if stream.running and not interval:
                with contextlib.suppress(LinkLostError):  # the loop's own submit says so
                    following = self.submit(burst, what="sample")
            return taken, following

        pending = self.submit(burst, what="sample") if stream.running else None
        while pending is not None:
            taken, pending = pending.wait(timeout=deadline)
            stream.publish_all(self._samples(channels, taken))
            if pending is None and stream.running and not stream.wait(interval):
                pending = self.submit(burst, what="sample")

    def _samples(self, channels: tuple[str, ...], taken: list[tuple[float, str]]) -> list[Sample]:
        """The samples of a burst's printed lines, channel by channel in order."""
        samples: list[Sample] = []
        for now, text in taken:
            try:
                values = [int(v) for v in text.split()]
            except ValueError:
                raise ResultParseError(
                    f"{self.board}: the sampler printed {text[:80]!r}", text=text[:200]
                ) from None
            i = 0
            for channel in channels:
                if channel == "accelerometer":
                    samples.append((channel, tuple(values[i : i + 3]), channel, now))
                    i += 3
                else:
                    samples.append((channel, (values[i],), "analog", now))
                    i += 1
        return samples

    def cleanup_acquisition(self) -> None:
        """Forget the sampler on the board (best effort: the link may be gone)."""
        with contextlib.suppress(ActorHwError):
            self.run(f"del {_SAMPLER}", what="stream cleanup").wait(timeout=OP_TIMEOUT)


#: The name of the sampler function that setup_acquisition defines on the board.
_SAMPLER = "_ahs"
#: Longest run of samples taken on the I/O thread before other work gets a turn.
BURST_S = 0.005


def _qemu_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in ("firmware", "qemu") if k in options}


class MicrobitPeripheral(Peripheral):
    # Every operation is a submit to the board's I/O thread (or a refusal of bad
    # arguments): a caller's thread may perform it (Peripheral.callers_may_perform).
    callers_may_perform = True

    def __init__(self, spec: DeviceSpec, board: MicrobitQemuBoard) -> None:
        super().__init__(spec)
        self.board = board


class MicrobitBoardDevice(MicrobitPeripheral):
    """The board itself: run code, return what it printed."""

    def exec(self, code: str, timeout: float) -> PendingIO:
        if not isinstance(code, str):
            raise InvalidArgumentError("code must be a str", argument="code")
        return self.board.submit(lambda link: link.exec_checked(code, timeout=timeout))

    def resources(self) -> PendingIO:
        """Heap, storage and uptime from the firmware, in one exec on the I/O thread.

        Capabilities are probed, and the sampler function defined on the board, once
        per connection (a new link does both again; mpy_resources.Sampler); a sample
        then sends a call of a few bytes, not the whole sampling code.
        """
        return self.board.submit(
            lambda link: self._sampler.read(link, timeout=OP_TIMEOUT), what="resources"
        )

    def interrupt(self) -> bool:
        """Ctrl-C to the code running now; from the device's mailbox, not the I/O thread."""
        link = self.board.link
        if link is None:
            return False
        link.interrupt(timeout=INTERRUPT_TIMEOUT)
        return True

    def __init__(self, spec: DeviceSpec, board: MicrobitQemuBoard) -> None:
        super().__init__(spec, board)
        collect = bool(spec.options.get("collect_garbage", False))
        self._sampler = mpy_resources.Sampler(collect=collect)


class MicrobitPin(MicrobitPeripheral):
    """pin0..pin20 as digital I/O."""

    @property
    def _pin(self) -> str:
        return f"microbit.pin{int(self.spec.options.get('pin', self.spec.name[3:]))}"

    def read(self) -> PendingIO:
        return self.board.query(f"{self._pin}.read_digital()", what=f"{self.spec.name}.read")

    def write(self, level: bool) -> PendingIO:
        if not isinstance(level, bool):
            raise InvalidArgumentError("level must be a bool", argument="level")
        return self.board.run(f"{self._pin}.write_digital({int(level)})", what="write")

    def reset(self) -> None:
        # Back to input for the next owner; fire and forget, never block the mailbox.
        if self.board.link is not None:
            with contextlib.suppress(LinkLostError):
                self.board.run(f"{self._pin}.read_digital()", what="reset")


_KINDS: dict[DeviceKind, Callable[[DeviceSpec, MicrobitQemuBoard], Peripheral]] = {
    DeviceKind.BOARD: MicrobitBoardDevice,
    DeviceKind.GPIO: MicrobitPin,
    DeviceKind.BUTTON: MicrobitButton,
    DeviceKind.DISPLAY: MicrobitDisplay,
    DeviceKind.ACCELEROMETER: MicrobitAccelerometer,
}
