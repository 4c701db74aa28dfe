"""Public path ``actorhw.lifecycle``; the code lives in :mod:`actorhw.core.lifecycle`."""

from actorhw.core.lifecycle import *  # noqa: F403
