"""Data streams: a driver's acquisition loop on its own thread, fanned out to subscribers.

A streaming driver declares ``stream_channels`` and implements the seeds' acquisition
hooks (``setup_acquisition``, ``acquisition_loop``, ``cleanup_acquisition``; see
:class:`~actorhw.driver.BoardDriver`).  The board's ``start`` command runs the setup in
the board's actor and the loop on a thread of its own, so a device's control mailbox
never waits for a sample; ``stop`` ends the loop within a deadline and cleans up.

Samples travel as :class:`~actorhw.messages.StreamData` through one
:class:`~actorhw.events.EventBus` per board: each subscriber gets its own bounded
:class:`~actorhw.events.Subscription` with an explicit overflow policy (drop oldest,
drop newest, or block the producer up to a deadline), and its ``dropped`` count shows
what it lost.  Subscribe with ``Runtime.stream(board)``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol

from actorhw.core.errors import ActorHwError, DriverError, InvalidArgumentError, TimedOutError
from actorhw.core.events import EventBus, Overflow, Subscription
from actorhw.core.log import logger
from actorhw.core.messages import StreamAction, StreamData, StreamSource

#: One sample for `StreamWriter.publish_all`: (channel, data, stream_type, timestamp).
Sample = tuple[str, tuple[Any, ...], str, float | None]

#: The commands every streaming driver has, with their descriptions.
STREAM_COMMANDS: Mapping[str, str] = {
    "start": "start streaming: args channels=[...] (default all), interval=seconds",
    "stop": "stop streaming; answers the number of samples published",
}
#: Seconds ``stop`` waits for an acquisition loop to return.
STOP_TIMEOUT = 5.0


class StreamingDriver(Protocol):
    """The part of a BoardDriver that streams (see actorhw.driver)."""

    @property
    def stream_channels(self) -> Mapping[str, str]:
        """The driver's channels, name -> description."""

    def setup_acquisition(
        self, channels: tuple[str, ...], args: Mapping[str, Any], *, timeout: float
    ) -> None:
        """Prepare the hardware for the loop."""

    def acquisition_loop(self, stream: StreamWriter) -> None:
        """Publish samples until ``stream.running`` turns False."""

    def cleanup_acquisition(self) -> None:
        """Undo the setup."""


class StreamHub:
    """The stream buses of one runtime: one :class:`EventBus` of StreamData per board.

    There is one hub per runtime, found from the runtime's event bus with :meth:`of`, so
    no actor of the tree needs it passed in.
    """

    _hubs: ClassVar[weakref.WeakKeyDictionary[EventBus, StreamHub]] = weakref.WeakKeyDictionary()
    _hubs_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._buses: dict[str, EventBus] = {}
        self._lock = threading.Lock()  # guards the bus table only

    @classmethod
    def of(cls, events: EventBus) -> StreamHub:
        """The hub of the runtime whose event bus is ``events``."""
        with cls._hubs_lock:
            hub = cls._hubs.get(events)
            if hub is None:
                hub = cls._hubs[events] = cls()
            return hub

    def bus(self, board: str) -> EventBus:
        """The bus of ``board``'s stream (made on first use)."""
        with self._lock:
            bus = self._buses.get(board)
            if bus is None:
                bus = self._buses[board] = EventBus()
            return bus

    def subscribe(
        self,
        board: str,
        *,
        maxsize: int = 4096,
        overflow: Overflow = Overflow.DROP_OLDEST,
        block_timeout: float = 1.0,
    ) -> Subscription:
        """A bounded queue of ``board``'s StreamData from now on.

        Args:
            board: the board instance's name.
            maxsize: most messages queued; what comes when full follows ``overflow``.
            overflow: DROP_OLDEST, DROP_NEWEST, or BLOCK (the producer waits up to
                ``block_timeout`` s, then the message is dropped); drops are counted
                in the subscription's ``dropped``.
            block_timeout: see ``overflow``.
        """
        if not isinstance(overflow, Overflow):
            raise InvalidArgumentError(
                f"overflow must be an Overflow, not {overflow!r}", argument="overflow"
            )
        if not isinstance(maxsize, int) or maxsize < 1:
            raise InvalidArgumentError(
                f"maxsize must be an int >= 1, not {maxsize!r}", argument="maxsize"
            )
        return self.bus(board).subscribe(
            maxsize=maxsize, overflow=overflow, block_timeout=block_timeout
        )


class StreamWriter:
    """What a driver's acquisition loop publishes through.

    ``running`` turns False when the stream is asked to stop; the loop must then return.
    """

    def __init__(self, *, board: str, bus: EventBus, stop: threading.Event) -> None:
        self.board = board
        self._bus = bus
        self._stop = stop
        self.published = 0
        """Samples published so far in this acquisition."""
        self._channels: dict[str, str] = {}  # channel -> "board.channel"

    @property
    def running(self) -> bool:
        """Whether the loop should go on (the seeds' ``is_acquiring``)."""
        return not self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Pause up to ``seconds``, waking at once on stop; True if asked to stop."""
        return self._stop.wait(seconds) if seconds > 0 else self._stop.is_set()

    def publish(
        self,
        channel: str,
        data: tuple[Any, ...],
        *,
        stream_type: str,
        timestamp: float | None = None,
    ) -> None:
        """Publish one sample of ``channel`` to every subscriber of the board.

        Args:
            channel: the driver's channel name; the message carries ``board.channel``.
            data: the sample, as a tuple of msgpack values.
            stream_type: what the sample is (``sine``, ``accelerometer``...).
            timestamp: when it was taken; now if None.
        """
        self.published += 1
        self._bus.publish(
            StreamData(
                stream_type=stream_type,
                channel=f"{self.board}.{channel}",
                timestamp=time.time() if timestamp is None else timestamp,
                source=StreamSource.DEVICE,
                action=StreamAction.DATA,
                data=data,
                seq=self.published,
            )
        )

    def publish_all(self, samples: Iterable[Sample]) -> None:
        """Publish ``samples`` in order, each as `publish` would, handed to every
        subscriber as one batch: a reader waiting for the stream wakes once for them
        all, not once per sample (a driver that reads its samples in bursts).  Each
        subscriber's overflow policy applies sample by sample, as with `publish`.

        Args:
            samples: ``(channel, data, stream_type, timestamp)`` per sample; see
                `publish` (a timestamp of None is now).
        """
        board, seq, channels = self.board, self.published, self._channels
        events = []
        for channel, data, stream_type, timestamp in samples:
            full = channels.get(channel)
            if full is None:
                full = channels[channel] = f"{board}.{channel}"
            seq += 1
            events.append(
                StreamData(
                    stream_type=stream_type,
                    channel=full,
                    timestamp=time.time() if timestamp is None else timestamp,
                    source=StreamSource.DEVICE,
                    action=StreamAction.DATA,
                    data=data,
                    seq=seq,
                )
            )
        self.published = seq
        self._bus.publish_all(events)

    def notice(self, action: StreamAction, data: tuple[Any, ...]) -> None:
        """Publish a runtime notice (START, STOP, ERROR) on the board's stream."""
        self._bus.publish(
            StreamData(
                stream_type="notice",
                channel=f"{self.board}.*",
                timestamp=time.time(),
                source=StreamSource.SERVER,
                action=action,
                data=data,
                seq=self.published,
            )
        )


class StreamControl:
    """One board's acquisition: the ``start``/``stop`` commands and the loop's thread.

    Called from the board's actor only (one message at a time); the loop runs on its
    own thread, which reports an end it was not asked for through ``on_end``.
    """

    def __init__(
        self,
        *,
        board: str,
        driver: StreamingDriver,
        bus: EventBus,
        on_end: Callable[[ActorHwError | None], None],
    ) -> None:
        self.board = board
        self._driver = driver
        self._bus = bus
        self._on_end = on_end
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._writer: StreamWriter | None = None
        self.channels: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        """Whether an acquisition was started and not yet stopped."""
        return self._thread is not None

    def handles(self, command: str) -> bool:
        """Whether ``command`` is a stream command of this driver."""
        return bool(self._driver.stream_channels) and command in STREAM_COMMANDS

    def run(self, command: str, args: Mapping[str, Any], *, timeout: float) -> Any:
        """Run ``start`` or ``stop``."""
        if command == "start":
            return self.start(args, timeout=timeout)
        return {"published": self.stop(timeout=timeout)}

    def start(self, args: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
        """Set up the acquisition and start its loop; refused if one runs already."""
        if self._thread is not None:
            raise InvalidArgumentError(
                f"{self.board}: a stream of {', '.join(self.channels)} is running; stop it first",
                argument="command",
            )
        channels = self._channels(args)
        self._driver.setup_acquisition(channels, args, timeout=timeout)
        self._stop = threading.Event()
        self._writer = StreamWriter(board=self.board, bus=self._bus, stop=self._stop)
        self.channels = channels
        self._writer.notice(StreamAction.START, channels)
        self._thread = threading.Thread(
            target=self._loop, args=(self._writer,), name=f"acq-{self.board}", daemon=True
        )
        self._thread.start()
        return {"channels": list(channels)}

    def stop(self, *, timeout: float = STOP_TIMEOUT) -> int:
        """Stop the loop (waits up to ``timeout`` s) and clean up; the samples published.

        Safe to call when nothing runs (returns 0).
        """
        thread, writer = self._thread, self._writer
        if thread is None or writer is None:
            return 0
        self._stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout)
        if thread.is_alive():
            raise TimedOutError(
                f"{self.board}: the acquisition loop did not stop within {timeout:.3g} s",
                board=self.board,
                timeout=timeout,
            )
        self._thread = None
        try:
            self._driver.cleanup_acquisition()
        finally:
            writer.notice(StreamAction.STOP, (writer.published,))
        return writer.published

    def _channels(self, args: Mapping[str, Any]) -> tuple[str, ...]:
        known = self._driver.stream_channels
        wanted = args.get("channels")
        if wanted is None:
            return tuple(known)
        if isinstance(wanted, str) or not isinstance(wanted, list | tuple) or not wanted:
            raise InvalidArgumentError(
                f"channels must be a non-empty list of names, not {wanted!r}; "
                f"valid: {', '.join(known)}",
                argument="channels",
            )
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise InvalidArgumentError(
                f"{self.board}: no stream channel {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(known)}",
                argument="channels",
            )
        return tuple(wanted)

    def _loop(self, writer: StreamWriter) -> None:
        error: ActorHwError | None = None
        try:
            self._driver.acquisition_loop(writer)
        except ActorHwError as e:
            error = e
        except Exception as e:  # a plugin bug: report it, never kill the runtime
            error = DriverError(
                f"{self.board}: acquisition loop failed: {e!r}",
                file=type(self._driver).__module__,
                problem=repr(e),
            )
        if error is not None:
            logger.bind(device=self.board).warning("stream stopped: {}", error)
            writer.notice(StreamAction.ERROR, (error.code, error.message))
        if not self._stop.is_set():
            self._on_end(error)
