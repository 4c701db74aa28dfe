"""A scenario as data: frozen attrs classes, built by `actorhw.scenario.loader`.

Nothing here runs code: strings that hold MicroPython (``exec``, ``task``) are sent to a
board as they are; expectations are values compared on the host. Strings may hold
``${name}`` variables, substituted when the step runs.
"""

from __future__ import annotations

from typing import Any

import attrs

#: Marks an expectation field the file did not set (None is a value one may expect).
UNSET: Any = attrs.make_class("Unset", [], repr=False)()


@attrs.frozen
class BytesData:
    """``{ bytes = "text" }`` in a file: bytes, made when the step runs (after ``${}``)."""

    text: str
    """The text, UTF-8 encoded into the bytes."""


@attrs.frozen(kw_only=True)
class BoardUp:
    """Boards to bring up before the steps: ``count`` instances of a definition."""

    definition: str
    """The board definition (``same70-xplained``, ``microbit-qemu``...)."""
    names: tuple[str, ...]
    """The instances' names, as steps refer to them."""
    line: int
    """Where the file declares them."""
    port: str | None = None
    """Where the board is attached (a path, URL, ``serial:...``, ``auto``), for boards
    driven by the ``micropython`` driver; one instance only."""
    options: dict[str, Any] = attrs.field(factory=dict)
    """Instance options over the definition's (``power_hook``, ``baudrate``...)."""
    host: str = ""
    """The cluster host that serves them (their names are then ``host/board``); empty
    for boards brought up by the scenario's own Runtime."""


@attrs.frozen(kw_only=True)
class Expect:
    """What a step must give. Every field set must hold; unset fields are not checked."""

    output: str | None = None
    """The exec's printed output, exactly (surrounding whitespace ignored)."""
    contains: str | None = None
    """A substring of the output (or of the value's text)."""
    value: Any = UNSET
    """The step's value, exactly (a task's result, a command's return)."""
    min: float | None = None
    """The value is a number at least this."""
    max: float | None = None
    """The value is a number at most this."""
    error: tuple[str, ...] = ()
    """The step must fail with this error code, or one of these (``device_or_resource_busy``)."""
    raises: str | None = None
    """The board-side exception name (``MemoryError``); implies device_exception."""
    state: str | None = None
    """The device's (or board's) lifecycle state after the step (``CONNECTED``)."""
    owners_count: int | None = None
    """The device's owners_count after the step."""

    @property
    def wants_error(self) -> bool:
        """Whether the step is expected to fail."""
        return bool(self.error) or self.raises is not None


@attrs.frozen(kw_only=True)
class Step:
    """One step. ``action`` says which; the other fields are its parameters."""

    action: str
    """``acquire``, ``open``, ``close``, ``release``, ``exec``, ``task``, ``command``,
    ``expect``, ``allocate``, ``fault``, ``wait`` or ``parallel``."""
    name: str
    """Shown in progress, the summary and the JUnit report."""
    line: int
    """The line of the step in its file."""
    timeout: float
    """Deadline of the step, in s."""
    target: str = ""
    """The action's main argument: a device (``board.DEVICE``), lease alias, code,
    command name, fault name, state name..."""
    on: str = ""
    """The device or lease alias the step acts on (``exec``, ``command``, ``task``...)."""
    board: str = ""
    """The board instance (``fault``, ``wait``, ``expect`` of a board)."""
    alias: str = ""
    """``acquire``'s name for the lease (``as = "uart"``)."""
    owner: str = ""
    """``acquire``'s owner name (default: the scenario's)."""
    args: tuple[Any, ...] = ()
    """``command`` and ``task`` arguments, as data."""
    define: str = ""
    """``task``: MicroPython that defines the function before the call."""
    save: str = ""
    """Store the step's value in this variable."""
    expect: Expect | None = None
    """What the step must give."""
    options: tuple[tuple[str, Any], ...] = ()
    """Further parameters of ``allocate`` (bytes, ...), as (key, value) pairs."""
    targets: tuple[str, ...] = ()
    """``parallel``: the values of ``var``, one run of ``steps`` each."""
    var: str = "board"
    """``parallel``: the variable bound to each target."""
    limit: int = 0
    """``parallel``: the most targets at once (0: all)."""
    restarts: int = 0
    """``wait`` on a board: also until it has recovered at least this many times."""
    steps: tuple[Step, ...] = ()
    """``parallel``: the steps each target runs."""


@attrs.frozen(kw_only=True)
class Scenario:
    """A scenario file, validated."""

    name: str
    """Its name (default: the file's stem)."""
    description: str
    """What it shows."""
    file: str
    """The file it came from."""
    boards: tuple[BoardUp, ...]
    """Boards to bring up first."""
    variables: tuple[tuple[str, Any], ...]
    """``[vars]``, in file order."""
    steps: tuple[Step, ...]
    """What to do, in order."""
    bringup_timeout: float
    """Deadline of bringing the boards up, in s."""
    owner: str
    """The default owner name of its leases."""

    @property
    def step_count(self) -> int:
        """How many steps run, each step of a parallel group once per target."""
        return sum(len(s.targets) * len(s.steps) if s.steps else 1 for s in self.steps)

    @property
    def board_names(self) -> tuple[str, ...]:
        """Every board instance, in order."""
        return tuple(n for b in self.boards for n in b.names)
