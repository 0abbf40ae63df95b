"""The Playwright backend: Debian's Chromium driven by Playwright's sync API.

enduro starts Chromium itself (the flags of :data:`CHROMIUM_FLAGS`, a work
directory per browser, ``--remote-debugging-port=0``, in a process group of its
own) and Playwright connects to it over the DevTools protocol
(``connect_over_cdp``): so a spare can be launched ahead on another thread, the
process registry knows the browser from its first instant, a kill is one
``killpg``, and nothing is ever downloaded (``playwright install`` never runs).

Playwright's sync API belongs to the thread that started it (greenlets), and its
Node driver is one process per such thread: a worker's thread connects its own,
and connects again when another thread takes the browser over (the page
discovery runs on the main thread, the pages on the worker's). What other
threads ask of the browser — cookies for ``ctx.http``, the flight recorder's
look, health checks, garbage collection — goes over the browser's own DevTools
endpoint (:mod:`enduro.session._cdp`), bounded by a timeout, because Playwright's
``evaluate`` has none.

Page signals come from Playwright's events (``response``, ``requestfailed``,
``pageerror``, ``console``), not from logs. See ARCHITECTURE.md, "Browser backends".
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from enduro.errors import BrowserDead, BrowserNotFound
from enduro.recovery import PageSignals
from enduro.session._backend import (
    BrowserBackend,
    BrowserView,
    CookieKey,
    MissingHandle,
    ProcessRegistry,
)
from enduro.session._cdp import CdpError
from enduro.session._playwright_errors import PLAYWRIGHT_ERRORS
from enduro.session._playwright_events import PageEvents
from enduro.session._playwright_procs import Chromium, Driver, start_driver
from enduro.session._selenium import merge_cookie_lists, saved_cookies
from enduro.settings import Settings

__all__ = ["PAGE_EVERY", "PlaywrightSession", "playwright_available"]

log = logging.getLogger(__name__)

# Pages a tab serves before a fresh one takes over (see _fresh_page).
PAGE_EVERY = 250
# Health timeouts a new context and tab may take before their driver is killed
# (see _bounded).
NEW_TAB_TIMEOUTS = 3
_INSTALL_HINT = "pip install 'enduro[playwright]' (enduro never runs `playwright install`)"


def playwright_available() -> bool:
    """Whether the ``playwright`` package can be imported."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


class PlaywrightSession(BrowserBackend):
    """The browser of one worker, driven by Playwright: start, check, restart, kill.

    ``ctx.page`` is the Playwright ``Page`` of the browser's default context (the
    handler's ``ctx.driver`` says to use ``ctx.page``). Local capabilities as the
    Selenium backend's: its browsers are process groups of this host, recorded in
    the run's registry (Chromium as ``browser``, the Node driver as ``driver``).

    Args:
        settings: the run's settings.
        run_id: the run this session belongs to (names its work directories).
        registry: where started processes are recorded.
        name: a label for logs (the worker's name).
    """

    errors = PLAYWRIGHT_ERRORS
    kind = "playwright"
    # its garbage collections keep the renderer flat (benchmarks/playwright_memory.py),
    # and a fresh page every PAGE_EVERY pages frees what the handler's handles kept in
    # this process: no planned restarts by page count (age and memory still restart it)
    restart_every_pages = 0

    def __init__(
        self, settings: Settings, run_id: str, registry: ProcessRegistry, name: str = "w0"
    ) -> None:
        super().__init__(settings, run_id, registry, name)
        self._settings = settings
        self._run_id = run_id
        self._registry = registry
        self._chromium: Chromium | None = None
        self._spare: Chromium | None = None
        self._spare_thread: threading.Thread | None = None
        self._retiring: list[threading.Thread] = []
        self._drivers: dict[int, Driver] = {}
        self._page: Any = None
        self._page_driver: Driver | None = None  # the Playwright the page belongs to
        self._events = PageEvents()
        self._cookies: list[dict[str, Any]] = []
        self._closed = False
        self._gc_due = settings.browser_gc_every
        self._pages_on_page = 0
        self.started_at = 0.0

    # ---- the browser's life ---------------------------------------------

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        """Playwright is installed, and Chromium (enduro never downloads either)."""
        if not playwright_available():
            raise BrowserNotFound("the playwright package is not installed", _INSTALL_HINT)
        if shutil.which(settings.chromium) is None:
            raise BrowserNotFound(
                f"Chromium not found (looked for {settings.chromium!r})",
                "run `make setup`, or apt-get install chromium",
            )

    def start(self) -> None:
        """Start a browser (the spare, if one is ready), connect to it, restore cookies."""
        if self._closed:
            raise RuntimeError("session is closed")
        began = time.monotonic()
        chromium = self._take_spare()
        if chromium is None:
            chromium = Chromium(self._settings, self._run_id, self._registry)
            chromium.launch()
        if not chromium.to_foreground():
            log.info("%s: can't raise the spare's priority", self.name)
        self._chromium = chromium
        try:
            self._connect()  # with the saved cookies
        except BaseException:
            self.stop()
            raise
        self.started_at = time.monotonic()
        self.pages_since_start = 0
        self._gc_due = self._settings.browser_gc_every
        self.starts += 1
        log.info(
            "%s: browser started (pid %s) in %.2fs",
            self.name,
            chromium.pid,
            time.monotonic() - began,
        )

    def _connect(self) -> None:
        """Connect this thread's Playwright to the current Chromium; open the page in
        a browser context of its own (see :meth:`_own_context`)."""
        chromium = self._chromium
        if chromium is None:
            raise BrowserDead("no browser is running")
        driver = self._driver_here()
        browser = driver.playwright.chromium.connect_over_cdp(
            chromium.ws_url, timeout=self._settings.page_timeout * 1000
        )
        if driver.pid is not None:
            chromium.register_driver(driver.pid)
        with _bounded(driver, self._settings.health_timeout * NEW_TAB_TIMEOUTS):
            page = self._own_context(browser, chromium)
        self._prepare(page)
        self._page, self._page_driver = page, driver

    def _own_context(self, browser: Any, chromium: Chromium) -> Any:
        """A new browser context made by this thread's Playwright, its page, and the
        cookies of the context it replaces (the saved ones in a new browser); the
        replaced one is disposed.

        Not the default context: pages run faster in a context of their own, as a
        bare Playwright loop's ``new_page`` does (README, "Both backends"). Made
        here, on each connecting thread: Playwright files a context another
        connection made under its default one, whose ``cookies()`` and
        ``new_page()`` then act on the wrong context; and Chromium disposes a
        context when the connection that made it ends.
        """
        timeout = self._settings.health_timeout
        previous = chromium.context_id
        carried = self.read_cookies(timeout) if previous else None
        context = browser.new_context()
        page = context.new_page()
        session = context.new_cdp_session(page)
        try:
            info = session.send("Target.getTargetInfo")
        finally:
            with contextlib.suppress(Exception):
                session.detach()
        chromium.context_id = str(info["targetInfo"]["browserContextId"])
        cookies = carried if carried is not None else self._cookies
        if cookies:
            self.write_cookies(cookies, (), timeout)
        if previous is not None and chromium.devtools is not None:
            with contextlib.suppress(CdpError):  # gone with its connection, or now
                chromium.devtools.call(
                    "Target.disposeBrowserContext", {"browserContextId": previous}, timeout=timeout
                )
        return page

    def _prepare(self, page: Any) -> None:
        """Timeouts and event listeners on a page the handler will get."""
        page.set_default_timeout(self._settings.page_timeout * 1000)
        page.set_default_navigation_timeout(self._settings.page_timeout * 1000)
        self._events.listen(page, lambda: self._end_load(page))
        self._pages_on_page = 0

    def _driver_here(self) -> Driver:
        """This thread's Playwright, started if it has none or its Node died."""
        ident = threading.get_ident()
        driver = self._drivers.get(ident)
        if driver is not None and driver.here() and driver.alive():
            return driver
        if driver is not None:  # its Node died, or its thread ended and this one has its id
            self._stop_driver(driver)
        driver = start_driver()
        self._drivers[ident] = driver
        return driver

    def _page_here(self) -> bool:
        """Whether the page belongs to the calling thread's Playwright."""
        return self._page_driver is not None and self._page_driver.here()

    def release_thread(self) -> None:
        """This thread drives the browser no more (the page discovery's, a ``ctx.http``
        re-login's from one of its threads): its Playwright stops, politely, here, so
        one Node driver serves the browser — the page worker's."""
        driver = self._drivers.get(threading.get_ident())
        if driver is None or not driver.here():
            return
        if self._page_driver is driver:
            self.save_cookies()  # Chromium disposes the context this thread made
            self._page = self._page_driver = None
        self._stop_driver(driver)

    def _stop_driver(self, driver: Driver) -> None:
        """Stop a Playwright: politely on its own thread, by SIGKILL on another."""
        self._drivers.pop(driver.thread, None)
        if driver.here():
            with contextlib.suppress(Exception):
                driver.playwright.stop()
        else:
            driver.kill()

    def _end_load(self, page: Any) -> None:
        """End a page's load that will never finish (see ``PageEvents``)."""
        with contextlib.suppress(Exception):
            page.goto("about:blank", timeout=self._settings.health_timeout * 1000)

    def prepare_spare(self) -> None:
        """Launch the next Chromium in the background (no-op if one is coming)."""
        if self._spare_thread is not None or self._closed:
            return
        spare = Chromium(self._settings, self._run_id, self._registry)
        self._spare = spare

        def launch() -> None:
            try:
                spare.launch(background=True)
            except Exception as exc:
                log.info("%s: spare browser failed to start: %s", self.name, exc)

        self._spare_thread = threading.Thread(target=launch, name=f"{self.name}-spare", daemon=True)
        self._spare_thread.start()

    @property
    def spare_launching(self) -> bool:
        return self._spare_thread is not None and self._spare_thread.is_alive()

    def _take_spare(self) -> Chromium | None:
        thread, spare = self._spare_thread, self._spare
        self._spare_thread = self._spare = None
        if thread is None or spare is None:
            return None
        if thread.is_alive():
            spare.to_foreground()
        thread.join()
        if spare.devtools is None or not spare.processes_alive():
            spare.kill()
            return None
        return spare

    def stop(self, *, background: bool = False) -> None:
        """End the current browser (killed: its profile is thrown away anyway)."""
        chromium, self._chromium = self._chromium, None
        self._page = self._page_driver = None
        self._events.clear()
        if chromium is None:
            return
        if background:
            thread = threading.Thread(target=chromium.kill, name=f"{self.name}-retire")
            thread.start()
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]
        else:
            chromium.kill()

    def kill(self) -> None:
        """SIGKILL the current browser's processes and the page's Node driver
        (thread-safe): a Playwright call in flight fails at once, and so does the
        handler's next one — a ``new_page`` asked of the killed Chromium through a
        live driver would never be answered. The next ``ready`` starts both anew."""
        chromium, driver = self._chromium, self._page_driver
        if chromium is not None:
            chromium.kill()
        if driver is not None:
            driver.kill()

    def close(self) -> None:
        """End every browser and this backend's Playwright drivers; safe twice."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        thread, spare = self._spare_thread, self._spare
        self._spare_thread = self._spare = None
        if thread is not None:
            thread.join()
        if spare is not None:
            spare.kill()
        for retiring in self._retiring:
            retiring.join()
        for driver in list(self._drivers.values()):
            self._stop_driver(driver)

    @property
    def running(self) -> bool:
        return self._chromium is not None

    @property
    def age(self) -> float:
        return time.monotonic() - self.started_at

    # ---- health ----------------------------------------------------------

    def present(self) -> bool:
        """Chromium's processes and this thread's Node driver exist; the tab did not crash."""
        chromium = self._chromium
        if chromium is None or not chromium.processes_alive() or self._events.crashed:
            return False
        driver = self._page_driver
        return driver is None or driver.alive()

    def alive(self, timeout: float = 5.0) -> bool:
        """The page's renderer answers a trivial expression within ``timeout`` s
        (over DevTools: from any thread, bounded even when Playwright's would not be)."""
        if not self.present() or self._chromium is None or self._chromium.devtools is None:
            return False
        try:
            answer = self._chromium.devtools.page_calls(
                [("Runtime.evaluate", {"expression": "1", "returnByValue": True})],
                timeout=timeout,
                context=self._chromium.context_id,
            )
        except CdpError:
            return False
        return bool(answer[0].get("result", {}).get("value") == 1)

    # ---- what the handler and the manager drive -----------------------------

    @property
    def page(self) -> Any:
        """The live Playwright ``Page`` (``ctx.page``), connected on this thread.

        Raises:
            BrowserDead: no browser is running.
        """
        if self._chromium is None:
            raise BrowserDead("no browser is running")
        if self._page is None or not self._page_here():
            self._connect()  # another thread took the browser over, or its driver died
        return self._page

    @property
    def driver(self) -> Any:
        """What ``ctx.driver`` is on this backend: a pointer to ``ctx.page``."""
        return MissingHandle(
            "ctx.driver is Selenium's WebDriver, but this run drives the browser with "
            "Playwright: use ctx.page (or run with --backend selenium)"
        )

    def goto(self, url: str) -> None:
        """Load ``url`` (bounded by the page timeout)."""
        page = self.page
        with contextlib.suppress(Exception):  # a failed load's error page (see the table)
            page.wait_for_load_state(timeout=self._settings.health_timeout * 1000)
        page.goto(url)

    def current_url(self, timeout: float) -> str:
        page = self._page
        if page is None:
            raise BrowserDead("no browser is running")
        return str(page.url)

    def after_page(self) -> None:
        """Every ``Settings.browser_gc_every`` pages: collect the page's garbage (on a
        thread of its own: :meth:`Chromium.collect_garbage`), so what locators and
        element handles left does not pile up in the renderer (it grows ~1.3 MB a
        page until a collection: BROWSER-FACTS.md); every
        :data:`PAGE_EVERY` pages a fresh page (see :meth:`_fresh_page`)."""
        self._pages_on_page += 1
        if self._pages_on_page >= PAGE_EVERY:
            self._fresh_page()
        self._gc_due -= 1
        if not self._settings.browser_gc_every or self._gc_due > 0 or self._chromium is None:
            return
        self._gc_due = self._settings.browser_gc_every
        self._chromium.collect_garbage(self._settings.health_timeout)

    def _fresh_page(self) -> None:
        """Swap the page for a new one in the same context (cookies and storage stay;
        the tab's ``sessionStorage`` does not): closing the old one frees what
        Playwright keeps for it in this process — every element handle the handler
        took, every request and response — which nothing else releases."""
        old = self._page
        if old is None or not self._page_here():
            return
        self._pages_on_page = 0
        try:
            assert self._page_driver is not None
            with _bounded(self._page_driver, self._settings.health_timeout * NEW_TAB_TIMEOUTS):
                page = old.context.new_page()
            self._prepare(page)
            self._page = page
            old.close()
        except Exception as exc:  # a dying browser: the next page finds it
            log.debug("%s: fresh page failed: %s", self.name, type(exc).__name__)

    # ---- cookies (over DevTools: from any thread) ----------------------------

    def read_cookies(self, timeout: float) -> list[dict[str, Any]] | None:
        chromium = self._chromium
        if chromium is None or chromium.devtools is None:
            return None
        try:
            found = chromium.devtools.call("Storage.getCookies", _in(chromium), timeout=timeout)
        except CdpError as exc:
            log.debug("%s: could not read cookies: %s", self.name, exc)
            return None
        return list(found.get("cookies", []))

    def write_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[CookieKey], timeout: float
    ) -> None:
        chromium = self._chromium
        if chromium is None or chromium.devtools is None:
            raise BrowserDead("no browser is running")
        gone = [
            {"name": name, "value": "", "domain": domain, "path": path, "expires": 1}
            for name, domain, path in deleted
        ]
        try:
            chromium.devtools.call(
                "Storage.setCookies",
                {"cookies": [*cookies, *gone], **_in(chromium)},
                timeout=timeout,
            )
        except CdpError as exc:
            raise BrowserDead(f"the browser did not take the cookies: {exc}") from exc

    @property
    def has_cookies(self) -> bool:
        return bool(self._cookies)

    @property
    def cookies(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._cookies]

    def save_cookies(self) -> None:
        found = self.read_cookies(self._settings.health_timeout)
        if found is not None:
            self._cookies = saved_cookies(found)

    def forget_cookies(self) -> None:
        self._cookies = []

    def merge_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[CookieKey] = ()
    ) -> None:
        self._cookies = merge_cookie_lists(self._cookies, cookies, deleted)

    # ---- what a page showed -------------------------------------------------

    def signals(self, since: float | None, timeout: float) -> PageSignals | None:
        """From Playwright's events since ``since``; a driver found gone or a crashed
        tab is said (``lost``), so their errors classify as driver_dead and page_crash,
        not as what they look like."""
        chromium = self._chromium
        if chromium is None:
            return None
        driver = self._page_driver
        if driver is not None and not driver.alive():
            return PageSignals(lost="driver")
        self._settle(timeout)
        if self._events.crashed:
            return PageSignals(lost="page")
        if not chromium.processes_alive():
            return None
        page = self._page
        return self._events.signals(since, str(page.url) if page is not None else "")

    def _settle(self, timeout: float) -> None:
        """One bounded round trip through Playwright on the page's own thread: the
        events still in flight are dispatched by it (a tab that crashed mid-load
        fails the load as ``net::ERR_ABORTED`` before its crash event arrives), and
        a crashed tab answers it at once with "Target crashed"."""
        page = self._page
        if page is None or not self._page_here() or self._events.crashed:
            return
        with contextlib.suppress(Exception):
            page.wait_for_function("() => true", timeout=timeout * 1000)

    def drain_signals(self, timeout: float) -> None:
        self._events.clear()

    def look(self, timeout: float) -> BrowserView:
        """HTML, URL and a screenshot over DevTools (bounded, from any thread); the
        console from the page's events."""
        chromium = self._chromium
        if chromium is None or chromium.devtools is None or not self.present():
            return BrowserView(incomplete="browser: not running")
        view = BrowserView(console=self._events.console())
        try:
            html, url, shot = chromium.devtools.page_calls(
                [
                    (
                        "Runtime.evaluate",
                        {"expression": "document.documentElement.outerHTML", "returnByValue": True},
                    ),
                    ("Runtime.evaluate", {"expression": "location.href", "returnByValue": True}),
                    ("Page.captureScreenshot", {"format": "png"}),
                ],
                timeout=timeout,
                context=chromium.context_id,
            )
        except CdpError as exc:
            view.incomplete = f"browser: {exc}"
            return view
        view.html = html.get("result", {}).get("value")
        view.url = url.get("result", {}).get("value")
        with contextlib.suppress(ValueError, TypeError):
            view.screenshot = base64.b64decode(shot.get("data", ""))
        return view

    # ---- local capabilities ---------------------------------------------------

    def process_groups(self, spare: bool = False) -> list[int]:
        chromium = self._spare if spare else self._chromium
        pgid = chromium.pgid if chromium is not None else None
        return [pgid] if pgid is not None else []


def _in(chromium: Chromium) -> dict[str, Any]:
    """The ``browserContextId`` parameter of a DevTools call on the handler's context."""
    return {"browserContextId": chromium.context_id} if chromium.context_id else {}


@contextlib.contextmanager
def _bounded(driver: Driver, seconds: float) -> Iterator[None]:
    """Kill ``driver``'s Node process if the Playwright calls inside take longer than
    ``seconds``: a new tab asked of a Chromium that is killed meanwhile is never
    answered (``new_page`` has no timeout; seen in the stress tester's light
    scenario, Playwright 1.65), and a dead driver fails the call at once.

    Raises:
        BrowserDead: the time ran out (whatever the call raised instead).
    """
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        driver.kill()

    timer = threading.Timer(seconds, kill)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception as exc:
        if fired.is_set():
            raise BrowserDead(f"the browser made no new tab in {seconds:.0f}s") from exc
        raise
    finally:
        timer.cancel()
