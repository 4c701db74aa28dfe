"""Testing: the pytest plugin and the public test kit (leak checks, fixtures).

Beside the layers; may import api and below.
"""

from actorhw.testing.plugin import *  # noqa: F403
