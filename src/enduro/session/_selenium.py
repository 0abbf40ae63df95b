"""The local browser backend: a supervised Selenium + Chromium session on this host.

Starts Debian's Chromium through the chromedriver on PATH (Selenium Manager
never runs: the driver path is given), records every process it starts in a
registry before doing anything else with it, checks health, carries cookies
across restarts, and kills the whole process tree when a browser must go.
:class:`BrowserSession` is the :class:`~enduro.session.BrowserBackend` the runner
uses by default (see ARCHITECTURE.md, "Browser backends").
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import psutil
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from enduro.errors import BrowserDead, BrowserNotFound
from enduro.recovery import PageSignals
from enduro.session._backend import BrowserBackend, BrowserView, CookieKey, ProcessRegistry
from enduro.session._flags import CHROMIUM_FLAGS
from enduro.session._processes import kill_group, remove_workdir, run_workdir_prefix
from enduro.session._selenium_errors import SELENIUM_ERRORS
from enduro.session._selenium_view import look_through
from enduro.session._signals import bounded_calls, collect_signals, drain_logs, logging_options
from enduro.settings import Settings

__all__ = [
    "BrowserSession",
    "chromium_options",
    "find_browser",
    "merge_cookie_lists",
    "saved_cookies",
]

log = logging.getLogger(__name__)

# Cookie fields that Network.setCookies accepts from Network.getAllCookies.
_COOKIE_FIELDS = ("name", "value", "domain", "path", "secure", "httpOnly", "sameSite", "expires")


def find_browser(settings: Settings) -> tuple[str, str]:
    """Paths of Chromium and chromedriver.

    Raises:
        BrowserNotFound: either is missing (enduro never downloads them).
    """
    found = []
    for what, name in (("Chromium", settings.chromium), ("chromedriver", settings.chromedriver)):
        path = shutil.which(name)
        if path is None:
            raise BrowserNotFound(
                f"{what} not found (looked for {name!r})",
                "run `make setup`, or apt-get install chromium chromium-driver",
            )
        found.append(path)
    return found[0], found[1]


def chromium_options(settings: Settings) -> Options:
    """Chromium's options for a run: headless, the flags of :data:`CHROMIUM_FLAGS`,
    and the logs page signals are read from."""
    options = Options()
    if settings.headless:
        options.add_argument("--headless")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if settings.page_signals:
        # status, Retry-After and console errors for classifying failures
        logging_options(options)
    return options


def set_timeouts(driver: Any, page_timeout: float) -> None:
    """Bound page loads and scripts by ``page_timeout``, and every call to the
    driver a little beyond it (a frozen browser ignores the page-load timeout)."""
    driver.set_page_load_timeout(page_timeout)
    driver.set_script_timeout(page_timeout)
    driver.command_executor.client_config.timeout = page_timeout + 10


class _Browser:
    """One Chromium + chromedriver pair, its work directory and registry entries."""

    def __init__(self, settings: Settings, run_id: str, registry: ProcessRegistry) -> None:
        self._settings = settings
        self._run_id = run_id
        self._registry = registry
        self._lock = threading.Lock()
        self.driver: Any = None
        self.pid: int | None = None
        self._service: Any = None
        self._pgid: int | None = None
        self._workdir: str | None = None
        self._process_ids: list[int] = []
        self.background = False
        self._demoted = False

    def launch(self, background: bool = False) -> None:
        """Start Chromium through chromedriver, recording each process at once.

        Args:
            background: run chromedriver and the Chromium it starts under
                SCHED_IDLE, so a spare takes only CPU that the pages in progress
                leave idle; :meth:`to_foreground` undoes it.
        """
        self.background = background
        chromium, chromedriver = find_browser(self._settings)
        workdir = tempfile.mkdtemp(prefix=run_workdir_prefix(self._run_id))
        os.makedirs(os.path.join(workdir, "tmp"))
        options = chromium_options(self._settings)
        options.binary_location = chromium
        options.add_argument(f"--user-data-dir={os.path.join(workdir, 'profile')}")
        service = Service(
            chromedriver,
            env={**os.environ, "TMPDIR": os.path.join(workdir, "tmp")},
            popen_kw={"start_new_session": True},
            # The log path puts the work directory in chromedriver's command
            # line (how leftovers are found); SEVERE keeps typed text such as
            # passwords out of the file.
            log_output=os.path.join(workdir, "chromedriver.log"),
            service_args=["--log-level=SEVERE"],
        )
        with self._lock:
            self._workdir = workdir
            self._service = service
        try:
            self.driver = _ChromeWithRegistry(self, options=options, service=service)
            pid = self.driver.capabilities.get("goog:processID")
            if isinstance(pid, int):
                self.pid = pid
                self.register("browser", pid)
            set_timeouts(self.driver, self._settings.page_timeout)
        except BaseException:
            self.kill()
            raise

    def register(self, kind: str, pid: int) -> None:
        """Record a process of this browser in the registry."""
        try:
            create_time = psutil.Process(pid).create_time()
        except psutil.Error:
            return
        with self._lock:
            if kind == "driver":
                self._pgid = pid  # start_new_session: the driver leads its group
            self._process_ids.append(
                self._registry.register(kind, pid, create_time, self._pgid, self._workdir)
            )

    def alive(self, timeout: float) -> bool:
        """Whether the browser answers a trivial script within ``timeout`` seconds."""
        driver = self.driver
        if driver is None:
            return False
        try:
            with bounded_calls(driver, timeout):
                return bool(driver.execute_script("return 1") == 1)
        except Exception:
            return False

    def processes_alive(self) -> bool:
        """Whether chromedriver and Chromium still exist (no round trip to the driver)."""
        service = self._service
        if self.driver is None or service is None or service.process is None:
            return False
        if service.process.poll() is not None:
            return False
        if self.pid is None:
            return True
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    @property
    def pgid(self) -> int | None:
        """The process group of chromedriver and this Chromium (None before launch)."""
        return self._pgid

    def to_foreground(self) -> bool:
        """Move every process of a background browser back to normal scheduling.

        Returns:
            False if the OS refused (leaving SCHED_IDLE needs root or a
            permissive RLIMIT_NICE); the browser then stays in the background.
        """
        self.background = False  # processes spawned from now on stay in the foreground
        pgid = self._pgid
        if not self._demoted or pgid is None:
            return True
        try:
            for pid in _group_members(pgid):
                with contextlib.suppress(ProcessLookupError):
                    if os.sched_getscheduler(pid) == os.SCHED_IDLE:
                        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        except PermissionError:
            return False
        return True

    def retire(self) -> None:
        """End this browser for good.

        No polite ``quit()``: the profile is thrown away, so Chromium's
        shutdown (flushing history, prefs and caches) would be CPU spent for
        nothing, and a quit can hang. The process group is killed instead.
        """
        driver, self.driver = self.driver, None
        self.kill()
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.command_executor.close()

    def kill(self) -> None:
        """SIGKILL the driver and every browser process; remove the work directory.

        Safe from another thread (the page watchdog uses it) and safe twice.
        """
        with self._lock:
            pgid, workdir, service = self._pgid, self._workdir, self._service
            ids, self._process_ids = self._process_ids, []
            self._pgid = self._workdir = self._service = None
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        elif workdir is not None:
            kill_group(None, workdir)  # the driver never got registered
        if service is not None and service.process is not None:
            with contextlib.suppress(Exception):
                service.process.wait(timeout=5)
        remove_workdir(workdir)
        if ids:
            self._registry.ended(ids)


class BrowserSession(BrowserBackend):
    """The browser of one worker: start, check, restart, kill. Decides no retries.

    Local capabilities: its browsers are process groups of this host
    (:meth:`process_groups`), killed with SIGKILL, their processes recorded in the
    run's registry as they start; page signals come from chromedriver's logs.

    A proactive restart can be prepared: :meth:`prepare_spare` launches the
    next browser in the background while pages go on, and :meth:`restart`
    then swaps it in and retires the old one in the background, so a restart
    costs a page only the cookie hand-over.

    Args:
        settings: the run's settings.
        run_id: the run this session belongs to (names its work directories).
        registry: where started processes are recorded.
        name: a label for logs (the worker's name).
    """

    errors = SELENIUM_ERRORS

    def __init__(
        self, settings: Settings, run_id: str, registry: ProcessRegistry, name: str = "w0"
    ) -> None:
        super().__init__(settings, run_id, registry, name)
        self._settings = settings
        self._run_id = run_id
        self._registry = registry
        self._browser: _Browser | None = None
        self._spare: _Browser | None = None
        self._spare_thread: threading.Thread | None = None
        self._retiring: list[threading.Thread] = []
        self._cookies: list[dict[str, Any]] = []
        self._background_works = True
        self._closed = False
        self.started_at = 0.0

    @property
    def driver(self) -> Any:
        """The live WebDriver.

        Raises:
            BrowserDead: no browser is running.
        """
        if self._browser is None or self._browser.driver is None:
            raise BrowserDead("no browser is running")
        return self._browser.driver

    @property
    def running(self) -> bool:
        """Whether a browser was started and not stopped since (it may still be dead)."""
        return self._browser is not None

    @property
    def age(self) -> float:
        """Seconds since the browser started."""
        return time.monotonic() - self.started_at

    @property
    def has_cookies(self) -> bool:
        """Whether cookies were saved to carry into the next browser."""
        return bool(self._cookies)

    def start(self) -> None:
        """Start a browser (the spare, if one is ready) and restore saved cookies."""
        if self._closed:
            raise RuntimeError("session is closed")
        began = time.monotonic()
        browser = self._take_spare()
        if browser is None:
            browser = self._new_browser()
            browser.launch()
        if not browser.to_foreground():
            log.info(
                "%s: can't raise the spare's priority; later spares start at normal", self.name
            )
            self._background_works = False
        self._browser = browser
        if self._cookies:
            browser.driver.execute_cdp_cmd("Network.setCookies", {"cookies": self._cookies})
        self.started_at = time.monotonic()
        self.pages_since_start = 0
        self.starts += 1
        log.info(
            "%s: browser started (pid %s) in %.2fs", self.name, browser.pid, self.started_at - began
        )

    def _new_browser(self) -> _Browser:
        """A browser of this backend, not launched yet."""
        return _Browser(self._settings, self._run_id, self._registry)

    def prepare_spare(self) -> None:
        """Launch the next browser in the background (no-op if one is coming)."""
        if self._spare_thread is not None or self._closed:
            return
        spare = self._new_browser()
        self._spare = spare

        background = self._background_works

        def launch() -> None:
            try:
                spare.launch(background)
            except Exception as exc:
                log.info("%s: spare browser failed to start: %s", self.name, exc)

        self._spare_thread = threading.Thread(target=launch, name=f"{self.name}-spare", daemon=True)
        self._spare_thread.start()

    @property
    def spare_launching(self) -> bool:
        """Whether a spare browser is being launched right now."""
        return self._spare_thread is not None and self._spare_thread.is_alive()

    def _take_spare(self) -> _Browser | None:
        thread, spare = self._spare_thread, self._spare
        self._spare_thread = self._spare = None
        if thread is None or spare is None:
            return None
        if thread.is_alive():
            spare.to_foreground()  # it is needed now: let it have the CPU
        thread.join()
        if spare.driver is None or not spare.alive(timeout=5.0):
            spare.kill()
            return None
        return spare

    def alive(self, timeout: float = 5.0) -> bool:
        """A health check: the browser answers a trivial script within ``timeout`` s."""
        return self._browser is not None and self._browser.alive(timeout)

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        """Chromium and chromedriver are installed (enduro never downloads them)."""
        find_browser(settings)

    def present(self) -> bool:
        """The cheapest check, made before every page: the processes still exist."""
        return self._browser is not None and self._browser.processes_alive()

    def goto(self, url: str) -> None:
        """Load ``url`` (bounded by the page-load timeout set at launch)."""
        self.driver.get(url)

    def current_url(self, timeout: float) -> str:
        with bounded_calls(self.driver, timeout):
            return str(self.driver.current_url)

    def read_cookies(self, timeout: float) -> list[dict[str, Any]] | None:
        """Every cookie of the browser, through the DevTools protocol."""
        if self._browser is None or self._browser.driver is None:
            return None
        driver = self._browser.driver
        try:
            with bounded_calls(driver, timeout):
                found = driver.execute_cdp_cmd("Network.getAllCookies", {})
            return list(found["cookies"])
        except Exception as exc:
            log.debug("%s: could not read cookies: %s", self.name, type(exc).__name__)
            return None

    def write_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[CookieKey], timeout: float
    ) -> None:
        driver = self.driver
        with bounded_calls(driver, timeout):
            if cookies:
                driver.execute_cdp_cmd("Network.setCookies", {"cookies": cookies})
            for name, domain, path in deleted:
                driver.execute_cdp_cmd(
                    "Network.deleteCookies", {"name": name, "domain": domain, "path": path}
                )

    def signals(self, since: float | None, timeout: float) -> PageSignals | None:
        """From chromedriver's performance and browser logs (see ``_signals``)."""
        if self._browser is None or self._browser.driver is None or not self.present():
            return None
        return collect_signals(self._browser.driver, timeout=timeout, since=since)

    def drain_signals(self, timeout: float) -> None:
        """Empty chromedriver's logs (it keeps ~16 KB of entries per page until read)."""
        if self._browser is not None and self._browser.driver is not None:
            drain_logs(self._browser.driver, timeout)

    def look(self, timeout: float) -> BrowserView:
        if self._browser is None or self._browser.driver is None or not self.present():
            return BrowserView(incomplete="browser: not running")
        return look_through(self._browser.driver, timeout)

    @property
    def cookies(self) -> list[dict[str, Any]]:
        """The cookies saved for the next browser (a copy)."""
        return [dict(c) for c in self._cookies]

    def save_cookies(self) -> None:
        """Keep the browser's cookies (in memory only) for the next browser."""
        cookies = self.read_cookies(self._settings.health_timeout)
        if cookies is not None:
            self._cookies = saved_cookies(cookies)

    def forget_cookies(self) -> None:
        """Drop saved cookies (after a login was found to be lost)."""
        self._cookies = []

    def merge_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[tuple[str, str, str]] = ()
    ) -> None:
        """Lay cookies the site set outside the browser (``Network.setCookies`` shape)
        over the saved ones, and drop ``deleted`` (name, domain, path): what the next
        browser gets, even if this one dies before they reach it."""
        self._cookies = merge_cookie_lists(self._cookies, cookies, deleted)

    def stop(self, *, background: bool = False) -> None:
        """Quit the browser (killing it if quitting hangs); ``background``: don't wait."""
        browser, self._browser = self._browser, None
        if browser is None:
            return
        if background:
            thread = threading.Thread(target=browser.retire, name=f"{self.name}-retire")
            thread.start()
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]
        else:
            browser.retire()

    def process_groups(self, spare: bool = False) -> list[int]:
        """The process group of the browser in use (``spare``: of the spare being readied)."""
        browser = self._spare if spare else self._browser
        return [browser.pgid] if browser is not None and browser.pgid is not None else []

    def kill(self) -> None:
        """SIGKILL the current browser's whole process tree (thread-safe)."""
        browser = self._browser
        if browser is not None:
            browser.kill()

    def close(self) -> None:
        """Stop every browser of this session, spare included, and wait; safe twice."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        thread, spare = self._spare_thread, self._spare
        self._spare_thread = self._spare = None
        if thread is not None:
            thread.join()
        if spare is not None:
            spare.retire()
        for retiring in self._retiring:
            retiring.join()


class _ChromeWithRegistry(Chrome):
    """Chrome that registers chromedriver the moment its process exists.

    Registering before Selenium waits for the driver to answer shrinks the
    window in which a SIGKILLed runner could leave an unrecorded driver; the
    ``enduro-<run_id>-`` marker in its command line covers the rest.
    """

    def __init__(self, browser: _Browser, **kwargs: Any) -> None:
        service = kwargs["service"]
        spawn = service._start_process

        def spawn_and_register(path: str) -> None:
            spawn(path)
            browser.register("driver", service.process.pid)
            if browser.background:
                # Before chromedriver launches Chromium, which inherits it.
                with contextlib.suppress(OSError):
                    os.sched_setscheduler(service.process.pid, os.SCHED_IDLE, os.sched_param(0))
                    browser._demoted = True

        service._start_process = spawn_and_register
        super().__init__(**kwargs)


def saved_cookies(cookies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cookies as read from the browser, kept in the shape ``Network.setCookies``
    takes (session cookies without their ``expires: -1``)."""
    return [
        {k: c[k] for k in _COOKIE_FIELDS if k in c and not (k == "expires" and c[k] < 0)}
        for c in cookies
    ]


def merge_cookie_lists(
    saved: list[dict[str, Any]], cookies: list[dict[str, Any]], deleted: Iterable[CookieKey] = ()
) -> list[dict[str, Any]]:
    """``cookies`` laid over ``saved`` by (name, domain, path), ``deleted`` dropped."""
    merged = {_cookie_key(c): c for c in saved}
    for key in deleted:
        merged.pop(key, None)
    for cookie in cookies:
        merged[_cookie_key(cookie)] = dict(cookie)
    return list(merged.values())


def _cookie_key(cookie: dict[str, Any]) -> tuple[str, str, str]:
    """(name, domain, path) of a cookie given by domain or, host-only, by url."""
    domain = cookie.get("domain") or urlsplit(str(cookie.get("url", ""))).hostname or ""
    return (str(cookie.get("name")), str(domain), str(cookie.get("path") or "/"))


def _group_members(pgid: int) -> list[int]:
    """Pids of the processes in a process group."""
    members = []
    for pid in psutil.pids():
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pgid:
                members.append(pid)
    return members
