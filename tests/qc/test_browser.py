"""The report in a real browser: headless Chromium (Debian's package) driven over the DevTools protocol.

Chromium is started with `--remote-debugging-pipe`: it reads protocol commands from file
descriptor 3 and writes replies and events to descriptor 4, NUL-terminated JSON, so no port
and no extra Python package are needed. (The new headless mode no longer prints console
messages with `--enable-logging`, so the console is read through the protocol's Runtime and Log
events.) When Chromium is missing, the test installs it with apt-get as root, or skips.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
WIDTH, HEIGHT = 1200, 3000


def chromium() -> str:
    """The Chromium executable; installed from Debian's packages when missing and this is root.

    Raises:
        RuntimeError: there is none and it cannot be installed here (the reason why).
    """
    found = next((shutil.which(name) for name in EXECUTABLES if shutil.which(name)), None)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("chromium is not installed, and installing it needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return shutil.which("chromium") or "chromium"


class Browser:
    """One headless Chromium and its DevTools pipe; `open` loads a page in a new tab."""

    def __init__(self, executable: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()  # we write, Chromium reads on fd 3
        self._replies, replies_write = os.pipe()  # Chromium writes on fd 4, we read

        def on_fds_3_and_4() -> None:
            os.dup2(commands_read, 3)
            os.dup2(replies_write, 4)

        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--mute-audio", f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}",
             "about:blank"],
            pass_fds=(3, 4), preexec_fn=on_fds_3_and_4, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(commands_read)
        os.close(replies_write)
        self._buffer, self._next_id = b"", 0
        self.events: list[dict] = []

    def _receive(self, until, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if until(message):
                    return message
            ready, _, _ = select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed its DevTools pipe")
            self._buffer += chunk

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one protocol command and return its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        reply = self._receive(lambda m: m.get("id") == message["id"])
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def open(self, url: str) -> str:
        """Load `url` in a new tab of WIDTH x HEIGHT with console and network events on; its session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        metrics = {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        self._receive(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)
        return session

    def evaluate(self, expression: str, session: str) -> object:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session
        )
        return result["result"].get("value")

    def errors(self, session: str) -> list[str]:
        """Console errors, uncaught exceptions and failed loads the page has logged."""
        found = []
        for event in (e for e in self.events if e.get("sessionId") == session):
            method, params = event["method"], event["params"]
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value') for a in params['args']]}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry']['source']}: {params['entry']['text']} {params['entry'].get('url', '')}")
        return found

    def requested(self, session: str) -> list[str]:
        """URLs of every request the page made."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("sessionId") == session and e["method"] == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        """Close Chromium (politely, then by force) and the pipes."""
        try:
            self.call("Browser.close")
        except (OSError, EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A headless Chromium for the module's tests."""
    try:
        executable = chromium()
    except RuntimeError as error:
        pytest.skip(f"no Chromium to test the report in: {error}")
    started = Browser(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield started
    started.close()


VIDEO_STATE = """
Promise.all(Array.from(document.querySelectorAll("video")).map(v => v.readyState >= 1 ? null : new Promise(done => {
    v.addEventListener("loadedmetadata", done); v.addEventListener("error", done); setTimeout(done, 15000);
}))).then(() => Array.from(document.querySelectorAll("video")).map(
    v => ({ready: v.readyState, error: v.error ? v.error.code : null, width: v.videoWidth, duration: v.duration})))
"""


def test_the_harness_sees_console_errors(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><p>x</p><script>console.error("boom"); missingFunction();</script>')
    errors = browser.errors(browser.open(page.as_uri()))
    assert any("boom" in e for e in errors) and any(e.startswith("exception") for e in errors)


def test_report_loads_without_errors_plays_its_clips_and_is_not_blank(browser, archive_report, page):
    html, _, _ = archive_report
    text = html.read_text(encoding="utf-8")
    for tag, name, value in page(text).attributes:
        if name in ("src", "href"):
            assert not value.startswith(("http:", "https:", "//")), (tag, value[:80])
    session = browser.open(html.as_uri())
    videos = browser.evaluate(VIDEO_STATE, session)
    assert len(videos) == 2, "the clips of the two videos with trajectories"
    for video in videos:
        assert video["error"] is None and video["ready"] >= 1
        assert video["width"] == 160 and video["duration"] == pytest.approx(1.0, abs=0.05)
    assert browser.errors(session) == []
    requested = browser.requested(session)
    assert requested and all(url.startswith(("file:", "data:")) for url in requested), requested[:5]
    shot = base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"}, session)["data"])
    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))  # (H, W, 3)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert (image.min(axis=-1) < 200).mean() > 0.05, "much of the page is drawn on"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1000, "figures and frames, not only text"
