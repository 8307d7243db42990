"""The documentation site, built with mkdocs and opened in a real headless Chromium over the DevTools protocol.

Every page loads without a console error or a failed request and fetches nothing from outside the site, the search
finds a config key, and no internal link (nor its #anchor) is broken. The site is built into a temporary directory
(`mkdocs build --strict`, a few seconds), or taken from MLPLAB_SITE_DIR when .ci/run has built it already.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.test_report_browser import BROWSER, DevTools

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")

PROBE = "mlplab-site-test-probe"  # a page that logs a console error, to prove the detector sees them


class Links(HTMLParser):
    """Every href/src of a page, and every id and name an anchor can point at."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src") and not (tag == "link" and ("rel", "preconnect") in attrs):
                self.targets.append(value)
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: MLPLAB_SITE_DIR if set, else `mkdocs build --strict` into a temporary directory."""
    given = os.environ.get("MLPLAB_SITE_DIR")
    if given:
        assert (Path(given) / "index.html").exists(), f"MLPLAB_SITE_DIR={given} holds no built site"
        return Path(given)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html" and "assets" not in p.parts)


def url_path(site: Path, page: Path) -> str:
    relative = page.relative_to(site).as_posix()
    return "/" + (relative[: -len("index.html")] if relative.endswith("index.html") else relative)


def test_the_site_has_a_page_per_command_and_topic(site: Path) -> None:
    for path in (
        "getting-started",
        "guide/train",
        "guide/evaluate",
        "guide/predict",
        "guide/export",
        "guide/gradcheck",
        "guide/theory",
        "guide/sweep",
        "guide/tune",
        "guide/reproduce",
        "guide/randomize",
        "guide/keys",
        "guide/config_keys",
        "guide/data",
        "guide/threads",
        "guide/files",
        "concepts/engine",
        "performance",
        "reference/training",
        "faq",
        "changelog",
        "tutorials/01_assignment",
    ):
        assert (site / path / "index.html").exists(), path
    api = (site / "reference" / "training" / "index.html").read_text()
    assert "fit_until_memorized" in api and "best-by-validation snapshot" in api  # mkdocstrings read the docstrings
    assert "git log" in (site / "changelog" / "index.html").read_text()


def test_no_internal_link_is_broken(site: Path) -> None:
    parsed: dict[str, Links] = {}
    for page in pages(site):
        links = Links()
        links.feed(page.read_text(encoding="utf-8"))
        parsed[url_path(site, page)] = links
    broken = []
    checked = 0
    for source, links in parsed.items():
        for target in links.targets:
            resolved = urlsplit(urljoin(f"http://site{source}", target))
            if resolved.netloc != "site" or target.startswith(("data:", "mailto:", "javascript:")):
                continue
            path = unquote(resolved.path)
            file = site / path.lstrip("/")
            if file.is_dir() or path.endswith("/"):
                file = file / "index.html"
            checked += 1
            if not file.exists():
                broken.append(f"{source} → {target}")
            elif resolved.fragment and file.suffix == ".html":
                target_links = parsed.get(path if path.endswith((".html", "/")) else path + "/")
                if target_links is not None and unquote(resolved.fragment) not in target_links.ids:
                    broken.append(f"{source} → {target} (no such anchor)")
    assert broken == []
    assert checked > 1000  # every page links the whole navigation: the parser really saw the links


def test_search_index_holds_the_config_keys(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text())
    texts = {doc["location"]: doc["text"] for doc in index["docs"]}
    assert any("learning_rate" in text for text in texts.values())
    assert any("MLPLAB_DATA" in text for text in texts.values())
    assert any(location.startswith("guide/config_keys/") for location in texts)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The site (plus one probe page that logs a console error) over HTTP on 127.0.0.1, in a thread."""
    root = tmp_path_factory.mktemp("served") / "site"
    shutil.copytree(site, root)
    (root / f"{PROBE}.html").write_text(f"<!doctype html><title>probe</title><script>console.error('{PROBE}')</script>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def problems_in(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and failed requests among DevTools events."""
    found = []
    for e in events:
        method, params = e["method"], e["params"]
        if method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails'].get('text')} {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            found.append(f"console.error: {[a.get('value') for a in params['args']]}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"request failed: {params.get('errorText')}")
    return found


SEARCH_JS = """(() => {
  const items = Array.from(document.querySelectorAll('.md-search-result__item'));
  const meta = document.querySelector('.md-search-result__meta');
  return JSON.stringify({count: items.length, meta: meta ? meta.textContent : '',
                         first: items.length ? items[0].textContent : ''});
})()"""


async def visit_all(ws_url: str, base: str, paths: list[str]) -> dict[str, Any]:
    """Open every path in turn; each page's problems and requested URLs, then a search typed into the search box."""
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(ws_url, max_message_size=256 * 1024 * 1024)
    tools = DevTools(connection)
    for domain in ("Page", "Runtime", "Log", "Network"):
        await tools.call(f"{domain}.enable")
    seen: dict[str, Any] = {}
    for path in paths:
        tools.events.clear()
        await tools.call("Page.navigate", url=base + path)
        await tools.wait_event("Page.loadEventFired")
        await asyncio.sleep(0.05)  # scripts that run right after load (search worker start-up) report here
        await tools.call("Runtime.evaluate", expression="1", returnByValue=True)
        events = list(tools.events)
        seen[path] = {
            "problems": problems_in(events),
            "requests": [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"],
        }
    # Search as a reader does: the box on the home page, a config key typed in, the results list filled.
    tools.events.clear()
    await tools.call("Page.navigate", url=base + "/")
    await tools.wait_event("Page.loadEventFired")
    await tools.call(
        "Runtime.evaluate",
        expression="""(() => { const box = document.querySelector('input.md-search__input');
            box.focus(); box.value = 'learning_rate'; box.dispatchEvent(new Event('input', {bubbles: true}));
            box.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true, key: 'e'})); })()""",
    )
    search: dict[str, Any] = {"count": 0}
    deadline = time.monotonic() + 20
    while search["count"] == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        result = await tools.call("Runtime.evaluate", expression=SEARCH_JS, returnByValue=True)
        search = json.loads(result["result"]["value"])
    search["problems"] = problems_in(tools.events)
    connection.close()
    return {"pages": seen, "search": search}


def run_browser(base: str, paths: list[str]) -> dict[str, Any]:
    profile = Path(tempfile.mkdtemp(prefix="mlplab-chromium-"))
    args = [
        str(BROWSER),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "--window-size=1200,900",
        "about:blank",
    ]
    browser = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if browser.poll() is not None or time.monotonic() > deadline:
                pytest.skip("Chromium did not start its DevTools endpoint here")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        return asyncio.run(visit_all(ws_url, base, paths))
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow  # about 30 s: some 70 pages, one after another
@pytest.mark.skipif(BROWSER is None, reason="no Chromium here (.ci/run installs Debian's chromium)")
def test_every_page_loads_cleanly_and_search_finds_a_config_key(site: Path, served: tuple[str, Path]) -> None:
    base, _ = served
    paths = [url_path(site, page) for page in pages(site)]
    assert len(paths) >= 50
    seen = run_browser(base, [f"/{PROBE}.html", *paths])

    probe = seen["pages"].pop(f"/{PROBE}.html")
    assert any(PROBE in problem for problem in probe["problems"]), probe  # the detector does see console errors

    failing = {path: page["problems"] for path, page in seen["pages"].items() if page["problems"]}
    assert failing == {}
    outside = sorted(
        {url for page in seen["pages"].values() for url in page["requests"] if not url.startswith((base, "data:"))}
    )
    assert outside == []  # the site works offline: no fonts, scripts or images from elsewhere
    assert all(page["requests"] for page in seen["pages"].values())  # requests were really recorded

    search = seen["search"]
    assert search["problems"] == []
    assert search["count"] >= 1, search
    assert "matching document" in search["meta"] and "learning_rate" in search["first"], search
