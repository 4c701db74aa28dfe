"""Stateful property: ownership and lifecycle of devices under racing client threads.

A hypothesis state machine drives one SINGLE device (``same70-xplained.UART0``) and one
SHARED device (``microbit.PIN0``) of the simulated boards through one Runtime.  Every
rule sends a batch of BATCH calls from BATCH client threads that a barrier releases
together, then checks the outcome against a pure-Python model:

- exactly one of N racing acquires of a free SINGLE device wins, the rest get
  DeviceBusyError naming the winner; a held SINGLE device never gets a second owner;
- racing duplicates of one release, open or close succeed exactly once;
- owners_count is never negative and always equals successful acquires minus successful
  releases (no release is lost, none counted twice);
- a batch in which every call was refused with a typed ActorHwError leaves every
  device's DeviceInfo exactly as it was, and so does any batch of uses.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actorhw import DeviceId, DeviceInfo, DeviceState, Lease, Runtime, SharingPolicy
from actorhw.core.errors import (
    ActorHwError,
    AlreadyOpenedError,
    DeviceBusyError,
    InvalidArgumentError,
    NotOpenedError,
    NotOwnerError,
    StaleLeaseError,
    UnsupportedOperationError,
)

pytestmark = pytest.mark.timeout(180)

BATCH = 8
"""Client threads per rule; every rule's calls race from this many threads at once."""
WAIT = 30.0
"""Seconds any wait of the test (barrier, future, ask) may take before it fails."""
OWNERS = ("alpha", "beta", "gamma", "delta")
"""Owner names clients acquire as; a lease shown with another name is foreign."""

Outcome = tuple[bool, Any]
"""(True, result) of a call that succeeded, (False, error) of a refused one."""


@attrs.define
class Held:
    """A lease the model believes is held, and whether it has the device open."""

    lease: Lease
    opened: bool = False


@attrs.define
class Model:
    """What one device should be, according to the calls that succeeded."""

    device: DeviceId
    policy: SharingPolicy
    held: dict[int, Held] = attrs.field(factory=dict)
    acquired: int = 0
    released: int = 0
    rx: int = 0
    """UART: bytes written and not read yet."""
    level: bool = False
    """GPIO: the level last written."""

    def open_count(self) -> int:
        return sum(1 for h in self.held.values() if h.opened)

    def reset(self) -> None:
        """The last release puts the peripheral back in its power-on state."""
        self.rx, self.level = 0, False


@attrs.frozen
class Mode:
    """The one good operation of each device in a batch of uses, and the level a GPIO
    write batch drives: one kind per device, so the outcome does not depend on the
    order in which the device serves the racing calls."""

    uart: str
    gpio: str
    level: bool


def _describe(outcomes: list[Outcome]) -> str:
    return "\n".join(
        f"  [{i}] {'ok ' if ok else 'err'} {value!r}" for i, (ok, value) in enumerate(outcomes)
    )


def _knows_a_lease(machine: OwnershipMachine) -> bool:
    return bool(machine.held_leases() or machine.stale)


def _holds_a_lease(machine: OwnershipMachine) -> bool:
    return bool(machine.held_leases())


def _holds_a_closed_lease(machine: OwnershipMachine) -> bool:
    return bool(machine.closed_leases())


class OwnershipMachine(RuleBasedStateMachine):
    """Racing clients against the model of one SINGLE UART and one SHARED GPIO."""

    def __init__(self) -> None:
        super().__init__()
        # One Runtime per run of the machine; teardown() stops it, so nothing leaks.
        self.rt = Runtime.start(boards=["same70-xplained", "microbit"], timeout=WAIT)
        try:
            self.uart = self.rt.ids("same70-xplained")["UART0"]
            self.gpio = self.rt.ids("microbit")["PIN0"]
        except BaseException:
            self.rt.stop()
            raise
        self.pool = ThreadPoolExecutor(max_workers=BATCH, thread_name_prefix="client")
        self.models = {
            self.uart: Model(self.uart, SharingPolicy.SINGLE),
            self.gpio: Model(self.gpio, SharingPolicy.SHARED),
        }
        self.stale: list[Lease] = []
        self.tokens: set[int] = set()

    def teardown(self) -> None:
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self.rt.stop()

    # --- running a batch --------------------------------------------------------------

    def infos(self) -> dict[DeviceId, DeviceInfo]:
        return {d: self.rt.info(d, timeout=WAIT) for d in self.models}

    def race(self, calls: list[Callable[[], Any]]) -> list[Outcome]:
        """Run ``calls`` from BATCH threads at once; typed refusals become outcomes."""
        assert len(calls) == BATCH
        barrier = threading.Barrier(BATCH)

        def run(call: Callable[[], Any]) -> Outcome:
            barrier.wait(timeout=WAIT)
            try:
                return True, call()
            except ActorHwError as e:
                return False, e

        futures = [self.pool.submit(run, call) for call in calls]
        return [f.result(timeout=WAIT) for f in futures]

    def batch(
        self, calls: list[Callable[[], Any]], *, changes_nothing: bool = False
    ) -> list[Outcome]:
        """race() and check that refused-only batches (or ``changes_nothing`` ones)
        leave every device's DeviceInfo as it was."""
        before = self.infos()
        outcomes = self.race(calls)
        if changes_nothing or not any(ok for ok, _ in outcomes):
            after = self.infos()
            assert after == before, (
                f"a batch that should change nothing changed state:\n{_describe(outcomes)}\n"
                f"before: {before}\nafter:  {after}"
            )
        return outcomes

    # --- drawing leases ---------------------------------------------------------------

    def held_leases(self) -> list[Lease]:
        return [h.lease for m in self.models.values() for h in m.held.values()]

    def closed_leases(self) -> list[Lease]:
        return [h.lease for m in self.models.values() for h in m.held.values() if not h.opened]

    def draw_lease(self, data: st.DataObject) -> Lease:
        """A lease to present: held, stale, foreign (someone else's name on a held
        token), or a held token presented to the other device."""
        held = self.held_leases()
        kinds = [k for k in ("held", "held", "foreign", "elsewhere") if held]
        kinds += ["stale"] if self.stale else []
        kind = data.draw(st.sampled_from(kinds), label="lease kind")
        if kind == "stale":
            return data.draw(st.sampled_from(self.stale), label="stale lease")
        lease = data.draw(st.sampled_from(held), label="held lease")
        if kind == "foreign":
            names = [n for n in ("intruder", *OWNERS) if n != lease.owner]
            return attrs.evolve(lease, owner=data.draw(st.sampled_from(names), label="as"))
        if kind == "elsewhere":
            other = next(d for d in self.models if d is not lease.device)
            return attrs.evolve(lease, device=other)
        return lease

    def ownership_error(self, lease: Lease) -> type[ActorHwError] | None:
        """The refusal a lease gets before anything else is looked at, if any."""
        held = self.models[lease.device].held.get(lease.token)
        if held is None:
            return StaleLeaseError
        if held.lease.owner != lease.owner:
            return NotOwnerError
        return None

    @staticmethod
    def assert_refused(outcome: Outcome, *errors: type[ActorHwError], context: str) -> None:
        ok, value = outcome
        assert not ok and type(value) in errors, (
            f"{context}: expected {'/'.join(e.__name__ for e in errors)}, got "
            f"{'success' if ok else type(value).__name__}: {value!r}"
        )

    def check_once_each(
        self, leases: list[Lease], outcomes: list[Outcome], repeat: type[ActorHwError], context: str
    ) -> dict[int, int]:
        """Racing duplicates of one valid lease: exactly one succeeds, the others get
        ``repeat``. Returns token -> index of the call that won."""
        winners: dict[int, int] = {}
        for i, (lease, (ok, _)) in enumerate(zip(leases, outcomes, strict=True)):
            if ok:
                assert lease.token not in winners, (
                    f"{context}: lease {lease.token} succeeded twice:\n{_describe(outcomes)}"
                )
                winners[lease.token] = i
        for i, lease in enumerate(leases):
            if winners.get(lease.token) != i:
                self.assert_refused(outcomes[i], repeat, context=f"{context} [{i}]")
        return winners

    # --- rules ------------------------------------------------------------------------

    @initialize(data=st.data())
    def first_acquire(self, data: st.DataObject) -> None:
        """Start with leases to work with: the other rules need one."""
        self.acquire(data)

    @rule(data=st.data())
    def acquire(self, data: st.DataObject) -> None:
        devices = list(self.models)
        plan = [
            (
                data.draw(st.sampled_from(devices), label="device"),
                data.draw(st.sampled_from(OWNERS), label="owner"),
            )
            for _ in range(BATCH)
        ]
        outcomes = self.batch([partial(self.rt.acquire, d, owner=o, timeout=WAIT) for d, o in plan])
        new_tokens: set[int] = set()
        for device, model in self.models.items():
            calls = [i for i, (d, _) in enumerate(plan) if d is device]
            wins = [i for i in calls if outcomes[i][0]]
            if model.policy is SharingPolicy.SINGLE:
                if model.held:
                    expected = 0
                    holders = tuple(h.lease.owner for h in model.held.values())
                else:
                    expected = 1 if calls else 0
                    holders = tuple(plan[i][1] for i in wins)
                assert len(wins) == expected, (
                    f"{len(wins)} of {len(calls)} racing acquires of SINGLE {device.key} won "
                    f"(expected {expected}):\n{_describe(outcomes)}"
                )
                for i in calls:
                    if i in wins:
                        continue
                    self.assert_refused(outcomes[i], DeviceBusyError, context=f"acquire [{i}]")
                    error = outcomes[i][1]
                    assert error.owners == holders and error.owners_count == 1, error.context
            else:
                assert wins == calls, f"SHARED acquires refused:\n{_describe(outcomes)}"
            for i in wins:
                lease = outcomes[i][1]
                assert isinstance(lease, Lease)
                assert lease.device is device and lease.owner == plan[i][1], lease
                assert lease.generation == 0, lease
                assert lease.token not in self.tokens and lease.token not in new_tokens, lease
                new_tokens.add(lease.token)
                model.held[lease.token] = Held(lease)
                model.acquired += 1
        self.tokens |= new_tokens

    @precondition(_knows_a_lease)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        leases = [self.draw_lease(data) for _ in range(BATCH)]
        outcomes = self.batch([partial(self.rt.release, x, timeout=WAIT) for x in leases])
        valid = [i for i, x in enumerate(leases) if self.ownership_error(x) is None]
        released = {leases[i].token for i in valid}
        for i, lease in enumerate(leases):
            error = self.ownership_error(lease)
            if error is NotOwnerError and lease.token in released:
                # The owner's release may come first; then the token is stale.
                self.assert_refused(
                    outcomes[i], NotOwnerError, StaleLeaseError, context=f"release [{i}]"
                )
            elif error is not None:
                self.assert_refused(outcomes[i], error, context=f"release [{i}]")
        self.check_once_each(
            [leases[i] for i in valid], [outcomes[i] for i in valid], StaleLeaseError, "release"
        )
        for device, model in self.models.items():
            won = [i for i in valid if leases[i].device is device and outcomes[i][0]]
            counts = sorted(outcomes[i][1] for i in won)
            n = len(model.held)
            # Releases are serialized by the device: each one leaves one owner fewer.
            assert counts == list(range(n - len(won), n)), (
                f"owners_count answers {counts} of {len(won)} releases from {n} owners of "
                f"{device.key}:\n{_describe(outcomes)}"
            )
            for i in won:
                del model.held[leases[i].token]
                model.released += 1
                self.stale.append(leases[i])
            if won and not model.held:
                model.reset()

    @precondition(_knows_a_lease)
    @rule(data=st.data())
    def open(self, data: st.DataObject) -> None:
        leases = [self.draw_lease(data) for _ in range(BATCH)]
        outcomes = self.batch([partial(self.rt.open, x, timeout=WAIT) for x in leases])
        self.check_open(leases, outcomes, "open")

    @precondition(_holds_a_lease)
    @rule(data=st.data())
    def double_open(self, data: st.DataObject) -> None:
        lease = data.draw(st.sampled_from(self.held_leases()), label="lease")
        outcomes = self.batch([lambda: self.rt.open(lease, timeout=WAIT)] * BATCH)
        self.check_open([lease] * BATCH, outcomes, "double open")

    def check_open(self, leases: list[Lease], outcomes: list[Outcome], context: str) -> None:
        fresh: list[int] = []
        for i, lease in enumerate(leases):
            error = self.ownership_error(lease)
            if error is None and self.models[lease.device].held[lease.token].opened:
                error = AlreadyOpenedError
            if error is not None:
                self.assert_refused(outcomes[i], error, context=f"{context} [{i}]")
            else:
                fresh.append(i)
        self.check_once_each(
            [leases[i] for i in fresh], [outcomes[i] for i in fresh], AlreadyOpenedError, context
        )
        for i in fresh:
            ok, info = outcomes[i]
            if ok:
                assert info.state is DeviceState.ACTIVE and info.open_count >= 1, info
                self.models[leases[i].device].held[leases[i].token].opened = True

    @precondition(_knows_a_lease)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        leases = [self.draw_lease(data) for _ in range(BATCH)]
        outcomes = self.batch([partial(self.rt.close, x, timeout=WAIT) for x in leases])
        opened: list[int] = []
        for i, lease in enumerate(leases):
            error = self.ownership_error(lease)
            if error is None and not self.models[lease.device].held[lease.token].opened:
                error = NotOpenedError
            if error is not None:
                self.assert_refused(outcomes[i], error, context=f"close [{i}]")
            else:
                opened.append(i)
        self.check_once_each(
            [leases[i] for i in opened], [outcomes[i] for i in opened], NotOpenedError, "close"
        )
        for i in opened:
            ok, info = outcomes[i]
            if ok:
                assert info.state in (DeviceState.CONNECTED, DeviceState.ACTIVE), info
                self.models[leases[i].device].held[leases[i].token].opened = False

    def draw_op(
        self, data: st.DataObject, device: DeviceId, mode: Mode
    ) -> tuple[str, tuple[Any, ...], str]:
        """(op, args, variant): the batch's operation on ``device``, or a bad one."""
        variant = data.draw(
            st.sampled_from(("good", "good", "good", "bad_op", "bad_args")), label="variant"
        )
        if variant == "bad_op":
            return "frobnicate", (), variant
        if variant == "bad_args":
            return "write", ("not bytes nor bool",), variant
        if device is self.uart:
            size = data.draw(st.integers(1, 4), label="size")
            if mode.uart == "write":
                return "write", (b"\xaa" * size,), variant
            return "read", (size,), variant
        if mode.gpio == "write":
            return "write", (mode.level,), variant
        return "read", (), variant

    @precondition(_knows_a_lease)
    @rule(data=st.data())
    def use(self, data: st.DataObject) -> None:
        mode = Mode(
            uart=data.draw(st.sampled_from(("write", "read")), label="uart op"),
            gpio=data.draw(st.sampled_from(("read", "write")), label="gpio op"),
            level=data.draw(st.booleans(), label="gpio level to write"),
        )
        leases = [self.draw_lease(data) for _ in range(BATCH)]
        ops = [self.draw_op(data, lease.device, mode) for lease in leases]
        outcomes = self.batch(
            [
                partial(self.rt.use, x, op[0], op[1], timeout=WAIT)
                for x, op in zip(leases, ops, strict=True)
            ],
            changes_nothing=True,
        )
        good: dict[DeviceId, list[int]] = {d: [] for d in self.models}
        for i, (lease, (_op, _args, variant)) in enumerate(zip(leases, ops, strict=True)):
            error = self.ownership_error(lease)
            if error is None and not self.models[lease.device].held[lease.token].opened:
                error = NotOpenedError
            if error is None and variant != "good":
                error = UnsupportedOperationError if variant == "bad_op" else InvalidArgumentError
            if error is not None:
                self.assert_refused(outcomes[i], error, context=f"use [{i}] {ops[i]}")
            else:
                assert outcomes[i][0], f"use [{i}] {ops[i]} refused:\n{_describe(outcomes)}"
                good[lease.device].append(i)
        uart, gpio = self.models[self.uart], self.models[self.gpio]
        if mode.uart == "write":
            for i in good[self.uart]:
                assert outcomes[i][1] == len(ops[i][1][0]), outcomes[i]
                uart.rx += outcomes[i][1]
        else:
            asked = sum(ops[i][1][0] for i in good[self.uart])
            got = [outcomes[i][1] for i in good[self.uart]]
            assert all(len(g) <= ops[i][1][0] for g, i in zip(got, good[self.uart], strict=True))
            assert b"".join(got) == b"\xaa" * min(asked, uart.rx), (uart.rx, got)
            uart.rx -= min(asked, uart.rx)
        if mode.gpio == "write":
            assert all(outcomes[i][1] is None for i in good[self.gpio])
            if good[self.gpio]:
                gpio.level = mode.level
        else:
            assert [outcomes[i][1] for i in good[self.gpio]] == [gpio.level] * len(
                good[self.gpio]
            ), _describe(outcomes)

    @precondition(_holds_a_closed_lease)
    @rule(data=st.data())
    def use_before_open(self, data: st.DataObject) -> None:
        closed = self.closed_leases()
        lease = data.draw(st.sampled_from(closed), label="lease")
        op = ("write", (b"x",)) if lease.device is self.uart else ("read", ())
        outcomes = self.batch([lambda: self.rt.use(lease, *op, timeout=WAIT)] * BATCH)
        for i, outcome in enumerate(outcomes):
            self.assert_refused(outcome, NotOpenedError, context=f"use before open [{i}]")

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def devices_match_the_model(self) -> None:
        for device, model in self.models.items():
            info = self.rt.info(device, timeout=WAIT)
            assert info.owners_count >= 0, info
            assert info.owners_count == len(model.held), (info, model)
            assert info.owners_count == model.acquired - model.released, (info, model)
            if model.policy is SharingPolicy.SINGLE:
                assert info.owners_count <= 1, info
            assert info.policy is model.policy, info
            assert Counter(info.owners) == Counter(h.lease.owner for h in model.held.values())
            assert info.open_count == model.open_count(), (info, model)
            opened = DeviceState.ACTIVE if model.open_count() else DeviceState.CONNECTED
            assert info.state is opened, info
            assert info.generation == 0 and info.last_error is None, info


OwnershipMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # No shrink phase: which of the racing calls wins differs from run to run, so
    # shrinking crawls (minutes, past the timeout) and ends Flaky. A failure is
    # reported with its (at most 15) steps as they ran.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
TestOwnership = OwnershipMachine.TestCase
