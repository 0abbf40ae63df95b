"""``ctx.http``: an HTTP client bound to a worker's logged-in browser session.

The browser logs in; the handler calls the site's API through this client,
which carries the browser's cookies (:mod:`enduro.session._cookies`) and
sends them to the job's site only. Each request:

1. waits for its endpoint's limiter (:class:`~enduro.recovery.EndpointLimiters`:
   an adaptive rate and every Retry-After, shared by all workers);
2. gets the site's cookies and the job's ``prepare_request`` (a CSRF header);
3. is classified with the categories of browser errors — 429 rate_limited,
   5xx server_error, refused / reset / cut-off bodies network, no answer in
   time timeout, 401 / 403 / a redirect to the login page auth_lost, HTML
   where JSON was promised bad_response — and, for those, retried here, inside
   the page, within ``Settings.http_retries``, before the handler (and the
   page) sees the error. A lost login is cured in steps: cookies the answer
   set or the browser holds now, else a re-login through the browser (the
   session manager's login path and its circuit breaker).

Cookies flow both ways: copied from the browser when the session starts,
after every login and restart, every ``Settings.http_cookie_sync`` seconds
and when the site says the login lapsed; cookies the site sets on an answer
go into the browser (or, while it is down, into the cookies a restarted
browser gets). Requests are counted per endpoint (:class:`HttpStats`), not
stored one by one; the first error of each kind goes to the flight recorder.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

import httpx

from enduro._endpoints import endpoint_of
from enduro._secrets import Redactor
from enduro.errors import (
    AuthLost,
    ForeignHost,
    HaltRun,
    PageTimeout,
)
from enduro.recovery import (
    Backoff,
    Classification,
    EndpointLimiters,
    RateLimiter,
    classify,
)
from enduro.session._answers import flight_record, shown, transport_error, verdict
from enduro.session._cookies import CookieChanges, SiteClient, SiteCookies
from enduro.session._http_stats import HttpStats
from enduro.session._recorder import FlightRecorder
from enduro.settings import Settings

__all__ = ["BrowserLink", "HttpClient", "csrf_header"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

RETRIED = frozenset(
    {"network", "timeout", "rate_limited", "server_error", "auth_lost", "bad_response"}
)
"""Categories a request is retried for inside the page; any other error goes to the handler."""
BAD_RESPONSE_RETRIES = 1
"""An answer that is not what was promised is asked for once more, not more: it is
usually a wrong URL, and the page's own budget decides the rest."""
# Header names whose values the prepare hook sets are secrets (a CSRF token).
_SECRET_HEADER = ("token", "csrf", "xsrf", "auth", "key", "secret", "session", "cookie")


class BrowserLink(Protocol):
    """What the client needs from the worker's browser session (the session manager)."""

    def browser_cookies(self) -> list[dict[str, Any]] | None:
        """The browser's cookies (``Network.getAllCookies``), None if it does not answer."""
        ...

    def write_cookies(self, changes: CookieChanges) -> None:
        """Put cookies the site set on an answer into the browser (and its successors)."""
        ...

    def relogin(self, reason: str) -> None:
        """Log in again through the browser (the client copies its cookies afterwards).

        Raises:
            HaltRun: logins keep failing (the circuit breaker is open).
            AuthLost: this login failed.
        """
        ...

    def login_not_cured(self, message: str) -> None:
        """A login just made did not bring the session back (counts towards the breaker).

        Raises:
            HaltRun: the breaker is open.
        """
        ...


Emit = Callable[..., None]


def csrf_header(
    cookie: str, header: str = "X-CSRF-Token", separator: str = "|"
) -> Callable[[httpx.Request, dict[str, str]], None]:
    """A ``Job.prepare_request`` that sends a token read from a cookie as a header.

    The cookie's value is URL-decoded and cut at ``separator`` (the usual
    ``token|signature`` form); the part before it is the token. Read on every
    request, so a token the site rotates, or a new login's, is used at once.

    Args:
        cookie: the name of the cookie holding the token.
        header: the header to send it in.
        separator: what the token ends at ("" to send the whole value).
    """

    def prepare(request: httpx.Request, cookies: dict[str, str]) -> None:
        raw = cookies.get(cookie)
        if raw is None:
            return  # no token (yet): the site's answer tells, and the login cures it
        value = unquote(raw)
        if separator:
            value = value.split(separator, 1)[0]
        request.headers[header] = value

    prepare.__name__ = f"csrf_header({cookie!r})"
    return prepare


class HttpClient:
    """The HTTP client of one worker, bound to its browser session.

    Args:
        site: the site's origin; cookies go there and nowhere else.
        settings: retries, timeouts, concurrency, cookie sync.
        link: the worker's browser session (cookies, re-login).
        limiters: the run's per-endpoint limiters.
        stats: the run's per-endpoint counters.
        redactor: the run's redactor; it learns the cookies and tokens sent.
        prepare: the job's ``prepare_request`` hook.
        emit: records events (cool-downs, the first error of each kind).
        recorder: the flight recorder (None: off).
        abort: set when the run abandons the pages in hand.
        name: the worker's name, for logs and threads.
        rng: jitter of the retry delays.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        site: str,
        settings: Settings,
        *,
        link: BrowserLink,
        limiters: EndpointLimiters,
        stats: HttpStats,
        redactor: Redactor,
        prepare: Callable[[httpx.Request, dict[str, str]], None] | None = None,
        emit: Emit | None = None,
        recorder: FlightRecorder | None = None,
        abort: threading.Event | None = None,
        name: str = "w0",
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.site = site
        self.cookies = SiteCookies(site)
        self._settings = settings
        self._link = link
        self._limiters = limiters
        self._stats = stats
        self._redact = redactor
        self._prepare = prepare
        self._emit = emit or (lambda *args, **kwargs: None)
        self._recorder = recorder
        self._abort = abort or threading.Event()
        self._login_pattern = settings.login_url_pattern  # a redirect there: login lapsed
        self.name = name
        self._clock = clock
        self._backoff = Backoff(
            settings.http_backoff_base,
            max(settings.http_backoff_base, 5.0),
            rng=rng or random.Random(),
        )
        self._origin = httpx.URL(site)
        self._base = str(self._origin.copy_with(raw_path=b"")).rstrip("/")
        self._client = SiteClient(
            base_url=site,
            follow_redirects=False,
            timeout=settings.http_timeout,
            limits=httpx.Limits(
                max_connections=max(8, settings.http_concurrency * 2),
                max_keepalive_connections=max(8, settings.http_concurrency * 2),
            ),
            transport=transport,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._sync_lock = threading.Lock()
        self._login_lock = threading.Lock()
        self._synced_at = float("-inf")
        self._relogins = 0
        self._relogin_epochs: set[int] = set()
        self._uncured: set[int] = set()
        self._failed_login: tuple[int, str] | None = None  # (epoch, why) of a failed re-login
        self._logging_in: int | None = None  # the thread inside a re-login, if any
        self._expired = threading.Event()
        self._deadline = float("inf")
        self._page = ""
        self._closed = False

    # ---- the page in hand -----------------------------------------------

    def begin_page(self, key: str, timeout: float) -> None:
        """Requests from now on belong to page ``key`` and end with its deadline."""
        self._page = key
        self._deadline = self._clock() + timeout
        self._expired.clear()
        self._failed_login = None  # a new page may log in again

    def expire(self) -> None:
        """The page overran its deadline: no more requests for it (from the watchdog)."""
        self._expired.set()

    def end_page(self) -> None:
        self._page = ""
        self._deadline = float("inf")

    # ---- requests ---------------------------------------------------------

    def request(
        self, method: str, url: str, *, endpoint: str | None = None, **options: Any
    ) -> httpx.Response:
        """Send a request to the site, recovering what fails inside the page.

        Args:
            method: ``GET``, ``POST``, ...
            url: a path of the site (``/api/...``) or a full URL on it.
            endpoint: the limiter's name for it (default: the path, ids templated out).
            options: ``params``, ``headers``, ``json``, ``data``, ``content`` as httpx takes them.

        Returns:
            The answer (any status below 400 but a redirect to the login page).

        Raises:
            ForeignHost: ``url`` is on another host.
            PageError: what still failed after the request's retries
                (RateLimited, ServerError, NetworkError, RequestTimeout, AuthLost, HttpError).
            PageTimeout: the page's deadline passed.
        """
        response, _ = self._send_recovering(method, url, endpoint, False, options)
        return response

    def get(self, url: str, **options: Any) -> httpx.Response:
        """``request("GET", url, ...)``."""
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        """``request("POST", url, ...)``."""
        return self.request("POST", url, **options)

    def get_json(self, url: str, **options: Any) -> Any:
        """GET and return the parsed JSON; an answer that is not JSON is retried, then
        raises :class:`~enduro.errors.BadResponse` (a JSON body cut short is network)."""
        return self._send_recovering("GET", url, options.pop("endpoint", None), True, options)[1]

    def post_json(self, url: str, **options: Any) -> Any:
        """POST (``json=...`` for a JSON body) and return the parsed JSON answer."""
        return self._send_recovering("POST", url, options.pop("endpoint", None), True, options)[1]

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], *, concurrency: int | None = None
    ) -> list[R]:
        """``[fn(item) for item in items]`` with at most ``concurrency`` calls at once.

        ``fn`` typically makes one request (``lambda i: ctx.http.get_json(...)``);
        every request still goes through the endpoint limiters. The first error
        stops new calls; the ones running finish, then it is raised.
        """
        work = list(items)
        k = concurrency or self._settings.http_concurrency
        if k <= 1 or len(work) <= 1:
            return [fn(item) for item in work]
        pool = self._pool_for(k)
        results: list[Any] = [None] * len(work)
        running: dict[Future[R], int] = {}
        failure: BaseException | None = None
        upcoming = 0
        while running or (upcoming < len(work) and failure is None):
            while failure is None and upcoming < len(work) and len(running) < k:
                running[pool.submit(fn, work[upcoming])] = upcoming
                upcoming += 1
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                error = future.exception()
                if error is None:
                    results[index] = future.result()
                elif failure is None or (
                    isinstance(error, HaltRun) and not isinstance(failure, HaltRun)
                ):
                    failure = error  # a halt outranks the page's own errors
        if failure is not None:
            raise failure
        return results

    # ---- cookies ---------------------------------------------------------

    def pull(self) -> bool:
        """Copy the browser's cookies for the site (does nothing if it does not answer).

        Returns:
            Whether the client's cookies changed.
        """
        cookies = self._link.browser_cookies()
        if cookies is None:
            return False
        with self._sync_lock:
            changed = self.cookies.replace(cookies)
            self._synced_at = self._clock()
        self._learn(c.value for c in self.cookies.all())
        return changed

    def close(self) -> None:
        """Close the connections and the threads of :meth:`map`; safe twice."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._client.close()

    # ---- one request, recovered ------------------------------------------------

    def _send_recovering(
        self, method: str, url: str, endpoint: str | None, want_json: bool, options: dict[str, Any]
    ) -> tuple[httpx.Response, Any]:
        method = method.upper()
        target = self._target(method, url)
        name = endpoint or endpoint_of(target.path)
        limiter = self._limiters.get(name)
        where = f"{method} {shown(target)}"
        tries = 0
        while True:
            self._check_time(where)
            self._sync_if_due()
            if not limiter.acquire(wait=self._wait, track=True):
                self._check_time(where)
            epoch = self._epoch()
            began = self._clock()
            response: httpx.Response | None = None
            request: httpx.Request | None = None
            parsed: Any = None
            try:
                request = self._build(method, target, options)
                response = self._client.send(request)
                parsed, error = verdict(where, response, want_json, self._login_pattern)
            except httpx.HTTPError as exc:  # no answer in time, refused, reset, cut short, ...
                error = transport_error(where, exc)
            finally:
                limiter.finished()
            found = classify(error) if error is not None else None
            self._stats.record(
                name, self._clock() - began, found.category if found else None, retry=tries > 0
            )
            if response is not None:
                self._take_cookies(response, target.path)
            if error is None or found is None:
                limiter.succeeded()
                assert response is not None
                return response, parsed
            tries += 1
            self._record_first(found, name, where, request, response, tries)
            budget = (
                BAD_RESPONSE_RETRIES
                if found.category == "bad_response"
                else self._settings.http_retries
            )
            if found.category not in RETRIED or tries > budget:
                raise error
            log.debug("%s: %s, try %d: %s", self.name, where, tries, found.message)
            self._recover(found, name, limiter, epoch, response, tries)

    def _recover(
        self,
        found: Classification,
        name: str,
        limiter: RateLimiter,
        epoch: int,
        response: httpx.Response | None,
        tries: int,
    ) -> None:
        category = found.category
        if category == "auth_lost":
            self._reauth(epoch, found.message, response)
            return
        told = category == "rate_limited" or found.status == 503
        if told:
            limiter.throttled(found.retry_after)
        cooldown = found.retry_after
        if cooldown is None and category == "rate_limited":
            cooldown = self._settings.cooldown_default
        if cooldown:
            in_flight = limiter.hold(cooldown) or 0
            self._emit(
                "cooldown",
                f"{name}: no requests for {cooldown:.1f}s after HTTP {found.status}",
                category=category,
                page_key=self._page or None,
                data={
                    "endpoint": name,
                    "seconds": cooldown,
                    "retry_after": found.retry_after,
                    "status": found.status,
                    "in_flight": in_flight,
                    "rate": limiter.rate,
                },
            )
            return  # the next acquire waits it out
        self._wait(self._backoff.delay(tries))

    def _reauth(self, epoch: int, message: str, response: httpx.Response | None) -> None:
        """Bring a lost login back: new cookies if there are any, else a re-login."""
        if self._logging_in == threading.get_ident():
            # the login hook's own request (it may use ctx.http) found no session:
            # that is the login failing, not a reason to log in again inside it
            raise AuthLost(message)
        with self._login_lock:
            if self._epoch() != epoch:
                return  # cookies changed since the request went out: try with them
            failed = self._failed_login
            if failed is not None and failed[0] == epoch:
                # another request's login just failed: one incident, one failed login
                raise AuthLost(failed[1])
            if epoch in self._relogin_epochs and epoch not in self._uncured:
                self._uncured.add(epoch)
                self._link.login_not_cured(message)  # may halt the run
            status = response.status_code if response is not None else None
            if status in (401, 403) and self.pull():
                return  # the browser had fresher cookies
            self._logging_in = threading.get_ident()
            try:
                self._link.relogin(f"ctx.http: {message}")
            except AuthLost as exc:
                self._failed_login = (epoch, str(exc))
                raise
            finally:
                self._logging_in = None
            self.pull()
            self._relogins += 1
            self._relogin_epochs.add(self._epoch())

    # ---- pieces ------------------------------------------------------------

    def _epoch(self) -> int:
        """Changes whenever the credentials a request carries may have changed."""
        return self.cookies.generation + self._relogins

    def _target(self, method: str, url: str) -> httpx.URL:
        if url.startswith("/") and not url.startswith("//") and "/." not in url:
            # a path on the site (the common case): ~40 µs where join takes ~90
            return httpx.URL(self._base + url)
        target = self._origin.join(url)
        if (target.scheme, target.host, target.port) != (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        ):
            raise ForeignHost(
                f"{method} to {target.scheme}://{target.netloc.decode()} refused: ctx.http "
                f"carries the cookies of {self.site} and sends them nowhere else "
                "(use a client of your own for other sites)"
            )
        return target

    def _build(self, method: str, target: httpx.URL, options: Mapping[str, Any]) -> httpx.Request:
        left = self._deadline - self._clock()
        timeout = max(0.001, min(self._settings.http_timeout, left))
        request = self._client.build_request(method, target, timeout=timeout, **options)
        cookie = self.cookies.header(target.path)
        if cookie:
            request.headers["Cookie"] = cookie
        if self._prepare is not None:
            before = dict(request.headers)
            self._prepare(request, self.cookies.values())
            self._learn(
                value
                for key, value in request.headers.items()
                if before.get(key) != value and any(word in key for word in _SECRET_HEADER)
            )
        return request

    def _take_cookies(self, response: httpx.Response, path: str) -> None:
        headers = response.headers.get_list("set-cookie")
        if not headers:
            return
        with self._sync_lock:
            changes = self.cookies.absorb(headers, path)
        if changes:
            self._learn(c.value for c in changes.set)
            try:
                self._link.write_cookies(changes)
            except Exception as exc:  # the browser may be gone; its successor gets them
                log.debug("%s: cookies not written back: %s", self.name, type(exc).__name__)

    def _sync_if_due(self) -> None:
        every = self._settings.http_cookie_sync
        if every and self._clock() - self._synced_at >= every:
            try:
                self.pull()
            except Exception as exc:
                log.debug("%s: cookie sync failed: %s", self.name, type(exc).__name__)

    def _learn(self, values: Iterable[str]) -> None:
        found = [v for v in values if v]
        self._redact.add([*found, *(unquote(v) for v in found)])

    def _check_time(self, where: str) -> None:
        if self._closed:
            raise RuntimeError("ctx.http is closed")
        if self._abort.is_set():
            raise PageTimeout(f"{where}: the run is abandoning the page")
        if self._expired.is_set() or self._clock() >= self._deadline:
            raise PageTimeout(f"{where}: the page's deadline passed")

    def _wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (never past the deadline); True: give up."""
        left = self._deadline - self._clock()
        if left <= 0:
            return True
        return self._expired.wait(min(seconds, left)) or self._abort.is_set()

    def _pool_for(self, size: int) -> ThreadPoolExecutor:
        if self._pool is None or size > self._pool_size:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(size, thread_name_prefix=f"enduro-{self.name}-http")
            self._pool_size = size
        return self._pool

    def _record_first(
        self,
        found: Classification,
        endpoint: str,
        where: str,
        request: httpx.Request | None,
        response: httpx.Response | None,
        tries: int,
    ) -> None:
        """The first error of each (category, endpoint): what was asked and answered."""
        group = f"http:{found.category}:{endpoint}"
        if self._recorder is None or group in self._recorder.groups_seen:
            return
        record = flight_record(found, endpoint, self._page, where, request, response, tries)
        files = self._recorder.capture_record(group, record, self._redact)
        if files:
            self._emit(
                "http_error",
                self._redact(found.message),
                category=found.category,
                page_key=self._page or None,
                data={"endpoint": endpoint, "flight": files},
            )
