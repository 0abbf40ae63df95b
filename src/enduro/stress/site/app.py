"""The target site's aiohttp application: a logged-in, JavaScript-rendered match list.

Routes (HTML unless noted; "login" means no session cookie redirects to
``/login?next=...``, or answers 401 JSON for ``/api``):

    GET  /                      302 to /matches?page=1
    GET  /login, POST /login    form; sets the ``enduro_session`` cookie
    GET  /logout                ends the session, 302 to /login
    GET  /matches?page=N        login; empty table filled by /static/matches.js
    GET  /api/matches?page=N    login; JSON {"page", "pages", "rows"}
    GET  /api/meta              JSON {"pages", "rows", "seed"}
    GET  /match/{match_id}      login; server-rendered detail page
    GET  /static/matches.js     the script that renders the rows
    GET  /healthz               "ok"
    GET  /api/v2/matches?itemsPerPage=K&currentPage=N
    GET  /api/v2/matches/{match_id}/relationship
    GET  /api/v2/matches/{match_id}/badge
    POST /api/v2/matches/badges
                                JSON; login (else 303 to /login?next=...) and
                                the X-CSRF-Token header: see api.py

A login also sets the ``enduro_csrf`` cookie the v2 API's token is read from.

Every HTML page links an empty icon (``data:,``), so browsers never ask for
/favicon.ico: each request a client makes is one it meant to make.

Server-side faults come from ``SiteConfig.fault_plan`` (faults.py decides which
request gets what; the middleware here applies it, for real). Every request is
appended to ``REQUEST_LOG`` with the fault it got, if any.

All state (sessions, request counts, the request log) lives on the application
object, so two apps in one process never share anything.

This module builds the application and holds the middleware that counts,
logs and faults every request; the configuration and the application's keys
are in config.py, the HTML pages and their sessions in pages.py, the v2 API
in api.py.
"""

from __future__ import annotations

import asyncio
import html
import logging
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from enduro.stress.site.api import (
    RATE_LIMITED,
    add_routes,
    fault_response,
    hybrid_target,
    rotate_csrf,
)
from enduro.stress.site.config import (
    CONFIG,
    PAGE_FAULT,
    REQUEST_COUNTS,
    REQUEST_LOG,
    SESSION_COOKIE,
    SESSION_DEADLINES,
    SESSIONS,
    RequestLogEntry,
    SiteConfig,
    check_config,
)
from enduro.stress.site.faults import Fault
from enduro.stress.site.pages import (
    add_page_routes,
    broken_script,
    current_user,
    document,
    end_session,
    html_response,
    live_session,
    maintenance,
    parse_page,
    rate_limited,
    server_error,
)

# The names tests and the package take from here, re-exported from config.py.
__all__ = [
    "CONFIG",
    "REQUEST_COUNTS",
    "REQUEST_LOG",
    "SESSIONS",
    "SESSION_COOKIE",
    "RequestLogEntry",
    "SiteConfig",
    "make_app",
    "path_prefix",
]

logger = logging.getLogger(__name__)


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(config: SiteConfig) -> web.Application:
    """Build the site for ``config``; serve it with ``SiteServer`` or ``serve_forever``."""
    check_config(config)
    app = web.Application(middlewares=[_count_and_fault])
    app[CONFIG] = config
    app[SESSIONS] = {}
    app[SESSION_DEADLINES] = {}
    app[REQUEST_COUNTS] = Counter()
    app[REQUEST_LOG] = []
    add_page_routes(app)
    add_routes(app, config, live_session)
    return app


def path_prefix(path: str) -> str:
    """Return the counting key of ``path``: ``/api/<name>`` for the API, else ``/<first>``."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 1:
        return f"/api/{parts[1]}"
    return "/" + parts[0]


@web.middleware
async def _count_and_fault(request: web.Request, handler: _Handler) -> web.StreamResponse:
    arrived = time.time()
    request.app[REQUEST_COUNTS][path_prefix(request.path)] += 1
    fault: Fault | None = None
    status = 0
    try:
        target = _fault_target(request)
        if target is not None:
            kind_of_request, target_page, page_load = target
            fault = request.app[CONFIG].fault_plan.decide(
                kind_of_request, request.path_qs, target_page, page_load=page_load
            )
        if fault is not None:
            logger.debug("fault %s %s on %s", fault.id, fault.kind, fault.path)
        hybrid = target is not None and target[0] == "hybrid"
        response, cut = await _serve(request, handler, fault, hybrid)
        status = 0 if cut else response.status
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            status = exc.status
            raise
        # aiohttp's own 404/405 are plain text; answer with a page like the others.
        status = exc.status
        title = exc.reason
        element_id = "not-found" if status == 404 else "http-error"
        content = f'<h1 id="{element_id}">{html.escape(title)}</h1>'
        page = html_response(document(title, content), status=status)
        if "Allow" in exc.headers:
            page.headers["Allow"] = exc.headers["Allow"]
        return page
    except Exception:
        status = 500  # aiohttp answers a handler's crash with a 500
        raise
    finally:
        # The v2 API's own rate limit is logged like a 429 fault (the verdict reads
        # fault_kind for Retry-After windows), with no fault id: nothing injected it.
        limited = request.get(RATE_LIMITED, False)
        request.app[REQUEST_LOG].append(
            RequestLogEntry(
                at=arrived,
                method=request.method,
                path=request.path_qs,
                status=status,
                fault_id=fault.id if fault is not None else None,
                fault_kind=fault.kind if fault is not None else "rate_limit" if limited else None,
            )
        )


def _fault_target(request: web.Request) -> tuple[str, int | None, bool | None] | None:
    """The kind of request (faults.py), its page and whether it is a page load
    (None: the plan's default), or None if no fault targets it."""
    if request.path.startswith("/api/v2/"):
        hybrid = hybrid_target(request) if live_session(request) is not None else None
        return None if hybrid is None else ("hybrid", *hybrid)
    if request.method != "GET":
        return None
    if request.path == "/static/matches.js":
        return "script", _referer_page(request), None
    if request.path not in ("/matches", "/api/matches") or current_user(request) is None:
        return None
    page = parse_page(request.query.get("page"), request.app[CONFIG].pages)
    if page is None:
        return None
    return ("document" if request.path == "/matches" else "api"), page, None


def _referer_page(request: web.Request) -> int | None:
    # The script has no page of its own: it belongs to the /matches page that loads it.
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.path != "/matches":
        return None
    raw = parse_qs(referer.query).get("page", [None])[-1]
    return parse_page(raw, request.app[CONFIG].pages)


async def _serve(
    request: web.Request, handler: _Handler, fault: Fault | None, hybrid: bool = False
) -> tuple[web.StreamResponse, bool]:
    """Answer ``request`` with ``fault`` applied; True when the connection was cut.

    ``hybrid``: a v2 API request, answered in JSON (the handler still checks the
    session and the CSRF token after a ``session_expiry`` or ``csrf_rotation``).
    """
    pace = request.app[CONFIG].pace
    if pace > 0 and request.path == "/matches":
        await asyncio.sleep(pace)  # a real site's answer time, for --pace
    if fault is None:
        return await handler(request), False
    kind = fault.kind
    if hybrid and kind in ("rate_limit", "server_error", "maintenance"):
        return fault_response(kind, int(fault.params.get("retry_after", 0))), False
    if kind == "latency":
        await asyncio.sleep(float(fault.params["delay"]))
    elif kind == "rate_limit":
        return rate_limited(int(fault.params["retry_after"])), False
    elif kind == "server_error":
        return server_error(), False
    elif kind == "maintenance":
        return maintenance(int(fault.params["retry_after"])), False
    elif kind == "broken_script":
        return broken_script(), False
    elif kind == "session_expiry":
        token = request.cookies.get(SESSION_COOKIE)
        if token is not None:
            end_session(request.app, token)
    elif kind == "csrf_rotation":
        token = live_session(request)
        if token is not None:
            rotate_csrf(request.app, token)
    elif kind in ("stale_dom", "missing_element"):
        request[PAGE_FAULT] = kind
    elif kind in ("reset", "truncate"):
        normal = await handler(request)
        return await _cut_short(request, normal, float(fault.params["fraction"]), kind == "reset")
    return await handler(request), False


# --- cutting a response short -----------------------------------------------

# Seconds to wait for the kernel to take the bytes before a connection is cut.
_FLUSH_TIMEOUT = 2.0


async def _cut_short(
    request: web.Request, normal: web.StreamResponse, fraction: float, reset: bool
) -> tuple[web.StreamResponse, bool]:
    """Send ``normal``'s headers (full Content-Length) and part of its body, then cut.

    ``reset``: abort with an RST (SO_LINGER 0) after ``fraction`` of the body;
    an HTML document is cut inside its head, so a browser that already
    committed to the page cannot take the remains for a match list still
    loading. Otherwise: a plain close (FIN) after ``fraction`` of the body.
    """
    body = normal.body if isinstance(normal, web.Response) else None
    transport = request.transport
    if not isinstance(body, bytes) or not body or transport is None:
        return normal, False  # nothing to cut (a redirect: never a targeted page)
    cut_at = int(len(body) * fraction)
    if reset and normal.content_type == "text/html":
        head_end = body.find(b"<body")
        if head_end > 0:
            cut_at = min(cut_at, head_end // 2)
    headers = {k: v for k, v in normal.headers.items() if k.lower() != "content-length"}
    response = web.StreamResponse(status=normal.status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[:cut_at])
    deadline = time.monotonic() + _FLUSH_TIMEOUT
    while transport.get_write_buffer_size() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    return response, True
