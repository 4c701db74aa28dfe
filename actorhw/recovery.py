"""Public path ``actorhw.recovery``; the code lives in :mod:`actorhw.core.recovery`."""

from actorhw.core.recovery import *  # noqa: F403
