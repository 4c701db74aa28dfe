"""Argument types of the ``actorhw`` options: numbers checked where they are parsed.

A bad value is a usage error (exit 2) that says what is allowed, never a traceback or a
deadline that silently became 0 s.
"""

from __future__ import annotations

import argparse
import math

#: The longest deadline an option takes, in s (a day; longer waits overflow the OS).
MAX_SECONDS = 86400.0


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    return value


def seconds(text: str) -> float:
    """A deadline: a number of seconds in (0, MAX_SECONDS]."""
    value = _number(text)
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text} is not a deadline in (0, {MAX_SECONDS:g}] seconds"
        )
    return value


def interval(text: str) -> float:
    """A pause: a number of seconds in [0, MAX_SECONDS]."""
    value = _number(text)
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} is not a pause in [0, {MAX_SECONDS:g}] seconds")
    return value
