"""Errors declare their context as typed attributes: every keyword an error is raised
with in actorhw/ and actors/ is a Field of its class, read back typed and defaulted."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import actorhw.core.error_base as error_base
import actorhw.core.errors as errors_module
from actorhw.core.errors import (
    ActorHwError,
    DeviceBusyError,
    DeviceExceptionError,
    Field,
    TimedOutError,
)
from actorhw.tree.supervision import ActorCrashError

ROOT = Path(__file__).resolve().parents[2]

ERRORS: dict[str, type[ActorHwError]] = {
    name: obj
    for name, obj in vars(errors_module).items()
    if inspect.isclass(obj) and issubclass(obj, ActorHwError)
}
ERRORS["ActorCrashError"] = ActorCrashError


def _raise_sites() -> list[tuple[str, int, str, frozenset[str]]]:
    sites = []
    for folder in ("actorhw", "actors"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in ERRORS:
                    keys = frozenset(k.arg for k in node.keywords if k.arg is not None)
                    sites.append((str(path.relative_to(ROOT)), node.lineno, name, keys))
    return sites


def test_every_context_keyword_raised_is_declared_on_its_error() -> None:
    sites = _raise_sites()
    assert len(sites) > 150  # the scan sees the raise sites
    undeclared = [
        f"{path}:{line}: {name}({', '.join(sorted(keys - ERRORS[name].fields()))}=...)"
        for path, line, name, keys in sites
        if keys - ERRORS[name].fields()
    ]
    assert not undeclared, "\n".join(undeclared)


def test_context_reads_back_typed_and_defaults_when_not_given() -> None:
    busy = DeviceBusyError("busy", device="b.UART0", owners=("a", "b"), owners_count=2)
    assert (busy.device, tuple(busy.owners), busy.owners_count) == ("b.UART0", ("a", "b"), 2)
    bare = DeviceBusyError("busy")
    assert (bare.device, tuple(bare.owners), bare.owners_count) == ("", (), 0)
    assert TimedOutError("t", timeout=1.5).resynced is False
    assert DeviceExceptionError("x", exc_name="MemoryError").exc_name == "MemoryError"
    assert busy.to_dict() == {
        "code": "device_or_resource_busy",
        "message": "busy",
        "device": "b.UART0",
        "owners": ["a", "b"],
        "owners_count": 2,
    }
    assert isinstance(vars(DeviceBusyError)["owners"], Field)
    assert "setattr" not in inspect.getsource(errors_module)
    assert "setattr" not in inspect.getsource(error_base)


def test_no_caller_reads_a_declared_context_through_getattr() -> None:
    declared = set().union(*(error.fields() for error in ERRORS.values()))
    pattern = re.compile(r"""getattr\(\s*(?:e|err|error|exc)\s*,\s*["'](\w+)["']""")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for folder in ("actorhw", "actors")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in pattern.finditer(line)
        if m.group(1) in declared
    ]
    assert not found, "read the typed attribute instead:\n" + "\n".join(found)
