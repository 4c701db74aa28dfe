"""The built docs in a real browser: headless Chromium renders the pages at 1280 px.

The site is built with ``mkdocs build --strict`` and served on localhost; Chromium
(Debian package ``chromium``, installed by ``./dev.sh test``) loads each page through
the DevTools protocol (a websocket), and the test asserts, per page: no raw Sphinx roles
and no wording addressed to the developers ("the seeds'") in the text, no code block
that scrolls sideways, no page wider than the window, and no internal link to a missing
page or anchor. Without Chromium the test FAILS.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1280, 900


def _nav_pages() -> list[str]:
    """Every page of the nav, as site paths (``index.md`` -> ``""``)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:", 1)[1]
    pages = re.findall(r"([\w./-]+)\.md\s*$", nav, re.M)
    return ["" if p == "index" else f"{p}/" for p in pages]


PAGES = _nav_pages()
STEP_TIMEOUT = 60.0
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", f"--window-size={WIDTH},{HEIGHT}",
]  # fmt: skip

#: Runs in the page: what the test checks, as JSON.
PROBE = """
(() => {
  const roles = [...document.body.innerText.matchAll(
      /:(meth|class|func|attr|mod|data|exc|obj):`[^`]*`/g)].map(m => m[0]);
  const us = [...document.body.innerText.matchAll(/[^.\\n]*\\bseeds'[^.\\n]*/g)].map(m => m[0]);
  const boxes = "pre, pre > code, .highlight, table, .md-typeset__scrollwrap";
  const blocks = [...document.querySelectorAll(boxes)]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => ({tag: e.tagName, over: e.scrollWidth - e.clientWidth,
                text: e.innerText.split("\\n").sort((a, b) => b.length - a.length)[0]}));
  const links = [...document.querySelectorAll("a[href]")].map(a => a.href);
  const ids = [...document.querySelectorAll("[id]")].map(e => e.id);
  return JSON.stringify({
    title: document.title, roles, us, blocks, links, ids,
    page: {scroll: document.documentElement.scrollWidth,
           client: document.documentElement.clientWidth},
    width: window.innerWidth,
  });
})()
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is required for this test: apt-get install chromium (./dev.sh test does)",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The docs, built strict and served on localhost; yields the base URL."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(out))
    # One thread serves every request (HTTP/1.0: a connection per request), so no
    # request thread outlives a test.
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="docs-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Page:
    """One Chromium tab, driven through the DevTools protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._next = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        self.ws.send(json.dumps({"id": self._next, "method": method, "params": params}))
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == self._next:
                assert "error" not in message, message
                result: dict[str, Any] = message.get("result", {})
                return result

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("method") == method:
                params: dict[str, Any] = message.get("params", {})
                return params

    def open(self, url: str) -> dict[str, Any]:
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")
        found = self.call("Runtime.evaluate", expression=PROBE, returnByValue=True)
        probe: dict[str, Any] = json.loads(found["result"]["value"])
        return probe


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """A fresh headless Chromium (its own profile) and one tab at 1280 x 900."""
    binary = chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + STEP_TIMEOUT
        while not (active.exists() and active.read_text().count("\n") >= 1):
            assert proc.poll() is None, f"chromium exited {proc.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)  # polling a file another process writes; bounded above
        port = active.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        tab = next(t for t in targets if t["type"] == "page")
        with connect(tab["webSocketDebuggerUrl"], max_size=2**26, open_timeout=10) as ws:
            p = Page(ws)
            p.call("Page.enable")
            p.call(
                "Emulation.setDeviceMetricsOverride",
                width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False,
            )  # fmt: skip
            yield p
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)


@functools.cache
def _fetch(url: str) -> tuple[int, frozenset[str]]:
    """Status and element ids of a page of the local site."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            parser = _Ids()
            if "html" in r.headers.get("Content-Type", ""):
                parser.feed(r.read().decode("utf-8", "replace"))
            return r.status, frozenset(parser.ids)
    except urllib.error.HTTPError as e:
        return e.code, frozenset()


@pytest.mark.parametrize("path", PAGES, ids=[p.strip("/") or "index" for p in PAGES])
def test_page_renders_clean_at_1280_px(site: str, page: Page, path: str) -> None:
    url = urljoin(site, path)
    probe = page.open(url)
    assert probe["width"] == WIDTH, probe["width"]
    assert probe["title"] and "404" not in probe["title"], probe["title"]
    assert probe["roles"] == [], f"raw Sphinx roles on {url}: {probe['roles'][:10]}"
    assert probe["us"] == [], f"wording addressed to the developers on {url}: {probe['us']}"
    assert probe["blocks"] == [], f"blocks that scroll sideways on {url}: {probe['blocks']}"
    assert probe["page"]["scroll"] <= probe["page"]["client"], probe["page"]

    base = urlparse(site)
    broken = []
    for link in probe["links"]:
        target, fragment = urldefrag(link)
        parsed = urlparse(target)
        if parsed.scheme in ("http", "https") and parsed.netloc != base.netloc:
            assert parsed.netloc, link  # an external link: well formed, not fetched
            continue
        if parsed.scheme not in ("http", "https"):
            continue  # mailto: and the like
        if target.rstrip("/") == url.rstrip("/"):
            status, ids = 200, frozenset(probe["ids"])
        else:
            status, ids = _fetch(target)
        if status != 200:
            broken.append(f"{link} -> HTTP {status}")
        elif fragment and fragment not in ids:
            broken.append(f"{link} -> no element with id {fragment!r}")
    assert broken == [], f"broken links on {url}:\n" + "\n".join(broken)
    if path == "api/":
        assert re.search(r"Runtime", " ".join(probe["ids"])), "the API page lost its anchors"
