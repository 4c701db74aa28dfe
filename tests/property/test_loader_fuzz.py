"""Fuzz: malformed scenario and board files get a typed error naming the file, in time.

Each example is a valid file mutated the way hostile or careless input is (issue 13,
items 10-12): bytes flipped, inserted or cut; the text re-encoded as UTF-16 or Latin-1;
values swapped for huge, infinite, NaN or deeply nested ones; keys renamed. The loader
must either accept the file or raise its file kind's error (invalid_scenario_file,
invalid_board_file) whose message starts with the file's path, within a bound time.
Nothing else may escape: no RecursionError, OverflowError, UnicodeDecodeError, KeyError.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorhw.core.errors import ActorHwError, BoardDefinitionError, ScenarioFileError
from actorhw.drivers.definitions import BoardCatalog
from actorhw.scenario import load_scenario

pytestmark = pytest.mark.timeout(300)

#: Seconds one load may take (a 4 MiB file parses in about one on a busy machine).
BOUND = 10.0
ROOT = Path(__file__).resolve().parents[2]
SCENARIO = (ROOT / "scenarios" / "quickstart.toml").read_bytes()
BOARD = (ROOT / "boards" / "same70-xplained.toml").read_bytes()
CATALOG = BoardCatalog.discover()

VALUES = st.sampled_from(
    [b"1e308", b"inf", b"nan", b"-inf", b"2e70", b"-1", b"0", b"1" + b"0" * 40, b'""',
     b"[" * 5000 + b"]" * 5000, b"{a={b={c={d={}}}}}", b"[" * 80 + b"]" * 80, b"true",
     b'"\\u0000"', b'"${nope}"', b"{ bytes = 3 }", b"[1, 'a', {x = 1}]"]
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "cut", "value", "key", "encode"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8) | VALUES)
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "value":
            eq = data.find(b"= ", at)
            end = data.find(b"\n", eq)
            if eq >= 0 and end > eq:
                data[eq + 2 : end] = draw(VALUES)
        elif kind == "key":
            start = data.rfind(b"\n", 0, at) + 1
            data[start:start] = draw(st.sampled_from([b"bogus = 1\n", b"timeout = nan\n"]))
        else:
            text = bytes(data).decode("utf-8", "replace")
            codec = draw(st.sampled_from(["utf-16", "utf-16-be", "latin-1", "cp1252"]))
            data = bytearray(text.encode(codec, "replace"))
    return bytes(data)


def check(path: Path, load: object, error: type[ActorHwError]) -> None:
    began = time.monotonic()
    try:
        load()  # type: ignore[operator]
    except error as e:
        assert e.message.startswith(str(path)), e.message
        assert e.context.get("file") == str(path)
    elapsed = time.monotonic() - began
    assert elapsed < BOUND, f"{elapsed:.1f} s"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(SCENARIO))
def test_malformed_scenario_files(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.toml"
        path.write_bytes(content)
        check(path, lambda: load_scenario(path, catalog=CATALOG), ScenarioFileError)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(BOARD))
def test_malformed_board_files(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.toml"
        path.write_bytes(content)
        check(path, lambda: BoardCatalog.discover([tmp]), BoardDefinitionError)


@pytest.mark.parametrize("kind", ["scenario", "board"])
def test_files_past_the_size_limit_are_refused_in_time(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "big.toml"
    line = b"# padding padding padding padding padding padding padding padding padding\n"
    path.write_bytes((SCENARIO if kind == "scenario" else BOARD) + line * 150_000)  # ~11 MB
    if kind == "scenario":
        check(path, lambda: load_scenario(path, catalog=CATALOG), ScenarioFileError)
    else:
        check(path, lambda: BoardCatalog.discover([tmp_path]), BoardDefinitionError)
    with pytest.raises(ActorHwError, match="4 MiB limit"):
        load_scenario(path, catalog=CATALOG) if kind == "scenario" else BoardCatalog.discover(
            [tmp_path]
        )
