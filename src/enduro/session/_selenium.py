"""A supervised Selenium + Chromium session.

Starts Debian's Chromium through the chromedriver on PATH (Selenium Manager
never runs: the driver path is given), records every process it starts in a
registry before doing anything else with it, checks health, carries cookies
across restarts, and kills the whole process tree when a browser must go.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

import psutil
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from enduro.errors import BrowserDead, BrowserNotFound
from enduro.session._processes import kill_group, remove_workdir, run_workdir_prefix
from enduro.settings import Settings

__all__ = ["CHROMIUM_FLAGS", "BrowserSession", "ProcessRegistry", "find_browser"]

log = logging.getLogger(__name__)

CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

# Cookie fields that Network.setCookies accepts from Network.getAllCookies.
_COOKIE_FIELDS = ("name", "value", "domain", "path", "secure", "httpOnly", "sameSite", "expires")


class ProcessRegistry(Protocol):
    """Where a session records the processes it starts (the store, in a run)."""

    def register(
        self, kind: str, pid: int, create_time: float, pgid: int | None, workdir: str | None
    ) -> int:
        """Record a process; returns an id for :meth:`ended`."""
        ...

    def ended(self, ids: Iterable[int]) -> None:
        """Mark processes as gone."""
        ...


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


class BrowserSession:
    """One browser: start, check, restart, kill. Decides nothing about retries.

    Args:
        settings: the run's settings.
        run_id: the run this session belongs to (names its work directory).
        registry: where started processes are recorded.
        name: a label for logs (the worker's name).
    """

    def __init__(
        self, settings: Settings, run_id: str, registry: ProcessRegistry, name: str = "w0"
    ) -> None:
        self._settings = settings
        self._run_id = run_id
        self._registry = registry
        self.name = name
        self._driver: Any = None
        self._service: Any = None
        self._pgid: int | None = None
        self._workdir: str | None = None
        self._process_ids: list[int] = []
        self._cookies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = False
        self.started_at = 0.0
        self.pages_since_start = 0
        self.starts = 0
        self.needs_login = True

    # ---- lifecycle -----------------------------------------------------

    @property
    def driver(self) -> Any:
        """The live WebDriver.

        Raises:
            BrowserDead: no browser is running.
        """
        if self._driver is None:
            raise BrowserDead("no browser is running")
        return self._driver

    @property
    def running(self) -> bool:
        """Whether a browser was started and not stopped since (it may still be dead)."""
        return self._driver is not None

    @property
    def age(self) -> float:
        """Seconds since the browser started."""
        return time.monotonic() - self.started_at

    @property
    def has_cookies(self) -> bool:
        """Whether cookies were saved to carry into the next browser."""
        return bool(self._cookies)

    def start(self) -> None:
        """Start a fresh browser and restore saved cookies into it."""
        if self._closed:
            raise RuntimeError("session is closed")
        chromium, chromedriver = find_browser(self._settings)
        workdir = tempfile.mkdtemp(prefix=run_workdir_prefix(self._run_id))
        os.makedirs(os.path.join(workdir, "tmp"))
        options = Options()
        options.binary_location = chromium
        if self._settings.headless:
            options.add_argument("--headless")
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={os.path.join(workdir, 'profile')}")
        service = Service(
            chromedriver,
            env={**os.environ, "TMPDIR": os.path.join(workdir, "tmp")},
            popen_kw={"start_new_session": True},
            log_output=os.path.join(workdir, "chromedriver.log"),
        )
        with self._lock:
            self._workdir = workdir
            self._service = service
            self._process_ids = []
        began = time.monotonic()
        try:
            self._driver = _ChromeWithRegistry(self, options=options, service=service)
        except Exception:
            self.kill()
            raise
        browser_pid = self._driver.capabilities.get("goog:processID")
        if isinstance(browser_pid, int):
            self._register("browser", browser_pid)
        timeout = self._settings.page_timeout
        self._driver.set_page_load_timeout(timeout)
        self._driver.set_script_timeout(timeout)
        # A frozen browser ignores the page-load timeout; cap every call.
        self._driver.command_executor.client_config.timeout = timeout + 10
        if self._cookies:
            self._driver.execute_cdp_cmd("Network.setCookies", {"cookies": self._cookies})
        self.started_at = time.monotonic()
        self.pages_since_start = 0
        self.starts += 1
        log.info(
            "%s: browser started (pid %s) in %.2fs",
            self.name,
            browser_pid,
            time.monotonic() - began,
        )

    def _register(self, kind: str, pid: int) -> None:
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

    def alive(self, timeout: float = 5.0) -> bool:
        """A cheap health check: the browser answers a trivial script in time."""
        driver = self._driver
        if driver is None:
            return False
        config = driver.command_executor.client_config
        saved = config.timeout
        config.timeout = timeout
        try:
            return bool(driver.execute_script("return 1") == 1)
        except Exception:
            return False
        finally:
            config.timeout = saved

    def save_cookies(self) -> None:
        """Keep the browser's cookies (in memory only) for the next browser."""
        if self._driver is None:
            return
        try:
            cookies = self._driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
        except Exception as exc:
            log.debug("%s: could not read cookies: %s", self.name, type(exc).__name__)
            return
        self._cookies = [
            {k: c[k] for k in _COOKIE_FIELDS if k in c and not (k == "expires" and c[k] < 0)}
            for c in cookies
        ]

    def forget_cookies(self) -> None:
        """Drop saved cookies (after a login was found to be lost)."""
        self._cookies = []

    def save_cookies_if_alive(self) -> None:
        """Save cookies for the next browser if this one still answers."""
        if self.alive():
            self.save_cookies()

    def stop(self) -> None:
        """Quit the browser; if quitting hangs or fails, kill its process tree."""
        driver = self._driver
        self._driver = None
        if driver is not None:
            quitter = threading.Thread(target=_quiet_quit, args=(driver,), daemon=True)
            quitter.start()
            quitter.join(timeout=10)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the driver and every browser process; remove the work directory.

        Safe from another thread (the page watchdog uses it) and safe twice.
        """
        with self._lock:
            pgid, workdir, service = self._pgid, self._workdir, self._service
            ids, self._process_ids = self._process_ids, []
            self._pgid = self._workdir = self._service = None
        if workdir is not None:
            kill_group(pgid, workdir)
        if service is not None and service.process is not None:
            with contextlib.suppress(Exception):
                service.process.wait(timeout=5)
        remove_workdir(workdir)
        if ids:
            self._registry.ended(ids)

    def close(self) -> None:
        """Stop the browser for good; safe twice."""
        if not self._closed:
            self.stop()
            self._closed = True

    def __enter__(self) -> BrowserSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quiet_quit(driver: Any) -> None:
    with contextlib.suppress(Exception):
        driver.quit()


class _ChromeWithRegistry(Chrome):
    """Chrome that registers chromedriver the moment its process exists.

    Registering before Selenium waits for the driver to answer shrinks the
    window in which a SIGKILLed runner could leave an unrecorded driver; the
    ``enduro-<run_id>-`` marker in its command line covers the rest.
    """

    def __init__(self, session: BrowserSession, **kwargs: Any) -> None:
        service = kwargs["service"]
        spawn = service._start_process

        def spawn_and_register(path: str) -> None:
            spawn(path)
            session._register("driver", service.process.pid)

        service._start_process = spawn_and_register
        super().__init__(**kwargs)
