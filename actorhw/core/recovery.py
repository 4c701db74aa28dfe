"""Restart intensity and exponential backoff for board recovery.

Defaults follow the supervision issue: at most 5 restarts in 30 s per board, backoff
from 0.5 s to 30 s by a factor of 2 with 20% jitter; the first try after a stable
period is immediate.
"""

from __future__ import annotations

import collections
import random
import time

import attrs


@attrs.frozen(kw_only=True)
class RecoveryPolicy:
    """How hard a board's supervisor tries before it quarantines the board."""

    max_restarts: int = 5
    """Restarts allowed within ``window`` s; one more quarantines the board."""
    window: float = 30.0
    """The intensity window, s."""
    min_backoff: float = 0.5
    """Delay before the second try, s."""
    max_backoff: float = 30.0
    """Largest delay between tries, s."""
    factor: float = 2.0
    """Growth of the delay per failed try."""
    jitter: float = 0.2
    """Fraction of the delay randomised, so boards do not retry in lockstep."""
    stable_after: float = 10.0
    """A board CONNECTED this long counts as stable: the next fault starts afresh."""
    step_timeout: float = 5.0
    """Deadline of each escalation step (reconnect, power cycle, rediscovery), s."""
    reset_timeout: float = 0.3
    """Deadline of the soft-reset step, s: short, since a hung board never answers it."""
    watch_every: float = 0.25
    """How often a CONNECTED board's actor asks its driver, without I/O, whether the
    link is still there (a closed port, an exited process), s."""
    probe_every: float = 3.0
    """How often a CONNECTED board is probed with one cheap round trip (skipped while
    its I/O is busy), so a hang is found before a user's call meets it, s; 0: never."""
    probe_timeout: float = 1.0
    """Deadline of one probe, s; a board that then answers Ctrl-C is slow, not hung."""


#: The jitter's random source, shared (random.Random is safe across threads).
_JITTER = random.Random()


class RestartTracker:
    """Counts restarts in the window and computes the next delay."""

    def __init__(self, policy: RecoveryPolicy, *, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._times: collections.deque[float] = collections.deque()
        self._rng = rng or _JITTER  # one per tracker would cost 2.5 KiB per device
        self.failures_in_row = 0

    def record(self, now: float | None = None) -> None:
        """Note one restart."""
        self._times.append(time.monotonic() if now is None else now)

    def exhausted(self, now: float | None = None) -> bool:
        """Whether the restarts in the window reached the limit."""
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] > self.policy.window:
            self._times.popleft()
        return len(self._times) >= self.policy.max_restarts

    def delay(self) -> float:
        """Seconds to wait before the next try: 0 for the first, then backoff."""
        n = self.failures_in_row
        if n == 0:
            return 0.0
        p = self.policy
        base = min(p.max_backoff, p.min_backoff * p.factor ** (n - 1))
        return max(0.0, base * (1 + self._rng.uniform(-p.jitter, p.jitter)))

    def reset(self) -> None:
        """Forget everything (an operator's reset)."""
        self._times.clear()
        self.failures_in_row = 0
