"""Every test runs under the leak check: no actor or thread may outlive it."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_leaks(no_leaks: None) -> None:
    """Apply actorhw.testing's no_leaks to every test."""
