"""The docs build with ``mkdocs build --strict``, and the nav lists every page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"


def nav_pages(items: Any) -> set[str]:
    """Every page path in an mkdocs nav (nested lists of str or {title: ...})."""
    pages: set[str] = set()
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, str):
            pages.add(item)
        elif isinstance(item, dict):
            for value in item.values():
                pages |= nav_pages(value)
    return pages


def test_nav_lists_every_page() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    listed = nav_pages(config["nav"])
    pages = {
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if "examples" not in p.relative_to(DOCS).parts
    }
    assert pages - listed == set(), "pages missing from the nav in mkdocs.yml"
    assert listed - pages == set(), "the nav in mkdocs.yml lists pages that do not exist"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # the snippets were included: the code in the pages is the examples' code
    service = (site / "service" / "index.html").read_text()
    assert "GracefulServer" in service
    assert "--8&lt;--" not in service and "--8<--" not in service
    api = (site / "api" / "index.html").read_text()
    assert "AsyncRuntime" in api and "DeviceBusyError" in api
