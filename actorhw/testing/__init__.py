"""Testing: the pytest plugin and the public test kit (leak checks, fixtures).

Beside the layers; may import api and below.  See docs/testing.md.
"""

from actorhw.testing.plugin import *  # noqa: F403
from actorhw.testing.plugin import __all__ as __all__
