"""Public path ``actorhw.codec``; the code lives in :mod:`actorhw.core.codec`."""

from actorhw.core.codec import *  # noqa: F403
