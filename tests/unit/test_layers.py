"""The layers hold at run time: lower layers load without the actor tree, and no module
of actorhw imports itself back through others (type-checking imports included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import importlib.util, sys
import actorhw.links.raw_repl
spec = importlib.util.spec_from_file_location("drv_sim_probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert module.BoardDriver
loaded = sorted(m for m in sys.modules if m == "pykka" or m.startswith(("pykka.",
    "actorhw.tree", "actorhw.api", "actorhw.programming", "actorhw.scenario", "actorhw.cli")))
print(",".join(loaded))
"""


def test_links_and_a_bundled_driver_load_without_pykka_or_the_tree() -> None:
    driver = ROOT / "actors" / "sim" / "drv_sim.py"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(driver)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"loaded above their layer: {done.stdout.strip()}"


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.find_modules_directly_imported_by(node) & modules:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_in_actorhw() -> None:
    graph = grimp.build_graph("actorhw", include_external_packages=False)
    modules = {m for m in graph.modules if m.startswith("actorhw")}
    assert len(modules) > 30
    assert _cycles(graph, modules) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("x.a", "x.b", "x.c"):
        graph.add_module(name)
    graph.add_import(importer="x.a", imported="x.b")
    graph.add_import(importer="x.b", imported="x.a")
    graph.add_import(importer="x.b", imported="x.c")
    assert _cycles(graph, {"x.a", "x.b", "x.c"}) == [["x.a", "x.b"]]
