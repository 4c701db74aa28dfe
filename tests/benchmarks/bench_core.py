"""Core benchmarks of actorhw, measured side by side in one run.

    python tests/benchmarks/bench_core.py            # full run, prints a table
    python tests/benchmarks/bench_core.py --quick    # seconds, for a smoke check
    python tests/benchmarks/bench_core.py --json     # the figures as JSON

a. an acquire+release pair through the Runtime vs a bare pykka ask pair (target <= 1.5x);
b. finding a device the way callers do, among 2,000 devices vs among 20 (target <=
   1.2x): the runtime's route, cold (the registry's Lookup, then the actor by URN) and
   warm (the route the runtime caches), each followed by an ask to the device;
c. memory (RSS) and threads per device actor, over a runtime with 2,000 devices.

Exits 1 when a target is missed (a MISS line), 0 when every target passes.

The machines this runs on are shared and noisy, so a and b are interleaved: every round
times the four measures slice by slice, taking turns in an order that rotates from round
to round; times are medians over rounds and ratios medians of per-round ratios.

By default the run is pinned to one CPU (``--no-pin`` to not): on
a shared VM, an ask whose actor thread sits on another vCPU pays a cross-CPU wake-up
(45 or 110 us per pair, depending on where the scheduler happened to put each actor's
thread), which swamps the software path being compared.  ``run()`` returns the figures
as a dict.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pykka

from actorhw import DeviceId, Runtime
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT

TARGET_PAIR_RATIO = 1.5
"""a: Runtime acquire+release pair / bare pykka ask pair."""
TARGET_LOOKUP_RATIO = 1.2
"""b: Lookup among many devices / among few."""

BIG_BOARD = "bench-big"
SMALL_BOARD = "bench-small"
OWNER = "bench"


class Echo(pykka.ThreadingActor):
    """The bare baseline: a pykka actor that answers every ask with the message."""

    def on_receive(self, message: Any) -> Any:
        return message


def write_board(folder: Path, name: str, enum: str, devices: int) -> Path:
    """A board file of ``devices`` simulated GPIO pins in ``folder``."""
    lines = ["[board]", f'name = "{name}"', f'enum = "{enum}"', 'driver = "sim"', "", "[devices]"]
    lines += [f'PIN{i} = {{ kind = "gpio", pin = {i} }}' for i in range(devices)]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def elapsed_ns(op: Callable[[], object], iterations: int) -> int:
    """Nanoseconds that ``iterations`` calls of ``op`` in a row take."""
    start = time.perf_counter_ns()
    for _ in range(iterations):
        op()
    return time.perf_counter_ns() - start


def interleaved(
    measures: dict[str, Callable[[int], int]],
    *,
    rounds: int,
    iterations: dict[str, int],
    slices: int = 10,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Time every measure in every round, finely interleaved against machine noise.

    A round runs each measure's ``iterations[name]`` in ``slices`` slices, taking turns
    slice by slice in an order that rotates from round to round, so the measures see the
    same machine. ``measures[name](n)`` runs n iterations and returns the nanoseconds
    they took. ``warmup`` rounds run first and are dropped. Returns each measure's
    nanoseconds per iteration, one figure per round.
    """
    names = list(measures)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        order = names[shift:] + names[:shift]
        spent = dict.fromkeys(names, 0)
        done = dict.fromkeys(names, 0)
        for s in range(slices):
            for name in order:
                n = iterations[name] * (s + 1) // slices - done[name]
                spent[name] += measures[name](n)
                done[name] += n
        if r >= warmup:
            for name in names:
                samples[name].append(spent[name] / max(1, done[name]))
    return samples


def paired_ratio(numerator: list[float], denominator: list[float]) -> dict[str, float]:
    """The ratio of two measures round by round (each pair saw the same machine)."""
    return _summary([a / b for a, b in zip(numerator, denominator, strict=True)])


@contextlib.contextmanager
def pinned(enabled: bool) -> Iterator[int | None]:
    """Pin this thread, and so every thread it starts (actors inherit it), to one CPU;
    yields the CPU (None when not pinned) and restores the thread's affinity after."""
    if not enabled or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }


def run(
    *,
    devices: int = 2000,
    small: int = 20,
    rounds: int = 15,
    pairs: int = 2000,
    lookups: int = 2000,
    seed: int = 2024,
    pin: bool = True,
) -> dict[str, Any]:
    """Measure everything in one runtime; returns the figures (times in ns)."""
    process = psutil.Process()
    rng = random.Random(seed)
    with (
        pinned(pin) as cpu,
        tempfile.TemporaryDirectory(prefix="actorhw-bench-") as folder,
    ):
        # A board file holds at most 1,024 devices: the big side is boards of <= 1,000.
        per_board = min(devices, 1000)
        big_boards = -(-devices // per_board)
        devices = per_board * big_boards
        write_board(Path(folder), BIG_BOARD, "BenchBig", per_board)
        write_board(Path(folder), SMALL_BOARD, "BenchSmall", small)

        # c. memory and threads of the big board's device actors, measured alone.
        threads_before, rss_before = process.num_threads(), _rss()
        start = time.perf_counter()
        rt = Runtime.start(boards=[BIG_BOARD] * big_boards, boards_dirs=[folder], timeout=300.0)
        startup_s = time.perf_counter() - start
        echo: pykka.ActorRef[Any] | None = None
        try:
            rss_after, threads_after = _rss(), process.num_threads()
            rt.add_boards([SMALL_BOARD, "same70-xplained"], timeout=60.0)
            echo = Echo.start()
            uart = rt.ids("same70-xplained")["UART0"]
            big: list[DeviceId] = [
                d
                for name in [BIG_BOARD] + [f"{BIG_BOARD}-{i}" for i in range(2, big_boards + 1)]
                for d in rt.ids(name)
            ]
            few: list[DeviceId] = list(rt.ids(SMALL_BOARD))
            big_ids = [rng.choice(big) for _ in range(lookups)]
            few_ids = [rng.choice(few) for _ in range(lookups)]

            def runtime_pairs(n: int) -> int:
                def once() -> None:
                    rt.release(rt.acquire(uart, owner=OWNER))

                return elapsed_ns(once, n)

            ref, message = echo, object()

            def bare_pairs(n: int) -> int:
                def once() -> None:
                    ref.ask(message, timeout=DEFAULT_ASK_TIMEOUT)
                    ref.ask(message, timeout=DEFAULT_ASK_TIMEOUT)

                return elapsed_ns(once, n)

            def lookups_of(ids: list[DeviceId], *, cold: bool) -> Callable[[int], int]:
                """The caller's route to a device, then an ask to it (rt.info)."""
                devices = itertools.cycle(ids)
                routes = rt._routes  # the runtime's cache of routes (cold: emptied)

                def once() -> None:
                    device = next(devices)
                    if cold:
                        routes.pop(device, None)
                    rt.info(device, timeout=DEFAULT_ASK_TIMEOUT)

                def measure(n: int) -> int:
                    return elapsed_ns(once, n)

                return measure

            samples = interleaved(
                {
                    "runtime_pair": runtime_pairs,
                    "bare_pair": bare_pairs,
                    "lookup_big": lookups_of(big_ids, cold=True),
                    "lookup_small": lookups_of(few_ids, cold=True),
                    "warm_big": lookups_of(big_ids, cold=False),
                    "warm_small": lookups_of(few_ids, cold=False),
                },
                rounds=rounds,
                iterations={
                    "runtime_pair": pairs,
                    "bare_pair": pairs,
                    "lookup_big": lookups,
                    "lookup_small": lookups,
                    "warm_big": lookups,
                    "warm_small": lookups,
                },
            )
            assert rt.info(uart).owners_count == 0
        finally:
            if echo is not None:
                echo.stop()
            rt.stop()

    figures = {name: _summary(values) for name, values in samples.items()}
    pair = paired_ratio(samples["runtime_pair"], samples["bare_pair"])
    lookup = paired_ratio(samples["lookup_big"], samples["lookup_small"])
    warm = paired_ratio(samples["warm_big"], samples["warm_small"])
    return {
        "config": {
            "devices": devices,
            "small": small,
            "rounds": rounds,
            "pairs": pairs,
            "lookups": lookups,
            "cpus": os.cpu_count(),
            "pinned_cpu": cpu,
            "python": platform.python_version(),
        },
        "pair_ns": {"runtime": figures["runtime_pair"], "bare_pykka": figures["bare_pair"]},
        "pair_ratio": pair,
        "pair_target": TARGET_PAIR_RATIO,
        "pair_pass": pair["median"] <= TARGET_PAIR_RATIO,
        "lookup_ns": {"big": figures["lookup_big"], "small": figures["lookup_small"]},
        "lookup_ratio": lookup,
        "lookup_target": TARGET_LOOKUP_RATIO,
        "lookup_pass": lookup["median"] <= TARGET_LOOKUP_RATIO,
        "warm_ns": {"big": figures["warm_big"], "small": figures["warm_small"]},
        "warm_ratio": warm,
        "warm_pass": warm["median"] <= TARGET_LOOKUP_RATIO,
        "memory": {
            "rss_before": rss_before,
            "rss_after": rss_after,
            "bytes_per_device": (rss_after - rss_before) / devices,
            "threads_before": threads_before,
            "threads_after": threads_after,
            "threads_per_device": (threads_after - threads_before) / devices,
            "startup_s": startup_s,
        },
    }


def _us(ns: float) -> str:
    return f"{ns / 1000:8.1f} us"


def _spread(figure: dict[str, float], scale: float = 1000) -> str:
    return f"[{figure['min'] / scale:.2f} .. {figure['max'] / scale:.2f}]"


def report(figures: dict[str, Any]) -> str:
    """The figures as a table, with PASS/MISS against each target."""
    config, memory = figures["config"], figures["memory"]
    pair, lookup = figures["pair_ns"], figures["lookup_ns"]
    n, k = config["devices"], config["small"]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    rows = [
        ("a. acquire+release via Runtime", _us(pair["runtime"]["median"]) + "/pair",
         _spread(pair["runtime"]), ""),
        ("   bare pykka ask pair", _us(pair["bare_pykka"]["median"]) + "/pair",
         _spread(pair["bare_pykka"]), ""),
        ("   ratio (paired by round)", f"{figures['pair_ratio']['median']:8.2f} x",
         f"{_spread(figures['pair_ratio'], 1)} target <= {figures['pair_target']}x",
         verdict(figures["pair_pass"])),
        (f"b. route cold + ask, {n} devices", _us(lookup["big"]["median"]),
         _spread(lookup["big"]), ""),
        (f"   route cold + ask, {k} devices", _us(lookup["small"]["median"]),
         _spread(lookup["small"]), ""),
        ("   ratio (paired by round)", f"{figures['lookup_ratio']['median']:8.2f} x",
         f"{_spread(figures['lookup_ratio'], 1)} target <= {figures['lookup_target']}x",
         verdict(figures["lookup_pass"])),
        (f"   route warm + ask, {n} devices", _us(figures["warm_ns"]["big"]["median"]),
         _spread(figures["warm_ns"]["big"]), ""),
        (f"   route warm + ask, {k} devices", _us(figures["warm_ns"]["small"]["median"]),
         _spread(figures["warm_ns"]["small"]), ""),
        ("   ratio (paired by round)", f"{figures['warm_ratio']['median']:8.2f} x",
         f"{_spread(figures['warm_ratio'], 1)} target <= {figures['lookup_target']}x",
         verdict(figures["warm_pass"])),
        ("c. RSS per device actor", f"{memory['bytes_per_device'] / 1024:8.1f} KiB",
         f"+{(memory['rss_after'] - memory['rss_before']) / 2**20:.1f} MiB for {n}", ""),
        ("   threads per device actor", f"{memory['threads_per_device']:8.2f}",
         f"{memory['threads_before']} -> {memory['threads_after']} threads", ""),
        (f"   start-up of {n} devices", f"{memory['startup_s']:8.2f} s", "", ""),
    ]  # fmt: skip
    head = (
        f"actorhw core benchmarks: median of {config['rounds']} interleaved rounds "
        f"({config['pairs']} pairs, {config['lookups']} lookups each); "
        f"{config['cpus']} CPUs, "
        + (
            "not pinned"
            if config["pinned_cpu"] is None
            else f"pinned to CPU {config['pinned_cpu']}"
        )
        + f", Python {config['python']}"
    )
    lines = [head, f"{'':32}{'median':>16}  {'[min .. max] of rounds, detail':<40}result"]
    lines += [f"{a:<32}{b:>16}  {c:<40}{d}".rstrip() for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print the table (or JSON); returns 1 on a MISS, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15)")
    parser.add_argument("--devices", type=int, help="devices of the big board (default 2000)")
    args = parser.parse_args(argv)
    options: dict[str, Any] = (
        {"devices": 200, "small": 5, "rounds": 3, "pairs": 50, "lookups": 50} if args.quick else {}
    )
    if args.rounds is not None:
        options["rounds"] = args.rounds
    if args.devices is not None:
        options["devices"] = args.devices
    figures = run(pin=not args.no_pin, **options)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    passed = figures["pair_pass"] and figures["lookup_pass"] and figures["warm_pass"]
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
