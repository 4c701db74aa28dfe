"""Jobs: progress events of a multi-device job."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class JobProgress:
    """Event: a target of a multi-device job started or ended (see actorhw.jobs)."""

    job: str
    """The job's name."""
    total: int
    """How many targets the job has."""
    running: int
    """How many run now."""
    succeeded: int
    """How many returned a value."""
    failed: int
    """How many raised."""
    target: str
    """The target this event is about ("" for a snapshot)."""
    what: str
    """``started``, ``succeeded``, ``failed``, or "" for a snapshot."""
    at: float
    """Wall-clock time (seconds since the epoch)."""
