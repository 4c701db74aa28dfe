"""RuntimeBoards: a Runtime's calls about boards: ids, status, faults and crashes injected,
waits, connect scripts, operator resets, attaching, streams. Part of `Runtime`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from actorhw.api.runtime_routes import RuntimeRoutes, quarantined
from actorhw.core.errors import (
    ActorDeadError,
    DeviceUnavailableError,
    InvalidArgumentError,
    NoSuchDeviceError,
    TimedOutError,
)
from actorhw.core.events import Overflow, Subscription
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import (
    BoardStatus,
    ConnectScript,
    Crash,
    GetBoardStatus,
    InjectFault,
    ResetBoard,
    ReviveBoard,
    StartBoard,
)
from actorhw.drivers.streams import StreamHub
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ask


class RuntimeBoards(RuntimeRoutes):
    """The Runtime's calls about boards (a part of `Runtime`)."""

    def ids(self, board: str) -> type[DeviceId]:
        """The id enum of the running board instance ``board``."""
        return self.catalog.get(self.board_status(board).definition).ids(board)

    def device_id(self, key: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceId:
        """The id of ``"<board>.<NAME>"``, as `DeviceId.key` prints it.

        Raises:
            InvalidArgumentError: ``key`` is not ``"<board>.<NAME>"``.
            NoSuchBoardError: no running board of that name.
            NoSuchDeviceError: the board has no such device (lists its ids).
        """
        if not isinstance(key, str) or "." not in key:
            raise InvalidArgumentError(
                f"a device key is '<board>.<NAME>', not {key!r}", argument="device"
            )
        board, _, name = key.rpartition(".")
        status = self.board_status(board, timeout=timeout)
        ids = self.catalog.get(status.definition).ids(board)
        member = ids.__members__.get(name)
        if member is None:
            raise NoSuchDeviceError(
                f"{board} has no device {name!r}", device=key, valid_ids=list(ids.__members__)
            )
        return member

    def boards(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> list[BoardStatus]:
        """The status of every running board."""
        return [self.board_status(name, timeout=timeout) for name in self._boards]

    def board_status(self, board: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> BoardStatus:
        """The status of one running board, at once: also while its driver works (a
        command, a recovery step), whose board then says ACTIVE or where it is."""
        self._sup()  # a stopped runtime says so
        self._known(board)
        status = self._statuses.get(board)
        if status is None:  # its actor has not posted one yet
            status = ask(self._board_ref(board), GetBoardStatus(), timeout=timeout)
        return status

    def inject_fault(
        self,
        board: str,
        fault: str,
        *,
        owner: str | None = None,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> str | None:
        """Make ``board`` fail as hardware does; for tests, drills and scenarios.

        ``fault`` is ``unplug`` (the link vanishes), ``hang`` (the firmware stops
        answering until a power cycle), ``power_cycle`` (the board restarts and loses
        its state) or ``memory_error`` (code on the board allocates past its heap;
        returns the MemoryError line the board printed). ``owner`` says who injects it
        (a cluster refuses a fault while another owner holds the board; here, in one
        process, it is not checked).
        """
        result: str | None = ask(self._board_ref(board), InjectFault(fault=fault), timeout=timeout)
        return result

    def inject_crash(
        self, target: str | DeviceId, *, reason: str = "injected", timeout: float = 1.0
    ) -> None:
        """Crash an actor as a bug would (fault injection): the board ``target`` names,
        the device actor of a device id, or ``"registry"``. Its supervisor restarts it."""
        if isinstance(target, DeviceId):
            ref = self._route(target, timeout=timeout)[1]
        elif target == "registry":
            ref = self._registry_ref()
        else:
            ref = self._board_ref(target)
        ref.tell(Crash(reason=reason))

    def wait_for_board(
        self, board: str, state: DeviceState, *, timeout: float, restarts: int = 0
    ) -> BoardStatus:
        """Wait until ``board`` is in ``state`` (having recovered at least ``restarts``
        times); its status then.

        Raises:
            TimedOutError: not there within ``timeout`` s (says where it is).
        """
        deadline = time.monotonic() + timeout

        def there(s: BoardStatus) -> bool:
            return s.state is state and s.restarts >= restarts

        # One round trip through the board's mailbox first: what was sent to it before
        # (a device's fault report, say) counts; then its posted status, at once.
        with contextlib.suppress(TimedOutError, ActorDeadError):
            synced = ask(self._board_ref(board), GetBoardStatus(), timeout=timeout)
            if there(synced):
                return synced
        left = max(0.0, deadline - time.monotonic())
        found = self._statuses.wait_for(board, there, timeout=left)
        if found is not None:
            return found
        status = self._statuses.get(board)
        wanted = f"{state.name} with {restarts}+ restarts" if restarts else state.name
        where = (
            "starting"
            if status is None
            else f"{status.state.name} after {status.restarts} restarts: {status.reason}"
        )
        raise TimedOutError(
            f"board {board} not {wanted} within {timeout:g} s; it is {where}",
            board=board,
            timeout=timeout,
        )

    def set_connect_script(
        self,
        board: str,
        key: str,
        codes: Sequence[str],
        *,
        timeout: float,
        ask_timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> None:
        """Have ``board`` run ``codes`` after every (re)connect, before it is CONNECTED.

        Belay-style device classes register their definitions and setups this way.
        Empty ``codes`` removes the script of ``key``.
        """
        message = ConnectScript(key=key, codes=tuple(codes), timeout=timeout)
        ask(self._board_ref(board), message, timeout=ask_timeout)

    def reset_board(self, board: str, *, timeout: float = 30.0) -> BoardStatus:
        """An operator's reset: forget restart history and retry a quarantined board (or
        its quarantined devices); also a board whose actor the supervisor quarantined."""
        try:
            ref = self._board_ref(board)
        except DeviceUnavailableError as e:
            if not quarantined(e):
                raise
            urn = ask(self._sup(), ReviveBoard(board=board), timeout=DEFAULT_ASK_TIMEOUT)
            ref = self._boards[board] = self._by_urn(urn)
        return ask(ref, ResetBoard(timeout=timeout), timeout=timeout + 1)

    def attach_board(self, definition: str, *, name: str | None = None) -> str:
        """Start a board's actor without bringing it up (it stays UNKNOWN, for the
        manager's scan); returns the instance's name."""
        name = name or definition
        if name not in self._boards:
            urn = ask(
                self._sup(),
                StartBoard(board=name, definition=definition),
                timeout=DEFAULT_ASK_TIMEOUT,
            )
            self._boards[name] = self._by_urn(urn)
        return name

    def stream(
        self,
        board: str,
        *,
        maxsize: int = 4096,
        overflow: Overflow = Overflow.DROP_OLDEST,
        block_timeout: float = 1.0,
    ) -> Subscription:
        """A bounded queue of ``board``'s StreamData from now on (see actorhw.streams);
        start the stream with the board's ``start`` command."""
        self._board_ref(board)
        return StreamHub.of(self.events).subscribe(
            board, maxsize=maxsize, overflow=overflow, block_timeout=block_timeout
        )
