"""CLI: the ``actorhw`` command; ``main()`` is the one place errors become exit codes.

May import: every layer below.
"""

from actorhw.cli.main import main

__all__ = ["main"]
