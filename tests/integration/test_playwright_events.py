"""The Playwright backend's page signals come from the events Playwright's driver
sends anyway: a navigation's response and failure, never a sub-resource's
(``_playwright_events._unsubscribed``; ARCHITECTURE.md, "Browser backends")."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from enduro.session import PlaywrightSession
from enduro.session._playwright_events import _unsubscribed

pytestmark = pytest.mark.integration

PAGE = (
    b"<!doctype html><title>t</title><body>"
    b'<script src="/script.js"></script>'
    b"<script>fetch('/api').then(r => r.text())</script></body>"
)


class _Site(BaseHTTPRequestHandler):
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).asked.append(self.path)
        if self.path == "/busy":
            self._answer(429, b"busy", "text/plain", {"Retry-After": "7"})
        elif self.path == "/script.js":
            self._answer(200, b"window.loaded = 1;", "text/javascript")
        elif self.path == "/api":
            self._answer(200, b"{}", "application/json")
        else:
            self._answer(200, PAGE, "text/html")

    def _answer(
        self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    _Site.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def session(playwright_backend: PlaywrightSession) -> PlaywrightSession:
    playwright_backend.start()
    return playwright_backend


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_document_status_and_retry_after_reach_the_signals(
    session: PlaywrightSession, site: str
) -> None:
    session.page.goto(f"{site}/busy")
    signals = session.signals(None, timeout=5)
    assert signals is not None
    assert (signals.status, signals.retry_after) == (429, 7.0)


def test_a_failed_navigation_reaches_the_signals(session: PlaywrightSession) -> None:
    with pytest.raises(Exception, match="ERR_CONNECTION_REFUSED"):
        session.page.goto(f"http://127.0.0.1:{_closed_port()}/")
    signals = session.signals(None, timeout=5)
    assert signals is not None
    assert "net::ERR_CONNECTION_REFUSED" in signals.net_error


def test_only_the_navigation_is_sent_not_the_pages_script_and_api_call(
    session: PlaywrightSession, site: str
) -> None:
    page = session.page
    quiet: list[str] = []
    _unsubscribed(page, "response", lambda answer: quiet.append(answer.url))
    page.goto(f"{site}/list")
    page.wait_for_function("window.loaded === 1")
    page.wait_for_load_state("networkidle")
    assert {"/list", "/script.js", "/api"} <= set(_Site.asked)  # the browser loaded all three
    assert quiet == [f"{site}/list"]  # and the driver sent only the document's
    subscribed: list[str] = []
    page.on("response", lambda answer: subscribed.append(answer.url))
    page.reload()
    page.wait_for_function("window.loaded === 1")
    page.wait_for_load_state("networkidle")
    # the handler's own listener still subscribes (this one is not counted as one)
    assert f"{site}/script.js" in subscribed
    assert f"{site}/script.js" in quiet  # and this one then sees what it sends


def test_without_playwrights_layout_the_listener_subscribes() -> None:
    added: list[tuple[str, Any]] = []

    class Elsewhere:  # a page object of some other Playwright: no _impl_obj
        def on(self, event: str, listener: Any) -> None:
            added.append((event, listener))

    def listener(_: Any) -> None:
        pass

    _unsubscribed(Elsewhere(), "response", listener)
    assert added == [("response", listener)]
