"""The Playwright backend's page: in a browser context of its own, made by the thread
that drives it, the browser's only page, its cookies carried when another thread
takes the browser over (see ARCHITECTURE.md, "Browser backends")."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from enduro.errors import BrowserDead
from enduro.session import PlaywrightSession
from enduro.session._playwright import _bounded
from enduro.session._playwright_procs import Driver
from enduro.settings import Settings

pytestmark = pytest.mark.integration

COOKIE = {"name": "canary", "value": "v1", "domain": "127.0.0.1", "path": "/"}


class _Registry:
    def register(self, *args: object) -> int:
        return 0

    def ended(self, ids: object) -> None:
        pass


@pytest.fixture
def session(tmp_path: Any) -> Iterator[PlaywrightSession]:
    backend = PlaywrightSession(Settings(store=str(tmp_path / "s.db")), "ctx-test", _Registry())
    try:
        yield backend
    finally:
        backend.close()


def _pages(backend: PlaywrightSession) -> list[dict[str, Any]]:
    chromium = backend._chromium
    assert chromium is not None and chromium.devtools is not None
    targets = chromium.devtools.call("Target.getTargets", timeout=5)["targetInfos"]
    return [t for t in targets if t["type"] == "page"]


def test_the_page_is_the_browsers_only_one_in_a_context_that_is_not_the_default(
    session: PlaywrightSession,
) -> None:
    session.start()
    chromium = session._chromium
    assert chromium is not None and chromium.devtools is not None
    default = chromium.devtools.call("Target.getBrowserContexts", timeout=5)[
        "defaultBrowserContextId"
    ]
    (page,) = _pages(session)  # what the stress tester's faults take as the page
    assert page["browserContextId"] == chromium.context_id != default
    session.write_cookies([COOKIE], (), timeout=5)
    # the handler's own view of its context sees what the backend wrote
    names = {c["name"] for c in session.page.context.cookies()}
    assert "canary" in names


def test_another_thread_taking_the_browser_over_carries_the_cookies(
    session: PlaywrightSession,
) -> None:
    session.start()
    session.write_cookies([COOKIE], (), timeout=5)
    first = session._chromium.context_id if session._chromium else None

    seen: list[set[str]] = []

    def discovery() -> None:  # as the page discovery on another thread does
        seen.append({c["name"] for c in session.page.context.cookies()})
        session.release_thread()

    thread = threading.Thread(target=discovery)
    thread.start()
    thread.join()
    assert len(seen) == 1 and "canary" in seen[0]
    # back on this thread: a context of its own again, the cookies still there,
    # the replaced contexts disposed (one page in all)
    names = {c["name"] for c in session.page.context.cookies()}
    assert "canary" in names
    assert session._chromium is not None and session._chromium.context_id != first
    assert len(_pages(session)) == 1


def test_a_call_that_outlasts_its_bound_has_its_driver_killed_and_says_so() -> None:
    # a stand-in driver process; the "call" fails once its driver is gone, as a
    # Playwright call does when its Node process dies
    stand_in = subprocess.Popen(["sleep", "60"])
    created = psutil.Process(stand_in.pid).create_time()
    driver = Driver(None, threading.get_ident(), stand_in.pid, created, threading.current_thread())
    with pytest.raises(BrowserDead, match="no new tab in"), _bounded(driver, 0.2):
        stand_in.wait(timeout=30)
        raise RuntimeError("Connection closed")
    assert stand_in.returncode == -9
    # a call inside its bound is left alone, its own error unchanged
    with pytest.raises(ValueError), _bounded(driver, 30):
        raise ValueError("the call's own error")
