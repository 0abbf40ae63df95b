"""What a worker asks of its browser, whatever drives it: the browser backend interface.

:class:`~enduro.session.SessionManager` keeps a browser fit and logged in, and the
runner, the monitor and the stress tester act on it, only through a
:class:`BrowserBackend`. The local Selenium + Debian's chromedriver backend
(:class:`~enduro.session.BrowserSession`) implements it; a remote one (a Selenium
Grid session) or another driver (Playwright) implements the same methods. See
ARCHITECTURE.md, "Browser backends".

What differs between backends is said per method: what "kill" means when the
browser is not a local process, where page signals come from. Capabilities that
only a local browser has — its process groups, which the resource monitor samples
and the stress tester SIGKILLs — answer empty for a backend without them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, Self

from enduro.errors import Fatal
from enduro.recovery import ErrorTable, PageSignals
from enduro.settings import Settings
from enduro.store import Store

__all__ = ["BrowserBackend", "BrowserView", "CookieKey", "MissingHandle", "ProcessRegistry"]

CookieKey = tuple[str, str, str]  # (name, domain, path)


@dataclass
class BrowserView:
    """What the browser showed when asked after an error (the flight recorder's input).

    Attributes:
        console: the browser's console entries (dicts as the backend gives them).
        html: the document's HTML.
        url: the page's URL.
        screenshot: a PNG of the page.
        incomplete: why the questions stopped early ("" if every one was answered).
    """

    console: list[Any] | None = None
    html: str | None = None
    url: str | None = None
    screenshot: bytes | None = None
    incomplete: str = ""

    @property
    def empty(self) -> bool:
        """The browser answered nothing."""
        return (
            self.console is None
            and self.html is None
            and self.url is None
            and not (self.screenshot)
        )


class MissingHandle:
    """What a handler finds in ``ctx.driver`` or ``ctx.page`` when the run's backend
    gives the other one: any use of it halts the run (``Fatal``) saying which to use."""

    __slots__ = ("_why",)

    def __init__(self, why: str) -> None:
        object.__setattr__(self, "_why", why)

    def __getattr__(self, name: str) -> Any:
        raise Fatal(object.__getattribute__(self, "_why"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise Fatal(object.__getattribute__(self, "_why"))

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<not available: {object.__getattribute__(self, '_why')}>"


class ProcessRegistry(Protocol):
    """Where a backend records the local processes it starts (the store, in a run), so
    that what a crashed run left can be found and reaped."""

    def register(
        self, kind: str, pid: int, create_time: float, pgid: int | None, workdir: str | None
    ) -> int:
        """Record a process; returns an id for :meth:`ended`."""
        ...

    def ended(self, ids: Iterable[int]) -> None:
        """Mark processes as gone."""
        ...


class BrowserBackend(ABC):
    """One worker's browser: start, check, restart, kill; cookies; what a page showed.

    It decides nothing (the session manager and :mod:`enduro.recovery` do). Cookies go
    in and out as dicts in the DevTools protocol's ``Network.setCookies`` shape
    (``name``, ``value``, ``domain``, ``path``, ``secure``, ``httpOnly``, ``sameSite``,
    ``expires``).

    Attributes:
        name: a label for logs (the worker's name).
        errors: what this backend's exceptions mean, for ``classify`` (registered by
            the backend's module when it is imported).
        starts: browsers started so far.
        pages_since_start: pages done by the current browser (the manager counts them).
        needs_login: whether the next page must log in first.
    """

    errors: ErrorTable
    kind = "selenium"
    """What the handler drives: ``selenium`` (``ctx.driver``) or ``playwright`` (``ctx.page``)."""
    restart_every_pages = 200
    """Pages between planned restarts when ``Settings.restart_every_pages`` is not set.

    A restart costs ~1.5 CPU-seconds (a Chromium launch and its cold first page), so at
    fast pages the count decides what restarts cost: every 50 pages added a quarter to
    the CPU a page takes on 2 cores (README, "Benchmark"). Selenium's browser stays
    flat over 1,200 pages here, and the age and memory lines restart it anyway."""

    def __init__(
        self, settings: Settings, run_id: str, registry: ProcessRegistry, name: str = "w0"
    ) -> None:
        """Every backend is made the same way (the runner's ``backend`` argument).

        Args:
            settings: the run's settings.
            run_id: the run this browser belongs to.
            registry: where local processes are recorded (a remote backend has none).
            name: a label for logs (the worker's name).
        """
        self.name = name
        self.starts = 0
        self.pages_since_start = 0
        self.needs_login = True

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        """Check, before a run starts anything, that this backend can start a browser.

        Raises:
            EnduroError: it can't (with what to do about it).
        """
        return None  # nothing to check unless the backend says otherwise

    @classmethod
    def reap(cls, store: Store, settings: Settings) -> int:
        """Close what runs of ``store`` that are no longer running left open in
        places the process registry can't see (a remote session created in the
        instant before its run recorded it). Called at the start of a run,
        after the dead runs were found, and again once it has ended.

        Returns:
            How many were closed.
        """
        return 0  # a local browser is a process: the registry has it from its start

    # ---- the browser's life ---------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Start a browser (the spare, if one is ready) and put the saved cookies in."""

    @abstractmethod
    def prepare_spare(self) -> None:
        """Start the next browser ahead of a planned restart (no-op if one is coming)."""

    @property
    @abstractmethod
    def spare_launching(self) -> bool:
        """Whether a spare is being started right now."""

    @abstractmethod
    def stop(self, *, background: bool = False) -> None:
        """End the current browser; ``background``: don't wait for it."""

    @abstractmethod
    def kill(self) -> None:
        """End the current browser now, from any thread (the page deadline calls it).

        A local browser is SIGKILLed with its whole process tree; a remote session is
        closed politely (nothing can be killed across the network), any call in flight
        cut off by the client's timeout.
        """

    @abstractmethod
    def close(self) -> None:
        """End every browser of this backend, spare included, and wait; safe twice."""

    @property
    @abstractmethod
    def running(self) -> bool:
        """Whether a browser was started and not stopped since (it may still be dead)."""

    @property
    @abstractmethod
    def age(self) -> float:
        """Seconds since the current browser started."""

    # ---- health ----------------------------------------------------------

    @abstractmethod
    def present(self) -> bool:
        """The cheapest check, made before every page, with no round trip if it can:
        a local backend looks at its processes; a remote one may answer True and leave
        a dead session to :meth:`alive` and to the errors of the page."""

    @abstractmethod
    def alive(self, timeout: float = 5.0) -> bool:
        """A health check: the browser answers a trivial question within ``timeout`` s."""

    # ---- what the handler and the manager drive -----------------------------

    @property
    @abstractmethod
    def driver(self) -> Any:
        """What the handler gets as ``ctx.driver`` (Selenium: the WebDriver).

        Raises:
            BrowserDead: no browser is running.
        """

    @property
    def page(self) -> Any:
        """What the handler gets as ``ctx.page`` (Playwright's ``Page``); on a Selenium
        backend, a :class:`MissingHandle` that says to use ``ctx.driver``."""
        return MissingHandle(
            "ctx.page is Playwright's page, but this run drives the browser with "
            "Selenium: use ctx.driver (or run with --backend playwright)"
        )

    def after_page(self) -> None:
        """Housekeeping after each completed page (a backend's own; none by default)."""
        return None

    def release_thread(self) -> None:
        """The calling thread drives the browser no more: what the backend keeps per
        thread goes (Playwright: that thread's driver); nothing by default."""
        return None

    @abstractmethod
    def goto(self, url: str) -> None:
        """Load ``url`` in the browser (a re-login's check, a probe, ``about:blank``)."""

    @abstractmethod
    def current_url(self, timeout: float) -> str:
        """The URL the browser shows."""

    # ---- cookies ----------------------------------------------------------

    @abstractmethod
    def read_cookies(self, timeout: float) -> list[dict[str, Any]] | None:
        """Every cookie of the browser, or None if it does not answer in ``timeout`` s."""

    @abstractmethod
    def write_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[CookieKey], timeout: float
    ) -> None:
        """Set ``cookies`` and delete ``deleted`` in the running browser.

        Raises:
            Exception: the browser did not take them (the caller decides what that means).
        """

    @property
    @abstractmethod
    def has_cookies(self) -> bool:
        """Whether cookies were saved to carry into the next browser."""

    @property
    @abstractmethod
    def cookies(self) -> list[dict[str, Any]]:
        """The cookies saved for the next browser (a copy)."""

    @abstractmethod
    def save_cookies(self) -> None:
        """Keep the browser's cookies (in memory only) for the next browser."""

    def save_cookies_if_alive(self) -> None:
        """Save cookies for the next browser if this one still answers."""
        if self.alive():
            self.save_cookies()

    @abstractmethod
    def forget_cookies(self) -> None:
        """Drop the saved cookies (after a login was found to be lost)."""

    @abstractmethod
    def merge_cookies(
        self, cookies: list[dict[str, Any]], deleted: Iterable[CookieKey] = ()
    ) -> None:
        """Lay cookies set outside the browser over the saved ones, drop ``deleted``."""

    # ---- what a page showed -------------------------------------------------

    @abstractmethod
    def signals(self, since: float | None, timeout: float) -> PageSignals | None:
        """The page's HTTP status, Retry-After, network and script errors since
        ``since`` (epoch s; None: all kept), or None when the browser does not answer."""

    @abstractmethod
    def drain_signals(self, timeout: float) -> None:
        """Forget what was kept for :meth:`signals` so far (housekeeping between pages)."""

    @abstractmethod
    def look(self, timeout: float) -> BrowserView:
        """What the browser shows now, each question bounded by ``timeout``; the first
        failure ends the questions. Never raises."""

    # ---- local capabilities ---------------------------------------------------

    def process_groups(self, spare: bool = False) -> list[int]:
        """The process groups of the browser in use (``spare``: of the spare being
        started), for the resource monitor and the stress tester's kills. Empty for a
        browser that is not a process of this host."""
        return []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
