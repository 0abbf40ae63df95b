"""The session manager: one worker's browser made fit for each page.

Before a page it makes sure a browser runs and its processes exist (no round
trip: a pid check), restarts it when due (pages, age, the monitor's PSS
signal, a stall), and keeps the login: re-login when auth was lost, when the
job's ``is_logged_in`` says no (checked every N pages), or shortly before the
login cookie expires. Re-logins that fail trip a circuit breaker that halts
the run. After an error it reads what the browser showed (signals), saves a
flight-recorder capture, refreshes or restarts — but it never decides
*whether* to do any of that: :mod:`enduro.recovery` does.

For a hybrid job (``Job.site``) it is also the :class:`BrowserLink` of the
worker's ``ctx.http``: the source of its cookies, where the cookies the site
sets go, and the way back in when a request finds the login lapsed. Its
browser then sits idle between logins, so it is not restarted by page count
(only when dead, past its age or memory line, or when a health check made
every ``Settings.browser_check_every`` seconds goes unanswered).

It drives the browser only through its :class:`~enduro.session.BrowserBackend`, so
it is the same for a local Chromium, a remote session or another driver.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from enduro.errors import AuthLost, BrowserDead, HaltRun
from enduro.job import Job, PageContext
from enduro.recovery import Backoff, CircuitBreaker, PageSignals, RateLimiter, classify
from enduro.session._backend import BrowserBackend
from enduro.session._cookies import CookieChanges
from enduro.session._http import HttpClient
from enduro.session._recorder import FlightRecorder
from enduro.settings import Settings

__all__ = ["Emit", "SessionManager"]

log = logging.getLogger(__name__)

# A planned restart launches the next browser this many seconds ahead, and
# waits for it past the restart's due time by at most a tenth of the interval.
SPARE_LEAD_SECONDS = 3.0
SPARE_LATE_DIVISOR = 10
# Categories that mean the browser itself went away (a login that meets one did not fail).
BROWSER_GONE = frozenset({"browser_crash", "driver_dead", "page_crash"})
# How often (in pages) the manager notes a URL of the site that loaded well
# (for probes and for verifying a restarted browser) and empties the browser's
# logs (chromedriver keeps ~16 KB of entries per page until they are read).
HOUSEKEEPING_EVERY = 25


class Emit(Protocol):
    """Records an event of the run (the store, in a run)."""

    def __call__(
        self,
        kind: str,
        message: str = "",
        *,
        category: str | None = None,
        page_key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...


class SessionManager:
    """Keeps one worker's browser fit and logged in.

    Args:
        session: the worker's browser (its backend).
        job: the job (its login / is_logged_in hooks and secrets).
        settings: the run's settings.
        emit: records events.
        limiter: the run's rate limiter; logins, probes and verifications wait for it.
        relogins: the run's re-login circuit breaker.
        stop: set when the run is stopping.
        hard_stop: set when the run abandons pages in hand.
        backoff: delays between failed browser starts.
        recorder: the flight recorder (None: off).
        pages_left: how many pages the run has left (to decide whether a spare is worth it).
        on_restart: called after each restart (progress counters).
        clock: epoch seconds (login expiries, the page's start for its signals).
        monotonic: seconds for intervals (the idle browser's health checks).
        store_clock: the store's time, for the moment a login took its turn of
            the pace (its events are on it); default ``clock``.
    """

    def __init__(
        self,
        session: BrowserBackend,
        job: Job,
        settings: Settings,
        *,
        emit: Emit,
        limiter: RateLimiter,
        relogins: CircuitBreaker,
        stop: threading.Event,
        hard_stop: threading.Event,
        backoff: Backoff,
        recorder: FlightRecorder | None,
        pages_left: Callable[[], int],
        on_restart: Callable[[], None],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        store_clock: Callable[[], float] | None = None,
    ) -> None:
        self.session = session
        self._clock = clock
        self._store_clock = store_clock or clock
        self._monotonic = monotonic
        self.job = job
        self.settings = settings
        self._emit = emit
        self._limiter = limiter
        self._relogins = relogins
        self._stop = stop
        self._hard_stop = hard_stop
        self._backoff = backoff
        self._recorder = recorder
        self._pages_left = pages_left
        self._on_restart = on_restart
        self.restart_wanted = ""  # a reason, set by the monitor or the stall watch
        self.last_good_url = ""
        self.login_expires_at: float | None = None  # epoch seconds
        self._logins = 0
        self._pages_since_auth_check = 0
        self._pages_done = 0
        self._page_started = 0.0  # epoch seconds; signals ignore older log entries
        self.http: HttpClient | None = None  # ctx.http, for a job that names its site
        self.halting = ""  # why ctx.http halted the run (the handler may swallow HaltRun)
        self._page_key = ""
        self._attempt = 1
        self._page_thread = 0  # the thread the pages go on (ready()'s caller)
        self._checked_at = monotonic()  # the idle browser's last health check
        # ctx.http's threads reach the browser for cookies one at a time (one driver
        # connection; chromedriver serves one command at a time anyway)
        self._cookie_calls = threading.RLock()

    @property
    def name(self) -> str:
        return self.session.name

    # ---- before a page -------------------------------------------------

    def ready(self, page_key: str, attempt: int) -> None:
        """Make the browser fit for the next page: started, restarted if due, logged in.

        Raises:
            HaltRun: the browser won't start, or re-logins keep failing.
            AuthLost: a login failed (the page is retried after a re-login).
        """
        session = self.session
        self._page_started = self._clock()
        self._page_key, self._attempt = page_key, attempt
        self._page_thread = threading.get_ident()
        if session.starts == 0 or not session.running:
            self.start()
        elif not session.present():
            self.restart("browser or driver process gone", category="browser_crash")
        elif self._idle_check_due() and not session.alive(self.settings.health_timeout):
            self.restart("browser did not answer its health check", category="browser_crash")
        elif reason := self.restart_wanted:
            self.restart_wanted = ""
            self.restart(reason, planned=True)
        elif due := self._restart_due():
            # Swap when the spare is up: a few pages late beats a page waiting for a launch.
            every = self._restart_every()
            late = session.pages_since_start >= every + max(1, every // SPARE_LATE_DIVISOR)
            if not session.spare_launching or late:
                self.restart(due, planned=True)
        elif self._seconds_to_restart() <= SPARE_LEAD_SECONDS and self._outlasts():
            session.prepare_spare()
        self._keep_login(page_key, attempt)

    def page_done(self) -> None:
        """Count a completed page; now and then note a good URL and empty the logs."""
        self._pages_done += 1
        self._pages_since_auth_check += 1
        self.session.pages_since_start += 1
        self.session.after_page()
        if self.last_good_url and (self.http is not None or self._pages_done % HOUSEKEEPING_EVERY):
            return  # a hybrid job's pages leave no logs (nothing loads): its URL is enough
        timeout = self.settings.health_timeout
        try:
            self.session.drain_signals(timeout)
            self.last_good_url = self.session.current_url(timeout)
        except Exception as exc:
            log.debug("%s: housekeeping failed: %s", self.name, type(exc).__name__)

    def _keep_login(self, page_key: str, attempt: int) -> None:
        job, session, settings = self.job, self.session, self.settings
        if job.login is None:
            return
        reason = ""
        if session.needs_login:
            reason = "auth lost" if self._logins else "first page"
        elif self.login_expires_at is not None:
            left = self.login_expires_at - self._clock()
            if left <= settings.relogin_before_expiry:
                reason = f"login cookie expires in {max(left, 0):.0f}s"
        if (
            not reason
            and job.is_logged_in is not None
            and settings.auth_check_every
            and self._pages_since_auth_check >= settings.auth_check_every
        ):
            self._pages_since_auth_check = 0
            ctx = self._context(page_key, attempt)
            if not job.is_logged_in(ctx):
                reason = "is_logged_in said no"
                self._emit("auth_check", "is_logged_in said no", category="auth_lost")
        if reason:
            self.login(reason, page_key, attempt)

    def _idle_check_due(self) -> bool:
        """A hybrid job's idle browser is checked now and then (pages don't use it)."""
        every = self.settings.browser_check_every
        if self.http is None or not every or self._monotonic() - self._checked_at < every:
            return False
        self._checked_at = self._monotonic()
        return True

    def login(self, reason: str, page_key: str, attempt: int) -> None:
        """Log in through the job's hook; failures count towards the circuit breaker.

        Raises:
            HaltRun: too many failed logins in the breaker's window.
            AuthLost: this login failed.
            Exception: the browser went away under the login (what it raised, for
                the page's recovery to classify and restart it).
        """
        assert self.job.login is not None
        # the cookies first: the turn of the pace is taken last, just before the
        # login's first request, so a hold another runner began meanwhile holds it
        before = {c["name"]: c.get("value") for c in self._cookies_now()}
        if not self._limiter.acquire(self._stop):
            raise AuthLost("stopped before logging in")
        turn_at = self._store_clock()
        began = self._clock()
        try:
            self.job.login(self._context(page_key, attempt))
            # a login is two requests to the site at least (its form, and the
            # page the site lands it on): the landing takes a turn of the pace
            # too, or N runners logging in at once burst past the job's rate
            self._limiter.acquire(self._stop)
            self._copy_login_cookies()
        except Exception as exc:
            found = classify(exc)
            if found.category in BROWSER_GONE or not self.session.present():
                # the browser died under the login (killed, crashed; a hook may have
                # wrapped that in AuthLost): not a failed login, and no count towards
                # the breaker; the page's recovery restarts the browser, and the next
                # one logs in
                self.session.needs_login = True
                if found.category in BROWSER_GONE:
                    raise
                raise BrowserDead(
                    f"the browser went away during the login: {found.message}"
                ) from exc
            message = found.message  # the runner redacts what it records
            self._emit(
                "login_failed",
                message,
                category="auth_lost",
                page_key=page_key,
                data={"turn_at": round(turn_at, 6)},
            )
            if self._relogins.failure():
                raise HaltRun(
                    f"login failed {self.settings.relogin_max} times within "
                    f"{self.settings.relogin_window:.0f}s; last: {message}"
                ) from None
            raise AuthLost(f"login failed: {message}") from None
        self._respect_slow_down(began, "the login")
        self.session.needs_login = False
        self.session.save_cookies()
        self.login_expires_at = _login_expiry(before, self.session.cookies)
        self._pages_since_auth_check = 0
        kind = "relogin" if self._logins else "login"
        self._logins += 1
        data: dict[str, Any] = {"reason": reason, "turn_at": round(turn_at, 6)}
        if self.login_expires_at is not None:
            data["expires_in"] = round(self.login_expires_at - self._clock(), 1)
        category = "auth_lost" if kind == "relogin" else None
        self._emit(kind, f"logged in ({reason})", category=category, page_key=page_key, data=data)
        log.info("%s: %s (%s)", self.name, kind, reason)

    def _copy_login_cookies(self) -> None:
        """Give ``ctx.http`` the cookies the login made.

        Raises:
            AuthLost: the login left no cookie for the job's site.
        """
        if self.http is None:
            return
        self.http.pull()
        if not len(self.http.cookies):
            raise AuthLost(
                f"the login left no cookie for {self.http.site}, so ctx.http has nothing "
                "to carry (does the login hook log in, and on the site Job.site names?)"
            )

    def _cookies_now(self) -> list[dict[str, Any]]:
        return self.session.read_cookies(self.settings.health_timeout) or []

    def forget_login(self) -> None:
        """The site no longer knows us: log in again before the next page."""
        self.session.forget_cookies()
        self.session.needs_login = True
        self.login_expires_at = None

    def _context(self, page_key: str, attempt: int) -> PageContext:
        return PageContext(
            key=page_key,
            driver=self.session.driver,
            page=self.session.page,
            attempt=attempt,
            job=self.job,
            client=self.http,
        )

    def release_thread(self) -> None:
        """The calling thread is done with the browser (the page discovery's)."""
        self.session.release_thread()

    # ---- what ctx.http asks of the browser (BrowserLink) ------------------

    def browser_cookies(self) -> list[dict[str, Any]] | None:
        """The browser's cookies, or None if it is not running or does not answer."""
        session = self.session
        if not session.running or not session.present():
            return None
        with self._cookie_calls:
            return session.read_cookies(self.settings.health_timeout)

    def write_cookies(self, changes: CookieChanges) -> None:
        """Cookies the site set on an HTTP answer: into the browser, and into the
        cookies a restarted browser gets (so the two never drift apart)."""
        assert self.http is not None
        site = self.http.site
        session = self.session
        cookies = [c.to_cdp(site) for c in changes.set]
        deleted = [(c.name, c.domain, c.path) for c in changes.deleted]
        session.merge_cookies(cookies, deleted)
        if not session.running or not session.present():
            return
        with self._cookie_calls:
            session.write_cookies(cookies, deleted, self.settings.health_timeout)

    def relogin(self, reason: str) -> None:
        """Log in again for ``ctx.http``: a dead or hung browser is restarted first."""
        session = self.session
        with self._cookie_calls:
            if not session.running or not session.present():
                self.restart("browser gone before a re-login", category="browser_crash")
            elif not session.alive(self.settings.health_timeout):
                self.restart("browser unresponsive before a re-login", category="browser_crash")
            try:
                self.login(reason, self._page_key, self._attempt)
            except HaltRun as exc:
                self.halting = str(exc)
                raise
            finally:
                if threading.get_ident() != self._page_thread:
                    session.release_thread()  # one of ctx.http's threads: done with it

    def login_not_cured(self, message: str) -> None:
        """A fresh login did not bring the session back: count it like a failed login."""
        self._emit("login_not_cured", message, category="auth_lost", page_key=self._page_key)
        if self._relogins.failure():
            self.halting = (
                f"a new login did not bring the session back {self.settings.relogin_max} "
                f"times within {self.settings.relogin_window:.0f}s; last: {message}"
            )
            raise HaltRun(self.halting)

    # ---- after an error ------------------------------------------------

    def signals(self, since: float | None = None) -> PageSignals | None:
        """What the browser showed since ``since`` (default: the page's start), or None
        when it does not answer."""
        if not self.session.running:
            return None  # the backend says what it can of a dead browser (or None)
        since = since or self._page_started or None
        # a little slack: chromedriver stamps entries in whole milliseconds
        since = since - 0.05 if since else None
        return self.session.signals(since, self.settings.health_timeout)

    def slow_down(
        self,
        category: str,
        status: int | None,
        retry_after: float | None,
        cooldown: float,
        what: str = "",
    ) -> None:
        """The site asked to slow down: cut the run's rate on a 429/503 (or any
        ``rate_limited``), and hold every worker for ``cooldown`` seconds."""
        if category == "rate_limited" or status in (429, 503):
            self._limiter.throttled(retry_after)
            rate = self._limiter.rate
            self._emit(
                "rate_cut",
                f"site asked to slow down; now at most {rate:.2f} pages/s" if rate else "",
                category=category,
                data={"rate": rate, "retry_after": retry_after},
            )
        if cooldown > 0:
            self._limiter.hold(cooldown)
            prefix = f"{what}; " if what else ""
            self._emit(
                "cooldown",
                f"{prefix}no requests to the site for {cooldown:.1f}s",
                category=category,
                data={"seconds": cooldown, "retry_after": retry_after, "status": status},
            )
            log.info("cooling down for %.1fs after %s", cooldown, what or category)

    def capture(
        self, group: str, label: str, signals: PageSignals | None = None
    ) -> dict[str, str] | None:
        """Flight-recorder files for the first error of ``group`` (None if not written)."""
        session = self.session
        if self._recorder is None or not session.running:
            return None
        if group in self._recorder.groups_seen or not session.present():
            return None
        timeout = self.settings.health_timeout
        return self._recorder.capture(
            lambda: session.look(timeout), group, label=label, signals=signals
        )

    def refresh(self) -> None:
        """Drop the page's state (blank page) so the retry starts clean."""
        try:
            self.session.goto("about:blank")
        except Exception as exc:
            log.debug("%s: refresh failed: %s", self.name, type(exc).__name__)

    def probe(self) -> tuple[bool, str]:
        """Can the browser still work and reach the site? (a health check, then a page load)"""
        if not self.session.running or not self.session.alive(self.settings.health_timeout):
            try:
                self.restart("probe found the browser unresponsive", category="browser_crash")
            except HaltRun:
                raise
            except Exception as exc:
                return False, f"restart failed: {type(exc).__name__}"
        if not self.last_good_url:
            return True, "browser answers"
        if not self._limiter.acquire(self._stop):
            return False, "stopped"
        try:
            self.session.goto(self.last_good_url)
        except Exception as exc:
            return False, classify(exc).message
        signals = self.session.signals(None, self.settings.health_timeout)
        if signals is None:
            return False, "browser stopped answering"
        if signals.net_error:
            return False, signals.net_error
        if signals.status is not None and (signals.status >= 500 or signals.status == 429):
            return False, f"HTTP {signals.status}"
        return True, f"loaded {signals.url or self.last_good_url}"

    # ---- starting and restarting ----------------------------------------

    def start(self, *, verify: bool = False) -> None:
        """Start the browser, retrying with backoff; verify it can load the site if asked.

        Raises:
            HaltRun: it failed to start ``max_restarts`` times in a row.
        """
        failures = 0
        while True:
            try:
                self.session.start()
                if verify and self.last_good_url:
                    self._verify()
                break
            except Exception as exc:
                failures += 1
                found = classify(exc)
                self._emit("browser_start_failed", found.message, category=found.category)
                self.session.stop()
                if failures >= self.settings.max_restarts:
                    raise HaltRun(
                        f"browser failed to start {failures} times; last: {found.message}"
                    ) from exc
                if self._stop.wait(self._backoff.delay(failures)):
                    raise HaltRun("stopped while the browser would not start") from exc
        self.session.needs_login = not self.session.has_cookies
        self._pages_since_auth_check = 0  # its cookies were just handed over
        self._checked_at = self._monotonic()
        if self.http is not None and self.session.has_cookies:
            self.http.pull()
        self._emit(
            "browser_start",
            f"{self.name} started",
            data={"verified": bool(verify and self.last_good_url)},
        )

    def _verify(self) -> None:
        """The new browser loads a page of the site (a navigation that doesn't raise)."""
        if not self._limiter.acquire(self._stop):
            return
        began = self._clock()
        self.session.goto(self.last_good_url)
        self._respect_slow_down(began, "the restart's check")

    def _respect_slow_down(self, since: float, what: str) -> None:
        """A 429/503 met outside a page (a login's redirect, a check) holds the site too.

        Pages are classified by the runner; these navigations are the manager's
        own, so it reads their outcome itself and waits out any Retry-After.
        """
        signals = self.signals(since)
        if signals is None or signals.status not in (429, 503):
            return
        self.slow_down(
            "rate_limited" if signals.status == 429 else "server_error",
            signals.status,
            signals.retry_after,
            signals.retry_after or self.settings.cooldown_default,
            what=f"{what} met HTTP {signals.status}",
        )
        self._limiter.acquire(self._stop)

    def restart(self, reason: str, *, planned: bool = False, category: str | None = None) -> None:
        """Replace the browser (a hung quit is never waited for: the tree is killed).

        A planned restart swaps in the spare and retires the old browser in the
        background; an unplanned one is verified against the site.
        """
        if self._hard_stop.is_set():
            return
        session = self.session
        if planned:
            session.save_cookies_if_alive()
        session.stop(background=planned)
        self._on_restart()
        self._emit(
            "browser_restart",
            reason,
            category=category,
            data={"reason": reason, "planned": planned},
        )
        log.info("%s: restarting browser (%s)", self.name, reason)
        if not self._stop.is_set():
            self.start(verify=not planned)

    def _restart_due(self) -> str:
        """Why the browser should be replaced now ("" if it should not)."""
        session = self.session
        every, max_age = self._restart_every(), self.settings.restart_max_age
        if every and session.pages_since_start >= every:
            return f"every {every} pages"
        if max_age and session.age >= max_age:
            return f"older than {max_age:.0f}s"
        return ""

    def _restart_every(self) -> int:
        """Pages between planned restarts: none for a hybrid job, whose pages don't load
        in the browser (its memory does not grow with them); else the setting, or the
        backend's default."""
        if self.http is not None:
            return 0
        every = self.settings.restart_every_pages
        return self.session.restart_every_pages if every is None else every

    def _outlasts(self) -> bool:
        """Whether pages remain beyond this browser's planned end (a spare is worth it)."""
        every = self._restart_every()
        return not every or self._pages_left() > every - self.session.pages_since_start

    def _seconds_to_restart(self) -> float:
        """Estimated seconds until a planned restart (inf if none is planned)."""
        session = self.session
        every, max_age = self._restart_every(), self.settings.restart_max_age
        left = float("inf")
        if max_age:
            left = max_age - session.age
        if every and session.pages_since_start:
            per_page = session.age / session.pages_since_start
            left = min(left, (every - session.pages_since_start) * per_page)
        return left


def _login_expiry(before: dict[str, Any], after: list[dict[str, Any]]) -> float | None:
    """When the cookies the login set expire first (epoch s; None: session cookies only)."""
    expiries = [
        float(c["expires"])
        for c in after
        if c.get("expires", -1) > 0 and before.get(c["name"]) != c.get("value")
    ]
    return min(expiries) if expiries else None
