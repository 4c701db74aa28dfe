"""Device programming without a board: source extraction, literals, results, metadata,
ordering, and the device's call flow against a fake board that runs the code in CPython.

The fake is a tiny object with ``exec(code, *, timeout)``, ``open``, ``release`` and
``info`` (the part of a leased Board that actorhw.programming uses); its "RAM" is one
globals dict, so setups, tasks and teardowns are observed on the fake board itself.
"""

from __future__ import annotations

import ast
import builtins
import concurrent.futures
import contextlib
import io
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorhw.api.limiter import OperationLimiter
from actorhw.core.errors import (
    AlreadyOpenedError,
    DeviceExceptionError,
    DeviceResetError,
    InvalidArgumentError,
    NotOpenedError,
    ResultParseError,
    StaleLeaseError,
    TimedOutError,
)
from actorhw.core.events import EventBus
from actorhw.core.ids import DeviceId
from actorhw.core.messages import Admit
from actorhw.programming import (
    Background,
    MicroPythonDevice,
    Setup,
    Task,
    Teardown,
    background,
    body_source,
    function_source,
    literal,
    parse_result,
    setup,
    task,
    teardown,
)
from actorhw.programming.wire import INTERN_MAX, board_value
from actorhw.programming.wire import chunks as _chunks
from actorhw.programming.wire import records as _records
from actorhw.tree.asks import ActorRef, ask
from actorhw.tree.limiter import OperationLimiterActor, Ticket, next_op_id

pytestmark = pytest.mark.timeout(20)

WAIT = 10.0


# --- a fake board: runs the code in CPython, one globals dict as its RAM -----------------


def _print_exception(e: BaseException) -> None:
    print(f'Traceback (most recent call last):\n  File "<stdin>"\n{type(e).__name__}: {e}')


_FAKE_SYS = types.SimpleNamespace(print_exception=_print_exception)


def _fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
    if name == "sys":
        return _FAKE_SYS
    return builtins.__import__(name, *args, **kwargs)


class FakeBoard:
    """Just enough of a leased Board: exec (in CPython), open, release, info.

    With a ``limiter`` (the runtime's operation limiter actor) every exec first waits
    for its turn there, ``exclusive`` as the device asked: the turn a leased Board's
    exec takes through ``Runtime.use``.
    """

    def __init__(self) -> None:
        self.generation = 0
        self.opened_generation = 0
        self.released = False
        self.codes: list[str] = []
        self.timeouts: list[float] = []
        self.lock = threading.Lock()
        self.count_lock = threading.Lock()
        self.gate: Any = None  # called with the code before it runs, from the caller's thread
        self.inflight = self.max_inflight = 0
        self.ram: dict[str, Any] = {}
        self.limiter: ActorRef[Any] | None = None
        self.device: DeviceId | None = None
        self.turns = threading.Condition()
        self.waited = 0  # execs that had to wait for their turn at the limiter
        self.wipe()

    def wipe(self) -> None:
        """Lose every board global, as a soft reboot does."""
        self.ram = {"__builtins__": {**vars(builtins), "__import__": _fake_import}}

    def reset(self) -> None:
        """A reset the runtime noticed: the generation grows, the lease must reopen."""
        self.generation += 1
        self.wipe()

    def info(self) -> FakeBoard:
        return self

    def open(self) -> FakeBoard:
        if self.opened_generation == self.generation:
            raise AlreadyOpenedError("already open", device="fake")
        self.opened_generation = self.generation
        return self

    def release(self) -> int:
        self.released = True
        return 0

    def exec(self, code: str, *, timeout: float = 10.0, exclusive: bool = False) -> str:
        with self._turn(exclusive=exclusive, timeout=timeout):
            if self.gate is not None:
                self.gate(code)
            with self.count_lock:
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                return self._exec(code, timeout)
            finally:
                with self.count_lock:
                    self.inflight -= 1

    @contextlib.contextmanager
    def _turn(self, *, exclusive: bool, timeout: float) -> Iterator[None]:
        """Wait for the limiter to admit this exec (no limiter: at once)."""
        if self.limiter is None or self.device is None:
            yield
            return
        admit = Admit(op_id=next_op_id(), device=self.device, what="exec", exclusive=exclusive)
        ticket: Ticket = ask(self.limiter, admit, timeout=WAIT)
        try:
            if not ticket.admitted.done():
                with self.turns:
                    self.waited += 1
                    self.turns.notify_all()
            try:
                ticket.admitted.result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                raise TimedOutError(f"not admitted within {timeout} s", timeout=timeout) from None
            yield
        finally:
            OperationLimiter(self.limiter).finish(ticket)

    def wait_until_waiting(self, count: int, *, timeout: float) -> bool:
        """Block until ``count`` execs had to wait for their turn; False on timeout."""
        with self.turns:
            return self.turns.wait_for(lambda: self.waited >= count, timeout=timeout)

    def _exec(self, code: str, timeout: float) -> str:
        with self.lock:
            if self.released:
                raise StaleLeaseError("released", device="fake")
            if self.opened_generation != self.generation:
                raise DeviceResetError("reset, open again", device="fake")
            self.codes.append(code)
            self.timeouts.append(timeout)
            if "repr(spin()" in code or "_ahw_c(spin)" in code:  # "while True: pass"
                raise TimedOutError(f"no answer within {timeout} s", timeout=timeout)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    exec(code, self.ram)
                except Exception as e:
                    tb = f'Traceback (most recent call last):\n  File "<stdin>"\n{e!r}'
                    raise DeviceExceptionError(
                        f"{type(e).__name__}: {e}", exc_name=type(e).__name__, traceback_text=tb
                    ) from None
            return out.getvalue()

    def sent(self, fragment: str) -> int:
        """How many execs contained ``fragment``."""
        return sum(fragment in c for c in self.codes)


class FakeRuntime:
    """The runtime's stop hook as actorhw.programming expects it: on_stop(callback)."""

    def __init__(self) -> None:
        self.running = True
        self.callbacks: list[Any] = []

    def on_stop(self, callback: Any) -> Any:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def stop(self) -> None:
        for callback in reversed(list(self.callbacks)):
            callback()
        self.running = False


# --- device classes used below (bodies are "MicroPython": they run on the fake) ----------


class Counter(MicroPythonDevice):
    @setup(priority=2)
    def second(self):
        order.append("second")  # a board global, made by first()

    @setup(priority=1)
    def first(self):
        """Runs first: lower priority number first."""
        global order, calls  # board globals; the statement itself is not sent
        order = ["first"]
        calls = 0

    @task(cache_ms=60_000)
    def cached(self, step: int = 1) -> int:
        """Host-side docs: not sent."""
        global calls
        calls += step
        return calls

    @task
    def plain(self, a, *rest, scale=1):
        return [a * scale, list(rest)]

    @task
    def boom(self, x: int) -> float:
        return 1 / x

    @task
    def not_literal(self):
        return object()

    @task
    def chatty(self) -> str:
        print("hello from the board")
        return "done"

    @task(
        exclusive=True,
        timeout_ms=250,
    )
    def spin(self) -> None:
        while True:
            pass

    @teardown
    def bye(self):
        order.append("bye")


# --- source extraction -----------------------------------------------------------------


def test_function_source_strips_decorators_self_annotations_and_docstring() -> None:
    def collect(self, samples: int, interval_ms: int = 10) -> list:  # type: ignore[type-arg]
        """Host-side documentation."""
        out = []
        for i in range(samples):
            out.append(i * interval_ms)
        return out

    assert function_source(collect) == (
        "def collect(samples, interval_ms=10):\n"
        "    out = []\n"
        "    for i in range(samples):\n"
        "        out.append(i * interval_ms)\n"
        "    return out"
    )


def test_function_source_with_a_multiline_decorator() -> None:
    spec = Counter.__dict__["spin"]
    assert isinstance(spec, Task)
    assert spec.source == "def spin():\n    while True:\n        pass"
    assert "@" not in Counter.__dict__["cached"].source
    assert "Host-side docs" not in Counter.__dict__["cached"].source


def test_function_source_keeps_varargs_and_keyword_defaults() -> None:
    assert Counter.__dict__["plain"].source.splitlines()[0] == "def plain(a, *rest, scale=1):"


def test_body_source_runs_at_global_scope_without_global_statements() -> None:
    spec = Counter.__dict__["first"]
    assert isinstance(spec, Setup)
    assert spec.source == "order = ['first']\ncalls = 0"


def test_body_of_only_a_docstring_is_pass() -> None:
    def nothing(self) -> None:
        """Nothing to do."""

    assert body_source(nothing) == "pass"


def test_setup_with_return_is_refused() -> None:
    def early(self) -> None:
        x = 1
        if x:
            return

    with pytest.raises(InvalidArgumentError, match="global scope"):
        body_source(early)


def test_setup_return_inside_a_nested_def_is_fine() -> None:
    def helper_maker(self) -> None:
        def helper():
            return 1

    assert body_source(helper_maker).startswith("def helper():")


def test_setup_with_parameters_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="only self"):

        @setup
        def init(self, x):  # type: ignore[no-untyped-def]
            pass


def test_a_task_needs_self() -> None:
    with pytest.raises(InvalidArgumentError, match="self"):

        @task
        def lonely():  # type: ignore[no-untyped-def]
            return 1


def test_a_task_without_source_is_refused() -> None:
    namespace: dict[str, Any] = {}
    exec("def made(self):\n    return 1\n", namespace)
    with pytest.raises(InvalidArgumentError, match="no source"):
        task(namespace["made"])


def test_lambdas_and_builtins_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        task(len)  # type: ignore[arg-type]


# --- decorator metadata and ordering ---------------------------------------------------------


def test_task_metadata() -> None:
    cached, spin, plain = (Counter.__dict__[n] for n in ("cached", "spin", "plain"))
    assert (cached.cache_ms, cached.exclusive, cached.timeout_ms) == (60_000, False, None)
    assert (spin.cache_ms, spin.exclusive, spin.timeout_ms) == (0, True, 250)
    assert (plain.cache_ms, plain.exclusive, plain.timeout_ms) == (0, False, None)
    assert Counter.cached is cached  # on the class: the descriptor
    assert cached.__doc__ == "Host-side docs: not sent."


@pytest.mark.parametrize(
    "kwargs",
    [{"cache_ms": -1}, {"timeout_ms": 0}, {"timeout_ms": 1.5}, {"exclusive": "yes"}],
)
def test_bad_task_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):

        @task(**kwargs)
        def t(self):  # type: ignore[no-untyped-def]
            return 1


def test_reserved_task_names_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="reserved"):

        @task
        def _ahw_c(self):  # type: ignore[no-untyped-def]
            return 1


def test_background_metadata() -> None:
    @background(interval_ms=250)
    def watch(self: Any) -> None:
        pass

    assert isinstance(watch, Background)
    assert watch.interval_ms == 250
    with pytest.raises(InvalidArgumentError):
        background(interval_ms=0)


def test_setups_run_by_ascending_priority_then_definition_order() -> None:
    class Ordered(MicroPythonDevice):
        @setup(priority=5)
        def c(self):
            pass

        @setup
        def a(self):
            pass

        @setup(priority=5)
        def d(self):
            pass

        @setup(priority=-1)
        def b(self):
            pass

        @teardown(priority=2)
        def z(self):
            pass

        @teardown
        def y(self):
            pass

    assert [s.name for s in Ordered._setups] == ["b", "a", "c", "d"]
    assert [t.name for t in Ordered._teardowns] == ["y", "z"]
    assert all(isinstance(t, Teardown) for t in Ordered._teardowns)


def test_subclasses_inherit_and_override() -> None:
    class Child(Counter):
        @task
        def cached(self, step: int = 1) -> int:
            return -step

        def boom(self, x: int) -> float:  # a plain method hides the task
            return 0.0

    assert set(Child._tasks) == set(Counter._tasks) - {"boom"}
    assert Child._tasks["cached"].source.endswith("return -step")
    assert [s.name for s in Child._setups] == ["first", "second"]


# --- literals across the wire -----------------------------------------------------------------


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=14)
    | st.binary(max_size=14)
)
_literal_values = st.recursive(
    _scalars | st.sets(st.integers() | st.text(max_size=12), max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=12) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


def _interned_size(node: ast.AST) -> int | None:
    """The byte length of a str/bytes constant (what the firmware would intern), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        value = node.value
        return len(value.encode() if isinstance(value, str) else value)
    return None


@settings(deadline=None)  # a loaded machine is slow, not wrong
@given(_literal_values)
def test_board_values_read_back_equal_and_hold_no_internable_literal(value: Any) -> None:
    source = board_value(value)
    back = eval(source, {"__builtins__": {"set": set}})
    assert back == value and type(back) is type(value)
    sizes = [_interned_size(n) for n in ast.walk(ast.parse(source, mode="eval"))]
    assert all(size > INTERN_MAX for size in sizes if size is not None), source


def test_short_strings_are_sent_padded_and_sliced() -> None:
    assert board_value("ab") == "'ab         '[:2]"
    assert board_value(b"ab") == "b'ab         '[:2]"
    assert board_value("x" * 11) == repr("x" * 11)
    spec = Counter.__dict__["plain"]
    assert spec.call_source("on", scale="v") == "plain('on         '[:2],scale='v          '[:1])"


@pytest.mark.parametrize(
    "value",
    [0, -3, 2**70, 1.5, -0.0, "tü\n", b"\x00\x04", True, None, [1, (2, {"a": {3}})], ()],
)
def test_literals_are_accepted(value: Any) -> None:
    assert literal(value) == repr(value)


@pytest.mark.parametrize(
    "value",
    [object(), float("nan"), float("inf"), bytearray(b"x"), range(3), {frozenset({1})}, len],
)
def test_non_literals_are_refused(value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="not a Python literal"):
        literal(value, name="x")


def test_call_arguments_are_checked_against_the_signature() -> None:
    spec = Counter.__dict__["plain"]
    assert spec.call_source(1, 2, 3, scale=2) == "plain(1,2,3,scale=2)"
    assert Counter.__dict__["chatty"].call_source() == "chatty()"
    with pytest.raises(InvalidArgumentError, match="missing"):
        spec.call_source()
    with pytest.raises(InvalidArgumentError, match="unexpected"):
        spec.call_source(1, nope=2)
    with pytest.raises(InvalidArgumentError, match="rest"):
        spec.call_source(1, object())


# --- results ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("{'n': 1, 'l': [1.5, None]}\n", {"n": 1, "l": [1.5, None]}), ("{2, 1}", {1, 2})],
)
def test_results_parse(text: str, value: Any) -> None:
    assert parse_result(text) == value


@pytest.mark.parametrize(
    "text",
    ["<object>", "inf", "bytearray(b'x')", "__import__('os').system('true')", "", "[1,"],
)
def test_unparseable_results_raise(text: str) -> None:
    with pytest.raises(ResultParseError) as e:
        parse_result(text, task="t", device="b.BOARD")
    assert e.value.task == "t"
    assert e.value.code == "bad_result"


def test_records_split_results_errors_and_user_output() -> None:
    out = (
        "hi\n\x1eR[1]\x1f\n"
        "\x1eETraceback (most recent call last):\nValueError: bad\n\x1f\nbye\n\x1eR'x'\x1f\n"
    )
    records, rest = _records(out)
    assert [(r.ok, r.text.strip()) for r in records] == [
        (True, "[1]"),
        (False, "Traceback (most recent call last):\nValueError: bad"),
        (True, "'x'"),
    ]
    assert rest.split() == ["hi", "bye"]


def test_stray_marker_bytes_printed_by_a_task_do_not_hide_the_result() -> None:
    records, rest = _records("odd \x1e byte \x1eX\x1eR[2]\x1f")
    assert [(r.ok, r.text) for r in records] == [(True, "[2]")]
    assert "odd" in rest


def test_chunks_pack_definitions_under_the_limit() -> None:
    assert _chunks(["a" * 10, "b" * 10, "c" * 10], 21) == ["a" * 10 + "\n" + "b" * 10, "c" * 10]
    assert _chunks(["x" * 50, "y"], 21) == ["x" * 50, "y"]
    assert _chunks([], 100) == []


# --- the device against the fake board ---------------------------------------------------------


@pytest.fixture
def limited_board() -> Iterator[FakeBoard]:
    """A fake board whose execs take their turn at a real operation limiter actor."""
    from actorhw.drivers.definitions import BoardCatalog

    board = FakeBoard()
    board.device = BoardCatalog.discover(()).get("microbit").ids("fake").BOARD
    board.limiter = OperationLimiterActor.start(
        events=EventBus(), max_global=8, max_per_device=4, operation_timeout=60.0,
        check_interval=None,
    )  # fmt: skip
    try:
        yield board
    finally:
        board.limiter.stop(timeout=WAIT)


@pytest.fixture
def board() -> FakeBoard:
    return FakeBoard()


def test_connect_sends_definitions_once_and_runs_setups_in_order(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        assert board.ram["order"] == ["first", "second"]
        assert board.sent("def cached(") == 1
        assert len([c for c in board.codes if "def " in c]) == 1  # one round trip
        for _ in range(3):
            dev.plain(1)
        assert board.sent("def cached(") == 1  # not per call
        assert dev.syncs == 1
    assert board.ram["order"] == ["first", "second", "bye"]
    assert board.released


def test_results_come_back_typed(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        assert dev.plain(2, 3, 4, scale=10) == [20, [3, 4]]
        assert dev.chatty() == "done"  # what the task printed is not the result


def test_cache_keeps_the_board_counter_still(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        assert dev.cached() == 1
        assert dev.cached() == 1
        assert board.ram["calls"] == 1
        assert dev.cached(2) == 3  # other arguments, other entry
        assert dev.cached(step=2) == 5  # spelled differently: another key
        dev.clear_cache()
        assert dev.cached() == 6


def test_cache_expires(board: FakeBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    import actorhw.programming.cache as programming

    now = [1000.0]
    clock = types.SimpleNamespace(monotonic=lambda: now[0])
    with Counter(None, board) as dev:
        monkeypatch.setattr(programming, "time", clock)
        assert dev.cached() == 1
        now[0] += 59.9
        assert dev.cached() == 1
        now[0] += 0.2
        assert dev.cached() == 2
        monkeypatch.undo()


def test_cached_values_are_copies(board: FakeBoard) -> None:
    class Lists(MicroPythonDevice):
        @task(cache_ms=60_000)
        def items(self) -> list:  # type: ignore[type-arg]
            return [1, 2]

    with Lists(None, board) as dev:
        dev.items().append(3)
        assert dev.items() == [1, 2]


def test_board_exception_reaches_the_caller(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        with pytest.raises(DeviceExceptionError) as e:
            dev.boom(0)
        assert e.value.exc_name == "ZeroDivisionError"
        assert any("boom" in note for note in e.value.__notes__)
        assert dev.boom(4) == 0.25


def test_non_literal_result_raises_result_parse_error(board: FakeBoard) -> None:
    with Counter(None, board) as dev, pytest.raises(ResultParseError):
        dev.not_literal()


def test_bad_arguments_are_refused_before_anything_is_sent(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        before = len(board.codes)
        with pytest.raises(InvalidArgumentError):
            dev.boom(object())  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            dev.boom()  # type: ignore[call-arg]
        assert len(board.codes) == before


def test_timeout_ms_is_the_exec_deadline(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        with pytest.raises(TimedOutError):
            dev.spin()
        assert board.timeouts[-1] == 0.25
        dev.plain(1)
        assert board.timeouts[-1] == Counter.task_timeout


def test_reset_resends_definitions_and_reruns_setups(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        assert dev.cached() == 1
        board.reset()  # generation grows: the lease must reopen, the RAM is empty
        assert dev.cached() == 1  # a cache hit: no round trip, the reset is not seen yet
        assert dev.plain(1) == [1, []]  # the next board call re-syncs
        assert dev.syncs == 2
        assert dev.cached(2) == 2  # counter re-initialised by the setup
        assert board.sent("def cached(") == 2
        assert board.ram["order"] == ["first", "second"]


def test_a_reset_the_runtime_missed_is_caught_by_the_sentinel(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        board.wipe()  # soft reboot: same generation, definitions gone
        assert dev.plain(3) == [3, []]
        assert dev.syncs == 2


def test_a_nameerror_of_the_task_itself_is_not_retried(board: FakeBoard) -> None:
    class Typo(MicroPythonDevice):
        @task
        def t(self):
            return undefined_name  # noqa: F821

    with Typo(None, board) as dev:
        with pytest.raises(DeviceExceptionError) as e:
            dev.t()
        assert e.value.exc_name == "NameError"
        assert dev.syncs == 1


def test_batch_one_round_trip_failures_stay_with_their_call(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        before = len(board.codes)
        outcomes = dev.batch(
            [(dev.plain, (1,)), (dev.boom, (0,)), (dev.plain, (2,), {"scale": 3}), (dev.chatty, ())]
        )
        assert len(board.codes) == before + 1
        assert [o.ok for o in outcomes] == [True, False, True, True]
        assert outcomes[0].result() == [1, []]
        assert outcomes[2].value == [6, []]
        assert outcomes[3].result() == "done"
        error = outcomes[1].error
        assert isinstance(error, DeviceExceptionError)
        assert error.exc_name == "ZeroDivisionError"
        with pytest.raises(DeviceExceptionError):
            outcomes[1].result()


def test_batch_parse_errors_stay_with_their_call(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        bad, good = dev.batch([(dev.not_literal, ()), (dev.plain, (5,))])
        assert isinstance(bad.error, ResultParseError)
        assert good.result() == [5, []]


def test_batch_context_manager_and_cache(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        assert dev.cached() == 1
        with dev.batching() as b:
            c = b.call(dev.cached)
            p = b.call(dev.plain, 7)
            with pytest.raises(InvalidArgumentError):
                c.result()  # not run yet
        assert (c.result(), p.result()) == (1, [7, []])
        assert "cached" not in board.codes[-1]  # served from the host cache
        with pytest.raises(InvalidArgumentError):
            b.run()


def test_batch_refuses_foreign_tasks_and_malformed_calls(board: FakeBoard) -> None:
    other = FakeBoard()
    with Counter(None, board) as dev, Counter(None, other) as dev2:
        with pytest.raises(InvalidArgumentError):
            dev.batch([(dev2.plain, (1,))])
        with pytest.raises(InvalidArgumentError):
            dev.batch([(dev.plain,)])
        with pytest.raises(InvalidArgumentError):
            dev.batch([(dev.plain, (object(),))])


def test_batch_as_a_whole_failing_marks_every_outcome(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        with pytest.raises(TimedOutError), dev.batching() as b:
            p = b.call(dev.plain, 1)
            b.call(dev.spin)
        assert isinstance(p.error, TimedOutError)
        assert board.timeouts[-1] == pytest.approx(Counter.task_timeout + 0.25)


def test_setup_failure_runs_teardowns_and_raises_the_setup_error(board: FakeBoard) -> None:
    class Broken(MicroPythonDevice):
        @setup
        def init(self):
            global marker
            marker = "setup ran"
            int("not a number")

        @teardown
        def clean(self):
            global marker
            marker = "teardown ran"

    with pytest.raises(DeviceExceptionError) as e:
        Broken(None, board)
    assert e.value.exc_name == "ValueError"
    assert any("setup init" in note for note in e.value.__notes__)
    assert board.ram["marker"] == "teardown ran"
    assert board.released


def test_a_failing_teardown_after_a_failing_setup_is_reported(board: FakeBoard) -> None:
    class Worse(MicroPythonDevice):
        @setup
        def init(self):
            raise ValueError("setup")

        @teardown
        def clean(self):
            raise KeyError("teardown")

    with pytest.raises(DeviceExceptionError) as e:
        Worse(None, board)
    assert e.value.exc_name == "ValueError"
    (td,) = e.value.teardown_errors
    assert td.exc_name == "KeyError"
    assert any("KeyError" in note for note in e.value.__notes__)


def test_close_raises_teardown_failures_after_running_every_teardown(board: FakeBoard) -> None:
    class Two(MicroPythonDevice):
        @teardown(priority=1)
        def first(self):
            raise OSError("first")

        @teardown(priority=2)
        def second(self):
            global second_ran
            second_ran = True

    dev = Two(None, board)
    with pytest.raises(DeviceExceptionError) as e:
        dev.close()
    assert e.value.exc_name == "OSError"
    assert board.ram["second_ran"] is True
    assert board.released
    dev.close()  # twice is fine


def test_calls_after_close_are_refused(board: FakeBoard) -> None:
    dev = Counter(None, board)
    dev.close()
    with pytest.raises(NotOpenedError):
        dev.plain(1)
    with pytest.raises(NotOpenedError):
        dev.batch([(dev.plain, (1,))])


def test_setup_and_teardown_can_be_run_again_by_hand(board: FakeBoard) -> None:
    with Counter(None, board) as dev:
        dev.bye()
        assert board.ram["order"] == ["first", "second", "bye"]
        dev.first()
        assert board.ram["order"] == ["first"]


def test_runtime_stop_hook_runs_teardowns(board: FakeBoard) -> None:
    rt = FakeRuntime()
    dev = Counter(rt, board)  # type: ignore[arg-type]
    assert len(rt.callbacks) == 1
    rt.stop()
    assert board.ram["order"][-1] == "bye"
    assert board.released
    with pytest.raises(NotOpenedError):
        dev.plain(1)
    dev.close()


def test_close_unregisters_from_the_runtime(board: FakeBoard) -> None:
    rt = FakeRuntime()
    Counter(rt, board).close()  # type: ignore[arg-type]
    assert rt.callbacks == []


def test_close_after_runtime_stopped_reports_that_teardowns_did_not_run(
    board: FakeBoard,
) -> None:
    rt = types.SimpleNamespace(running=True)  # a runtime without the hook
    dev = Counter(rt, board)  # type: ignore[arg-type]
    rt.running = False
    with pytest.raises(Exception, match="teardowns bye did not run"):
        dev.close()


# --- background loops ----------------------------------------------------------------------


class Watched(MicroPythonDevice):
    @setup
    def init(self):
        global ticks
        ticks = 0

    @task
    def tick(self) -> int:
        global ticks
        ticks += 1
        return ticks

    @background(interval_ms=1)
    def watch(self) -> None:
        if self.tick() % 2 == 0:
            raise RuntimeError("every other run fails")


def test_background_runs_counts_errors_and_survives_them(board: FakeBoard) -> None:
    dev = Watched(None, board)
    try:
        assert dev.wait_background("watch", runs=6, timeout=WAIT)
        status = dev.background_status()["watch"]
        assert status.alive
        assert status.errors >= 3
        assert isinstance(status.last_error, RuntimeError)
        assert dev.background_errors["watch"] == status.errors
    finally:
        dev.close()
    threads = [t for t in threading.enumerate() if t.name.startswith("actorhw-bg-")]
    assert threads == []
    ticks = board.ram["ticks"]
    assert not dev.background_status()["watch"].alive
    assert board.ram["ticks"] == ticks


def test_background_is_stopped_by_close_without_waiting_its_interval(board: FakeBoard) -> None:
    class Slow(MicroPythonDevice):
        @background(interval_ms=3_600_000)
        def hourly(self) -> None:
            pass

    dev = Slow(None, board)
    assert dev.wait_background("hourly", runs=1, timeout=WAIT)
    dev.close_timeout = 2.0
    dev.close()
    assert not dev.background_status()["hourly"].alive


def test_wait_background_names_the_loops(board: FakeBoard) -> None:
    with Watched(None, board) as dev, pytest.raises(InvalidArgumentError, match="watch"):
        dev.wait_background("nope", runs=1, timeout=0.1)


# --- exclusivity ------------------------------------------------------------------------------


def test_exclusive_tasks_do_not_overlap(limited_board: FakeBoard) -> None:
    board = limited_board

    class Marks(MicroPythonDevice):
        @setup
        def init(self):
            global marks
            marks = []

        @task(exclusive=True)
        def work(self, who: str) -> None:
            marks.append(("start", who))
            marks.append(("end", who))

    with Marks(None, board) as dev:
        board.max_inflight = 0
        threads = [
            threading.Thread(target=lambda w=w: [dev.work(w) for _ in range(20)]) for w in "ab"
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        marks = board.ram["marks"]
        assert len(marks) == 80
        for i in range(0, 80, 2):
            assert marks[i][0] == "start" and marks[i + 1] == ("end", marks[i][1])
        assert board.max_inflight == 1  # never two calls at the board at once


class Gated(MicroPythonDevice):
    @task(exclusive=True)
    def excl(self) -> str:
        return "excl"

    @task
    def shared(self) -> str:
        return "shared"

    @task(exclusive=True, timeout_ms=50)
    def excl_quick(self) -> str:
        return "excl_quick"

    @task(timeout_ms=50)
    def shared_quick(self) -> str:
        return "shared_quick"


def _gate(
    board: FakeBoard, fragment: str, count: int = 1
) -> tuple[threading.Event, threading.Event]:
    """Calls whose code holds ``fragment`` stop before the board until released;
    ``inside`` is set once ``count`` of them are held."""
    inside, release = threading.Event(), threading.Event()
    held = [0]
    held_lock = threading.Lock()

    def gate(code: str) -> None:
        if fragment in code:
            with held_lock:
                held[0] += 1
                if held[0] >= count:
                    inside.set()
            assert release.wait(WAIT)

    board.gate = gate
    return inside, release


@pytest.mark.parametrize(("first", "second"), [("excl", "shared"), ("shared", "excl")])
def test_exclusive_and_other_calls_wait_for_each_other(
    limited_board: FakeBoard, first: str, second: str
) -> None:
    board = limited_board
    with Gated(None, board) as dev:
        inside, release = _gate(board, f"repr({first}()")
        results: list[str] = []
        a = threading.Thread(target=lambda: results.append(getattr(dev, first)()))
        b = threading.Thread(target=lambda: results.append(getattr(dev, second)()))
        a.start()
        try:
            assert inside.wait(WAIT)
            b.start()
            assert board.wait_until_waiting(1, timeout=WAIT)  # b waits for its turn
            assert board.sent(f"repr({second}()") == 0
        finally:
            release.set()
            a.join(WAIT)
            b.join(WAIT)
        assert results == [first, second]


def test_shared_calls_overlap(limited_board: FakeBoard) -> None:
    board = limited_board
    with Gated(None, board) as dev:
        inside, release = _gate(board, "repr(shared()")
        a = threading.Thread(target=dev.shared)
        a.start()
        try:
            assert inside.wait(WAIT)
            board.gate = None
            assert dev.shared() == "shared"  # not kept out by the call in flight
        finally:
            release.set()
            a.join(WAIT)


def test_exclusive_batch_keeps_other_calls_out(limited_board: FakeBoard) -> None:
    board = limited_board
    with Gated(None, board) as dev:
        inside, release = _gate(board, "_ahw_c(excl)")
        outcomes: list[Any] = []
        a = threading.Thread(
            target=lambda: outcomes.extend(dev.batch([(dev.shared, ()), (dev.excl, ())]))
        )
        a.start()
        try:
            assert inside.wait(WAIT)
            b = threading.Thread(target=dev.shared)
            b.start()
            assert board.wait_until_waiting(1, timeout=WAIT)
        finally:
            release.set()
            a.join(WAIT)
            b.join(WAIT)
        assert [o.result() for o in outcomes] == ["shared", "excl"]


# The device has no lock of its own: "exclusive" is the limiter's (what the read-write
# lock's own tests asserted is asserted here through the device and the limiter).


def test_exclusive_call_keeps_shared_calls_out(limited_board: FakeBoard) -> None:
    board = limited_board
    with Gated(None, board) as dev:
        inside, release = _gate(board, "repr(excl()")
        errors: list[BaseException] = []

        def shared() -> None:
            try:
                dev.shared_quick()
            except TimedOutError as e:
                errors.append(e)

        a = threading.Thread(target=dev.excl)
        a.start()
        try:
            assert inside.wait(WAIT)
            t = threading.Thread(target=shared)
            t.start()
            t.join(WAIT)
        finally:
            release.set()
            a.join(WAIT)
        assert len(errors) == 1
        shared()  # free again
        assert len(errors) == 1


def test_shared_calls_overlap_but_keep_exclusive_out(limited_board: FakeBoard) -> None:
    board = limited_board
    with Gated(None, board) as dev:
        inside, release = _gate(board, "repr(shared()", count=2)
        calls = [threading.Thread(target=dev.shared) for _ in range(2)]
        for t in calls:
            t.start()
        try:
            assert inside.wait(WAIT)  # both shared calls are at the board at once
            with pytest.raises(TimedOutError):
                dev.excl_quick()
        finally:
            release.set()
            for t in calls:
                t.join(WAIT)
        assert dev.excl_quick() == "excl_quick"


def test_a_waiting_exclusive_call_keeps_new_calls_from_starting(limited_board: FakeBoard) -> None:
    board = limited_board
    with Gated(None, board) as dev:
        inside, release = _gate(board, "repr(shared()")
        order: list[str] = []
        first = threading.Thread(target=lambda: order.append(dev.shared()))
        first.start()
        try:
            assert inside.wait(WAIT)
            board.gate = None
            excl = threading.Thread(target=lambda: order.append(dev.excl()))
            excl.start()
            assert board.wait_until_waiting(1, timeout=WAIT)
            late = threading.Thread(target=lambda: order.append(dev.shared() + "-late"))
            late.start()
            assert board.wait_until_waiting(2, timeout=WAIT)  # queued behind the exclusive
        finally:
            release.set()
            first.join(WAIT)
        excl.join(WAIT)
        late.join(WAIT)
        assert order == ["shared", "excl", "shared-late"]
