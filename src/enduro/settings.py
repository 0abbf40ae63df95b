"""One settings object for the runner, read from ``ENDURO_*`` variables.

CLI flags and (later) scenario files map onto these same fields.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from enduro.errors import CATEGORIES

__all__ = ["DEFAULT_LOGIN_PATTERN", "RECOVERY_ACTIONS", "Settings", "parse_recovery_override"]

DEFAULT_LOGIN_PATTERN = r"/(log-?in|sign-?in|auth)(/|\?|$)"
"""A URL path (and query) that means the site sent us to log in."""

RECOVERY_ACTIONS: tuple[str, ...] = (
    "retry",  # retry the page, after a backoff delay
    "retry_now",  # retry the page at once
    "refresh",  # drop the page's state first
    "restart",  # restart the browser
    "relogin",  # log in again through the job's login hook
    "cooldown",  # no request to the site for Retry-After (or cooldown_default) seconds
    "skip",  # mark the page failed, go on
    "halt",  # stop the run
)
"""The action names a :attr:`Settings.recovery` override may use."""

_OVERRIDE = re.compile(
    r"^(?P<actions>[^@:]*?)\s*(?:@\s*(?P<budget>[^@:]*?)\s*)?(?::\s*(?P<attempts>[^@:]*?)\s*)?$"
)


def parse_recovery_override(
    value: str,
) -> tuple[tuple[str, ...], Literal["page", "infra"] | None, int | None]:
    """Read one ``Settings.recovery`` value: ``"restart,retry@infra:5"``.

    Returns:
        The action names in order, the budget (None: the category's default)
        and the attempts (None: the category's default).

    Raises:
        ValueError: naming the bad part and what is allowed.
    """
    match = _OVERRIDE.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not 'action,action[@page|@infra][:N]'")
    actions = tuple(a.strip().lower() for a in match["actions"].split(",") if a.strip())
    if not actions:
        raise ValueError(f"{value!r} names no action; allowed: {', '.join(RECOVERY_ACTIONS)}")
    bad = [a for a in actions if a not in RECOVERY_ACTIONS]
    if bad:
        raise ValueError(
            f"{value!r}: unknown action {bad[0]!r}; allowed: {', '.join(RECOVERY_ACTIONS)}"
        )
    budget: Literal["page", "infra"] | None = None
    if match["budget"] is not None:
        if match["budget"].lower() == "page":
            budget = "page"
        elif match["budget"].lower() == "infra":
            budget = "infra"
        else:
            raise ValueError(f"{value!r}: unknown budget {match['budget']!r}; allowed: page, infra")
    attempts: int | None = None
    if match["attempts"] is not None:
        if not match["attempts"].isdigit() or int(match["attempts"]) < 1:
            raise ValueError(
                f"{value!r}: attempts {match['attempts']!r} is not a whole number >= 1"
            )
        attempts = int(match["attempts"])
    return actions, budget, attempts


class Settings(BaseSettings):
    """Everything the runner and the session manager can be told."""

    model_config = SettingsConfigDict(env_prefix="ENDURO_", frozen=True, extra="forbid")

    store: str = "enduro.db"
    """Where the store is: a file path or ``sqlite:///path`` (SQLite), or
    ``postgresql://user@host:port/db`` (PostgreSQL, shared by many runners; give
    the password in ``PGPASSWORD`` or ``~/.pgpass``, not in the URL)."""

    host_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=255)
    """The name this runner's host goes by in the store. Runs of the same host
    reap each other's dead browsers by PID; runs of other hosts only reclaim the
    pages of a run whose heartbeat lapsed."""

    workers: int = Field(1, ge=1, le=32)
    """Browser sessions run side by side, one page loop each."""

    headless: bool = True
    """Run Chromium without a window."""

    grid_url: str | None = Field(None, pattern=r"^https?://[^\s/]+")
    """A Selenium Grid 4 to take browsers from (``http://host:4444``) instead of
    starting Chromium on this host (None: local)."""

    backend: Literal["selenium", "playwright"] | None = None
    """What drives the browser: ``selenium`` (``ctx.driver``) or ``playwright``
    (``ctx.page``). None: the one the job pins (``Job.backend``), else Selenium."""

    browser_gc_every: int = Field(20, ge=0)
    """Playwright backend: pages between garbage collections of the page's heap, which
    locators and element handles grow until one (0: never)."""

    chromium: str = "chromium"
    """Chromium binary (a name on PATH or a path); never downloaded."""

    chromedriver: str = "chromedriver"
    """chromedriver binary (a name on PATH or a path); never downloaded."""

    page_timeout: float = Field(60.0, gt=0)
    """Seconds a page may take, handler included, before it is cut short."""

    max_attempts: int = Field(4, ge=1)
    """Attempts a page gets before it is marked failed."""

    backoff_base: float = Field(1.0, ge=0)
    """First retry delay in seconds; doubles with each attempt."""

    backoff_max: float = Field(60.0, ge=0)
    """Longest retry delay in seconds."""

    restart_every_pages: int | None = Field(None, ge=0)
    """Restart the browser after this many pages (0: never; None: the backend's
    default — 200 on Selenium; none on Playwright, whose garbage collections keep the
    renderer flat, measured, so only its age and memory restart it)."""

    restart_max_age: float = Field(1800.0, ge=0)
    """Restart the browser once it is this many seconds old (0: never)."""

    max_restarts: int = Field(20, ge=1)
    """Consecutive failed browser starts before the run halts."""

    lease_seconds: float = Field(300.0, gt=0)
    """How long a claimed page stays leased to its runner without a heartbeat."""

    monitor_interval: float = Field(30.0, ge=0)
    """Seconds between resource samples (0: no monitor)."""

    alert_memory_percent: float = Field(90.0, gt=0, le=100)
    """System memory in use (of the cgroup limit, if any) that raises an alert
    and pauses new pages until it falls back."""

    alert_cpu_percent: float = Field(90.0, gt=0, le=100)
    """System CPU use that raises an alert."""

    alert_browser_pss_mb: float = Field(1500.0, gt=0)
    """Browser process tree PSS (MB) that raises an alert and restarts the browser."""

    alert_disk_free_mb: float = Field(500.0, ge=0)
    """Free disk (MB) where the store lives under which an alert is raised."""

    seed: int | None = None
    """Seed for retry jitter (None: from the OS)."""

    recovery: dict[str, str] = {}
    """Per-category recovery overrides, ``{"element": "skip", "timeout": "restart,retry@infra",
    "unknown": "retry:5"}``: actions, then optionally ``@page``/``@infra`` and ``:attempts``."""

    max_recoveries: int = Field(10, ge=1)
    """Infrastructure recoveries (crash, rate limit, ...) one page may cause before it fails."""

    unknown_attempts: int = Field(3, ge=1)
    """Attempts a page gets when its errors fall in no known category."""

    handler_bug_attempts: int = Field(2, ge=1)
    """Attempts a page gets when the job's handler itself fails (KeyError, TypeError, ...)."""

    cooldown_default: float = Field(10.0, ge=0)
    """Seconds of cool-down after a rate limit that came without a Retry-After."""

    rate_limit: float | None = Field(None, gt=0)
    """Pages per second to start at (None: the rate a previous run learned, else unlimited)."""

    rate_min: float = Field(0.5, gt=0)
    """The adaptive rate limiter never goes below this many pages per second."""

    rate_max: float | None = Field(None, gt=0)
    """Pages per second the job never goes above, all its runners together
    (None: no ceiling; the limiter learns the site's rate)."""

    relogin_max: int = Field(3, ge=1)
    """Failed logins within ``relogin_window`` that halt the run."""

    relogin_window: float = Field(600.0, gt=0)
    """Seconds within which ``relogin_max`` failed logins halt the run."""

    cascade_errors: int = Field(5, ge=1)
    """Errors of one category within ``cascade_window`` that pause every worker to probe
    (a site's, a browser's or the network's: a burst of page-side errors probes nothing)."""

    cascade_window: float = Field(60.0, gt=0)
    """Seconds within which ``cascade_errors`` errors count as a burst."""

    cascade_probes: int = Field(5, ge=1)
    """Probes (with backoff) after a burst before the run halts."""

    broken_job_errors: int = Field(10, ge=0)
    """Page-side failures (``handler_bug``, ``unknown``, ``element``, ``javascript``) with
    no page done between them that halt the run as a broken job, its pages left pending
    (0: never). Only pages that first failed since the last page done count."""

    stall_timeout: float = Field(600.0, ge=0)
    """Seconds without a completed page before the browsers restart, then the run halts (0: off)."""

    auth_check_every: int = Field(25, ge=0)
    """Pages between calls of the job's ``is_logged_in`` hook (0: never)."""

    relogin_before_expiry: float = Field(60.0, ge=0)
    """Log in again this many seconds before the login cookie expires."""

    health_timeout: float = Field(5.0, gt=0)
    """Seconds a browser health check may take before the browser counts as hung."""

    login_url_pattern: str = DEFAULT_LOGIN_PATTERN
    """Regex searched in the URL's path and query: a match means the site wants a login."""

    page_signals: bool = True
    """Have chromedriver log network responses and console messages, so a failed
    page's HTTP status, Retry-After and script errors can be read (costs a little
    speed; off, rate limits are cooled down for cooldown_default seconds)."""

    flight_recorder: bool = True
    """Save a screenshot, the DOM and the console log at the first error of each kind."""

    http_retries: int = Field(4, ge=0)
    """Retries a failed ``ctx.http`` request gets inside the page (rate limits, 5xx,
    network, a lost login) before the error reaches the handler and the page."""

    http_backoff_base: float = Field(0.1, ge=0)
    """First delay in seconds between retries of one HTTP request; doubles each time."""

    http_timeout: float = Field(30.0, gt=0)
    """Seconds an HTTP request may take to connect, send or read (never past the page's
    deadline)."""

    http_concurrency: int = Field(4, ge=1, le=64)
    """Requests ``ctx.http.map`` keeps in flight at most, unless the handler says."""

    http_cookie_sync: float = Field(120.0, ge=0)
    """Seconds between copies of the browser's cookies into ``ctx.http`` (besides those
    after a start, a restart, a login and a lost login; 0: only those)."""

    http_rate_min: float = Field(1.0, gt=0)
    """An endpoint's adaptive rate limit is never cut below this many requests per second."""

    browser_check_every: float = Field(30.0, ge=0)
    """Seconds between health checks of a hybrid job's idle browser (0: only the pid check
    before each page)."""

    @field_validator("store", mode="before")
    @classmethod
    def _store_text(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value

    @field_validator("recovery")
    @classmethod
    def _check_recovery(cls, value: dict[str, str]) -> dict[str, str]:
        for category, spec in value.items():
            if category not in CATEGORIES:
                raise ValueError(
                    f"recovery: unknown category {category!r}; allowed: {', '.join(CATEGORIES)}"
                )
            try:
                parse_recovery_override(spec)
            except ValueError as exc:
                raise ValueError(f"recovery[{category!r}]: {exc}") from None
        return value

    @field_validator("login_url_pattern")
    @classmethod
    def _check_login_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"login_url_pattern {value!r} is not a valid regex: {exc}") from None
        return value
