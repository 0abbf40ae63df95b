"""The Playwright backend's page: in a browser context of its own, made by the thread
that drives it, the browser's only page, its cookies carried when another thread
takes the browser over (see ARCHITECTURE.md, "Browser backends")."""

from __future__ import annotations

import subprocess
import threading
from typing import Any

import psutil
import pytest

from enduro.errors import BrowserDead
from enduro.session import PlaywrightSession
from enduro.session._cdp import CdpError
from enduro.session._playwright import _bounded
from enduro.session._playwright_procs import Chromium, Driver
from enduro.settings import Settings

from .conftest import FakeRegistry

pytestmark = pytest.mark.integration

COOKIE = {"name": "canary", "value": "v1", "domain": "127.0.0.1", "path": "/"}


@pytest.fixture
def session(playwright_backend: PlaywrightSession) -> PlaywrightSession:
    return playwright_backend


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


def test_the_garbage_collection_frees_the_pages_heap_from_a_thread_of_its_own(
    session: PlaywrightSession,
) -> None:
    session.start()
    chromium = session._chromium
    assert chromium is not None and chromium.devtools is not None
    devtools, context = chromium.devtools, chromium.context_id

    def used() -> int:
        heap = devtools.page_calls([("Runtime.getHeapUsage", {})], timeout=5, context=context)
        return int(heap[0]["usedSize"])

    # ~8 MB the page held, then let go of: garbage until a full collection
    page = session.page
    page.evaluate("() => { window.junk = Array.from({length: 400000}, (_, i) => ({i})) }")
    page.evaluate("() => { window.junk = null }")
    before = used()
    assert chromium.collect_garbage(timeout=5)
    collecting = chromium._collecting
    assert collecting is not None and collecting.name == "enduro-gc"
    collecting.join(timeout=10)
    assert before > 6_000_000 and used() < before - 5_000_000


def test_one_garbage_collection_at_a_time() -> None:
    chromium = Chromium(Settings(), "gc-test", FakeRegistry())
    asked = threading.Event()
    answer = threading.Event()

    class Hung:  # a DevTools that answers only when told
        def page_calls(self, commands: object, **kwargs: object) -> list[object]:
            asked.set()
            answer.wait(timeout=10)
            raise CdpError("gone")

    assert not chromium.collect_garbage(timeout=1)  # no DevTools yet
    chromium.devtools = Hung()  # type: ignore[assignment]
    assert chromium.collect_garbage(timeout=1)
    assert asked.wait(timeout=10)
    assert not chromium.collect_garbage(timeout=1)  # the first is still under way
    answer.set()
    assert chromium._collecting is not None
    chromium._collecting.join(timeout=10)
    assert chromium.collect_garbage(timeout=1)  # its error was logged, not raised
