"""Logging through loguru: silent when embedded, verbose on request.

actorhw disables its own records at import (loguru's library convention); the host
application or the CLI's ``--verbose`` calls :func:`enable`.  Records are bound to
``device`` and ``owner`` where they concern one.
"""

from __future__ import annotations

import sys
from typing import TextIO

from loguru import logger

logger.disable("actorhw")

__all__ = ["enable", "logger"]


def enable(level: str = "INFO", *, sink: TextIO | None = None) -> int:
    """Turn actorhw's records on, to stderr or ``sink``; returns the loguru handler id."""
    logger.enable("actorhw")
    fmt = "<green>{time:HH:mm:ss.SSS}</green> {level: <7} <cyan>{extra[device]}</cyan> {message}"
    return logger.add(
        sink or sys.stderr,
        level=level,
        format=fmt,
        filter=lambda r: r["extra"].setdefault("device", "-") is not None,
    )
