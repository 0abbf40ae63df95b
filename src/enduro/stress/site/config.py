"""The site's configuration, what it keeps on its application object, and its request log.

All state (sessions, request counts, the request log) lives on the aiohttp
application under the keys below, so two apps in one process never share
anything.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from enduro.stress.site.faults import FaultPlan

__all__ = [
    "CONFIG",
    "PAGE_FAULT",
    "REQUEST_COUNTS",
    "REQUEST_LOG",
    "SESSIONS",
    "SESSION_COOKIE",
    "SESSION_DEADLINES",
    "RequestLogEntry",
    "SiteConfig",
    "check_config",
]

SESSION_COOKIE = "enduro_session"
"""The cookie carrying a login's session token."""


@dataclass(frozen=True)
class SiteConfig:
    """What the site serves and who may log in.

    Attributes:
        seed: selects the data set; same seed, same matches.
        pages: number of match-list pages (1..pages).
        rows: matches per page.
        username: the one account that can log in.
        password: its password.
        fault_plan: server-side faults to inject (none by default).
        session_ttl: seconds a login lasts (None: until logout). The cookie
            carries it as Max-Age (rounded up), so a client can see it coming.
        pace: seconds every match-list page waits before it is answered, for
            a rehearsal at a real site's speed (0: as fast as it can).
        api_rate: requests per second the v2 API allows per endpoint template
            per session (a token bucket, burst ``max(1, api_rate)``); over it,
            429 with Retry-After (None: no limit).
        csrf_rotate_every: seconds a CSRF token lasts before the site rotates
            it, refusing the request that carried the old one (None: never).
        clock: the site's monotonic clock, in seconds: session lifetimes, CSRF
            token ages and the API's rate limit read it (swap it in tests).
    """

    seed: int = 1
    pages: int = 724
    rows: int = 50
    username: str = "demo"
    password: str = "enduro-demo"
    fault_plan: FaultPlan = field(default_factory=FaultPlan)
    session_ttl: float | None = None
    pace: float = 0.0
    api_rate: float | None = None
    csrf_rotate_every: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)


@dataclass(frozen=True)
class RequestLogEntry:
    """One request the site received.

    Attributes:
        at: ``time.time()`` when the request arrived.
        method: the HTTP method.
        path: the path with its query.
        status: the status answered; 0 when the fault cut the connection.
        fault_id: the id of the fault it got, if any.
        fault_kind: the kind of that fault, if any.
    """

    at: float
    method: str
    path: str
    status: int
    fault_id: str | None = None
    fault_kind: str | None = None


CONFIG = web.AppKey("config", SiteConfig)
SESSIONS: web.AppKey[dict[str, str]] = web.AppKey("sessions", dict)
"""Session token -> username of every live session."""
REQUEST_COUNTS: web.AppKey[Counter[str]] = web.AppKey("request_counts", Counter)
"""Requests served per path prefix (``/matches``, ``/api/matches``, ``/static``...)."""
REQUEST_LOG: web.AppKey[list[RequestLogEntry]] = web.AppKey("request_log", list)
"""Every request, in arrival order, with the fault it got."""
SESSION_DEADLINES: web.AppKey[dict[str, float]] = web.AppKey("session_deadlines", dict)
"""Session token -> ``config.clock()`` reading after which it is no longer valid
(``session_ttl`` only)."""
PAGE_FAULT = web.RequestKey("page_fault", str)
"""The fault that changes how a match-list page is rendered (stale_dom, missing_element)."""


def check_config(config: SiteConfig) -> None:
    """Refuse a configuration the site cannot serve.

    Raises:
        ValueError: naming the field out of range.
    """
    if config.pages < 1 or config.rows < 1:
        raise ValueError(f"pages and rows must be >= 1, got {config.pages} and {config.rows}")
    ttl = config.session_ttl
    if ttl is not None and not 0 < ttl < math.inf:
        raise ValueError(f"session_ttl must be a number of seconds > 0, got {ttl!r}")
    if not 0 <= config.pace < math.inf:
        raise ValueError(f"pace must be a number of seconds >= 0, got {config.pace!r}")
    rate = config.api_rate
    if rate is not None and not 0 < rate < math.inf:
        raise ValueError(f"api_rate must be a number of requests per second > 0, got {rate!r}")
    every = config.csrf_rotate_every
    if every is not None and not 0 < every < math.inf:
        raise ValueError(f"csrf_rotate_every must be a number of seconds > 0, got {every!r}")
