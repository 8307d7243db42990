"""report.html in a real headless Chromium, driven over the DevTools protocol: it loads without errors, fetches
nothing from outside the file, every image decodes, and a full-page screenshot is taken."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mlplab.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


BROWSER = find_browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium here (.ci/run installs Debian's chromium)")

IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
    complete: i.complete, width: i.naturalWidth, height: i.naturalHeight, alt: i.alt})))"""


class DevTools:
    """A minimal Chrome DevTools Protocol client over tornado's websocket (tornado comes with dask)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        wanted = self.next_id
        await self.connection.write_message(json.dumps({"id": wanted, "method": method, "params": params}))
        while True:
            message = await self.receive()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def receive(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.read_message(), timeout=60)
        if raw is None:
            raise RuntimeError("the browser closed the DevTools connection")
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message

    async def wait_event(self, method: str) -> dict[str, Any]:
        seen = next((e for e in self.events if e["method"] == method), None)
        while seen is None:
            message = await self.receive()
            if message.get("method") == method:
                seen = message
        return seen


async def inspect(ws_url: str, page: Path, screenshot: Path) -> dict[str, Any]:
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(ws_url, max_message_size=256 * 1024 * 1024)
    tools = DevTools(connection)
    for domain in ("Page", "Runtime", "Log", "Network"):
        await tools.call(f"{domain}.enable")
    await tools.call("Page.navigate", url=page.resolve().as_uri())
    await tools.wait_event("Page.loadEventFired")
    result = await tools.call("Runtime.evaluate", expression=IMAGES_JS, returnByValue=True)
    images = json.loads(result["result"]["value"])
    metrics = await tools.call("Page.getLayoutMetrics")
    size = metrics["cssContentSize"]
    shot = await tools.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    )
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    connection.close()
    return {"images": images, "events": tools.events, "height": size["height"]}


def browse(page: Path, screenshot: Path) -> dict[str, Any]:
    """Open `page` in headless Chromium, return its images and DevTools events, save a full-page screenshot."""
    profile = Path(tempfile.mkdtemp(prefix="mlplab-chromium-"))
    args = [
        BROWSER,
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
        return asyncio.run(inspect(ws_url, page, screenshot))
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reproduce")
    assert main(["reproduce", "--dataset", "digits", "--set", "epochs=3", "--workers", "1", "--out", str(out)]) == 0
    return out


def test_report_html_loads_cleanly_in_chromium(report: Path, tmp_path: Path) -> None:
    html = report / "report.html"
    screenshot = Path(os.environ.get("MLPLAB_SCREENSHOT", tmp_path / "report.png"))
    seen = browse(html, screenshot)

    errors = [
        e
        for e in seen["events"]
        if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
    ]
    assert errors == []
    requested = [e["params"]["request"]["url"] for e in seen["events"] if e["method"] == "Network.requestWillBeSent"]
    assert all(url.startswith(("file:", "data:")) for url in requested), requested  # nothing from outside

    figures_in_markdown = (report / "report.md").read_text().count("![")
    images = seen["images"]
    assert len(images) == figures_in_markdown >= 10
    for image in images:
        assert image["complete"] and image["width"] >= 400 and image["height"] >= 200, image
        assert image["alt"]

    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000
    assert seen["height"] > 3000  # the full page, tables and every figure, not just the first screen


def test_evaluation_report_loads_cleanly_with_its_figures(tmp_path: Path) -> None:
    from mlplab import config
    from mlplab.run import train_run

    train_run(config.resolve(None, ["epochs=3", "threads=1", "learning_rate=0.2", "momentum=0.9"]), tmp_path / "run")
    out = tmp_path / "evaluation"
    assert main(["evaluate", str(tmp_path / "run" / "model.npz"), "--report", str(out)]) == 0
    seen = browse(out / "report.html", tmp_path / "evaluation.png")
    problems = [e for e in seen["events"] if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")]
    assert problems == []
    requested = [e["params"]["request"]["url"] for e in seen["events"] if e["method"] == "Network.requestWillBeSent"]
    assert all(url.startswith(("file:", "data:")) for url in requested), requested
    images = seen["images"]
    assert len(images) == 2  # confusion matrix and the gallery of mistakes
    for image in images:
        assert image["complete"] and image["width"] >= 400 and image["height"] >= 200 and image["alt"], image
