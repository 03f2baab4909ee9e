"""Open an HTML file in headless Chromium, screenshot it, and return its console errors.

Chromium is driven through the DevTools protocol with a tiny standard-library websocket client
(no selenium/playwright), so the only requirement is the browser binary: Debian's
``apt-get install -y chromium`` (``/usr/bin/chromium``; ``TVBETA_CHROMIUM`` overrides the path).
Tests calling :func:`screenshot_html` are skipped, with the reason, when it is absent.

The page is loaded with the network emulated OFFLINE, so a figure that needs a CDN (not
self-contained) fails to render and reports errors. Errors collected: uncaught exceptions,
``console.error``/``console.assert`` calls and browser log entries of level "error" (e.g. a
resource that failed to load).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TVBETA_CHROMIUM", "/usr/bin/chromium")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0",
)  # fmt: skip
RENDERED = "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0"


def chromium_or_skip() -> str:
    """The Chromium binary, or skip the calling test with the install instruction."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"headless Chromium not found at {CHROMIUM} "
                    "(install it with: apt-get install -y chromium)")  # fmt: skip
    return CHROMIUM


class _WebSocket:
    """The client side of RFC 6455, just enough for the DevTools protocol (text frames)."""

    def __init__(self, url: str, timeout: float) -> None:
        host_port, path = url.removeprefix("ws://").split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())  # fmt: skip
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head!r}")

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("DevTools websocket closed")
            buf += chunk
        return bytes(buf)

    def send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)  # clients must mask every frame
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                  bytes([0x80 | 127]) + struct.pack(">Q", n))  # fmt: skip
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        message = bytearray()
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)  # the server does not mask
            if b0 & 0x0F in (0x8, 0x9, 0xA):  # close / ping / pong: nothing for us
                if b0 & 0x0F == 0x8:
                    raise ConnectionError("DevTools websocket closed")
                continue
            message += payload
            if b0 & 0x80:  # FIN: the message is complete
                return message.decode()


class _DevTools:
    """Commands and events of one page target; events are checked for errors as they pass."""

    def __init__(self, ws: _WebSocket) -> None:
        self.ws, self.next_id, self.errors, self.events = ws, 0, [], []

    def _event(self, msg: dict[str, Any]) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        self.events.append(method)
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in p.get("args", [])]
            self.errors.append("console.error: " + " ".join(map(str, args)))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            self.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def wait_for(self, event: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while event not in self.events:
            if time.monotonic() > end:
                raise TimeoutError(f"no {event} within {timeout} s")
            self._event(json.loads(self.ws.recv()))


def _debugger_url(profile: Path, proc: subprocess.Popen, timeout: float) -> str:
    """The page target's websocket URL, once Chromium has written its DevTools port."""
    port_file, end = profile / "DevToolsActivePort", time.monotonic() + timeout
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"Chromium did not start (exit code {proc.poll()})")
        time.sleep(0.05)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
        pages = [t for t in json.load(r) if t.get("type") == "page"]
    return pages[0]["webSocketDebuggerUrl"]


def screenshot_html(
    path: str | os.PathLike[str],
    png_path: str | os.PathLike[str],
    *,
    width: int = 1280,
    max_height: int = 4000,
    timeout: float = 30.0,
) -> list[str]:
    """Render ``path`` offline in headless Chromium, save a full-page PNG, return its errors.

    Parameters
    ----------
    path : path of an HTML file
    png_path : where to write the screenshot (parents are created)
    width : viewport width in CSS px; the height follows the page, capped at ``max_height``
    timeout : seconds allowed for start-up, loading and plotly's first draw

    Returns
    -------
    list of str
        Console errors, uncaught exceptions and error log entries, in order; empty when clean.
        A page where no plotly figure was drawn adds the error "no plotly figure rendered".
    """
    binary = chromium_or_skip()
    url = Path(path).resolve().as_uri()
    profile = Path(tempfile.mkdtemp(prefix="tvbeta-chromium-"))
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        cdp = _DevTools(_WebSocket(_debugger_url(profile, proc, timeout), timeout))
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable")
        cdp.call("Network.emulateNetworkConditions", offline=True, latency=0,
                 downloadThroughput=-1, uploadThroughput=-1)  # fmt: skip
        cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=200,
                 deviceScaleFactor=1, mobile=False)  # fmt: skip
        cdp.call("Page.navigate", url=url)
        cdp.wait_for("Page.loadEventFired", timeout)
        end = time.monotonic() + timeout
        while not cdp.call("Runtime.evaluate", expression=RENDERED)["result"].get("value"):
            if time.monotonic() > end:
                cdp.errors.append("no plotly figure rendered")
                break
            time.sleep(0.1)
        time.sleep(0.5)  # let plotly finish its asynchronous drawing (text, legend)
        size = cdp.call("Page.getLayoutMetrics")["cssContentSize"]
        height = min(int(size["height"]) + 1, max_height)
        cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=False)  # fmt: skip
        shot = cdp.call("Page.captureScreenshot", format="png")
        Path(png_path).parent.mkdir(parents=True, exist_ok=True)
        Path(png_path).write_bytes(base64.b64decode(shot["data"]))
        cdp.ws.sock.close()
        return cdp.errors
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
