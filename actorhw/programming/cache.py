"""The host-side result cache of ``@task(cache_ms=...)``: per (task, call) until expiry."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

__all__ = ["ResultCache"]


class ResultCache:
    """Results per (task name, board-side call), each kept ``ttl_ms``; copies in and out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, name: str, call: str) -> tuple[Any] | None:
        """``(value,)`` (a copy) if cached and fresh, else None."""
        with self._lock:
            hit = self._entries.get((name, call))
            if hit is None or hit[0] <= time.monotonic():
                return None
            return (copy.deepcopy(hit[1]),)

    def put(self, name: str, call: str, value: Any, ttl_ms: int) -> None:
        """Keep a copy of ``value`` for ``ttl_ms``."""
        with self._lock:
            self._entries[(name, call)] = (time.monotonic() + ttl_ms / 1000, copy.deepcopy(value))

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
