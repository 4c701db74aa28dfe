"""Scenario and board file loading: linear in the file's size.

Run it as ``python tests/benchmarks/bench_loader.py [--quick]``.

a. Scenario files of 1k and 8k steps (each step an acquire-free ``wait`` on a device,
   so every step is validated against the board catalog), loaded by ``load_scenario``
   in alternating rounds beside ``tomllib.loads`` of the same text (the floor: parsing
   alone). Figures are the fastest round of each: the work is the same every round, so
   a slower round measures the machine's other load (a burst of it once made one 8k
   load 16 s beside 0.5 s for 1k: ratio 30, at load 14). Targets: 8k steps load in
   under 1 s; the 8k/1k time ratio at most 12 (linear is 8; the old loader's rescan per
   step made it ~64).
b. A board file of 1,000 devices (the most a board may have) and one of 50,000 (refused
   by the device limit): loaded by ``BoardCatalog.discover``. Targets: the 1,000-device
   board in under 1 s; the refusal in under 10 s (it was a hang).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from actorhw.core.errors import BoardDefinitionError
from actorhw.drivers.definitions import BoardCatalog
from actorhw.scenario import load_scenario


def scenario_text(steps: int) -> str:
    parts = ['[[boards]]\nboard = "same70-xplained"\n']
    parts += [
        f'[[steps]]\nname = "s{i}"\nwait = "CONNECTED"\non = "same70-xplained.UART0"\n'
        for i in range(steps)
    ]
    return "\n".join(parts)


def board_text(devices: int) -> str:
    head = '[board]\nname = "huge"\nenum = "Huge"\ndriver = "sim"\n\n[devices]\n'
    return head + "".join(f'P{i} = {{ kind = "gpio", pin = {i} }}\n' for i in range(devices))


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 5
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        catalog = BoardCatalog.discover()
        files = {}
        for steps in (1000, 8000):
            files[steps] = folder / f"s{steps}.toml"
            files[steps].write_text(scenario_text(steps), encoding="utf-8")
        load: dict[int, list[float]] = {1000: [], 8000: []}
        parse: list[float] = []
        for _ in range(rounds):
            for steps in (1000, 8000):
                load[steps].append(timed(lambda s=steps: load_scenario(files[s], catalog=catalog)))
            text = files[8000].read_text(encoding="utf-8")
            parse.append(timed(lambda t=text: tomllib.loads(t)))
        small, big, floor = (min(x) for x in (load[1000], load[8000], parse))
        ratio = big / small
        verdict = big < 1.0 and ratio <= 12
        ok &= verdict
        print(f"a. scenario 1k steps {small * 1000:8.1f} ms   8k steps {big * 1000:8.1f} ms   "
              f"(tomllib alone {floor * 1000:.1f} ms)   ratio 8k/1k {ratio:.1f}   "
              f"target 8k < 1000 ms, ratio <= 12  {'PASS' if verdict else 'MISS'}")  # fmt: skip

        (folder / "b1k").mkdir()
        (folder / "b1k" / "huge.toml").write_text(board_text(1000), encoding="utf-8")
        (folder / "b50k").mkdir()
        (folder / "b50k" / "huge.toml").write_text(board_text(50_000), encoding="utf-8")
        one_k = statistics.median(
            timed(lambda: BoardCatalog.discover([folder / "b1k"])) for _ in range(rounds)
        )
        began = time.perf_counter()
        try:
            BoardCatalog.discover([folder / "b50k"])
            refused = False
        except BoardDefinitionError:
            refused = True
        fifty_k = time.perf_counter() - began
        verdict = one_k < 1.0 and refused and fifty_k < 10.0
        ok &= verdict
        print(f"b. board 1,000 devices {one_k * 1000:8.1f} ms   50,000 devices "
              f"{'refused' if refused else 'ACCEPTED'} in {fifty_k * 1000:.1f} ms   "
              f"target < 1000 ms, refusal < 10000 ms  {'PASS' if verdict else 'MISS'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
