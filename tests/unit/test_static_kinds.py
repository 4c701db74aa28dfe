"""mypy flags a wrong kind where the kind is known statically."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mypy_snippet import mypy_snippet

pytestmark = pytest.mark.timeout(120)

SNIPPET = """
from actorhw import Runtime, Spi, Uart

def use(rt: Runtime, ids: type) -> None:
    uart = rt.lease(Uart, ids.UART0, owner="a")
    uart.write(b"ok")
    uart.transfer(b"x")
    spi: Spi = rt.get(Uart, ids.UART0)
"""


def test_mypy_flags_wrong_kind(tmp_path: Path) -> None:
    result = mypy_snippet(tmp_path, SNIPPET)
    out = result.stdout
    assert '"Uart" has no attribute "transfer"' in out, out
    assert (
        'Incompatible types in assignment (expression has type "Uart", variable has type "Spi")'
        in out
    ), out
    assert "snippet.py:6:" not in out  # the right call type-checks
    assert result.returncode == 1
