"""Where the bundled driver plugins (actors/) and board files (boards/) live.

In a wheel they are packed under ``actorhw/_bundled/``; in a source checkout (and an
editable install) they are the top-level ``actors/`` and ``boards/`` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # the actorhw package


def bundled_dir(name: str) -> Path:
    """The bundled folder ``name`` ("actors" or "boards"), wherever it was installed."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"actorhw is installed without its bundled {name}/ folder")
