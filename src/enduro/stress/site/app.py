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
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import re
import secrets
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from aiohttp import web

from enduro.stress.site.api import (
    CSRF_COOKIE,
    RATE_LIMITED,
    add_routes,
    fault_response,
    forget_session,
    hybrid_target,
    rotate_csrf,
    start_csrf,
)
from enduro.stress.site.data import find_match, page_rows
from enduro.stress.site.faults import Fault, FaultPlan

__all__ = [
    "CONFIG",
    "REQUEST_COUNTS",
    "REQUEST_LOG",
    "SESSIONS",
    "SESSION_COOKIE",
    "RequestLogEntry",
    "SiteConfig",
    "make_app",
]

logger = logging.getLogger(__name__)

SESSION_COOKIE = "enduro_session"
_STATIC_DIR = Path(__file__).parent / "static"
_PAGE_RE = re.compile(r"[0-9]{1,9}")
_FIELD_LABELS = (
    ("match_id", "Match ID"),
    ("name", "Name"),
    ("shared_cm", "Shared cM"),
    ("segments", "Segments"),
    ("relationship", "Relationship"),
    ("tree_size", "Tree size"),
    ("last_active", "Last active"),
    ("page", "Page"),
)
_COLUMNS = ("Name", "Shared cM", "Segments", "Relationship", "Tree size", "Last active")


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
_SCRIPT = web.AppKey("script", bytes)
# Session token -> config.clock() reading after which it is no longer valid (session_ttl only).
_SESSION_DEADLINES: web.AppKey[dict[str, float]] = web.AppKey("session_deadlines", dict)
# The fault that changes how _matches renders the page (stale_dom, missing_element).
_PAGE_FAULT = web.RequestKey("page_fault", str)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(config: SiteConfig) -> web.Application:
    """Build the site for ``config``; serve it with ``SiteServer`` or ``serve_forever``."""
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
    app = web.Application(middlewares=[_count_and_fault])
    app[CONFIG] = config
    app[SESSIONS] = {}
    app[_SESSION_DEADLINES] = {}
    app[REQUEST_COUNTS] = Counter()
    app[REQUEST_LOG] = []
    app[_SCRIPT] = (_STATIC_DIR / "matches.js").read_bytes()
    app.router.add_get("/", _index)
    app.router.add_get("/login", _login_form)
    app.router.add_post("/login", _login_submit)
    app.router.add_get("/logout", _logout)
    app.router.add_get("/matches", _matches)
    app.router.add_get("/api/matches", _api_matches)
    app.router.add_get("/api/meta", _api_meta)
    app.router.add_get("/match/{match_id}", _match_detail)
    app.router.add_get("/static/matches.js", _script)
    app.router.add_get("/healthz", _healthz)
    add_routes(app, config, _live_session)
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
        page = _html(_document(title, content), status=status)
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
        hybrid = hybrid_target(request) if _live_session(request) is not None else None
        return None if hybrid is None else ("hybrid", *hybrid)
    if request.method != "GET":
        return None
    if request.path == "/static/matches.js":
        return "script", _referer_page(request), None
    if request.path not in ("/matches", "/api/matches") or _current_user(request) is None:
        return None
    page = _parse_page(request.query.get("page"), request.app[CONFIG].pages)
    if page is None:
        return None
    return ("document" if request.path == "/matches" else "api"), page, None


def _referer_page(request: web.Request) -> int | None:
    # The script has no page of its own: it belongs to the /matches page that loads it.
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.path != "/matches":
        return None
    raw = parse_qs(referer.query).get("page", [None])[-1]
    return _parse_page(raw, request.app[CONFIG].pages)


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
        return _rate_limited(int(fault.params["retry_after"])), False
    elif kind == "server_error":
        return _server_error(), False
    elif kind == "maintenance":
        return _maintenance(int(fault.params["retry_after"])), False
    elif kind == "broken_script":
        return _broken_script(), False
    elif kind == "session_expiry":
        token = request.cookies.get(SESSION_COOKIE)
        if token is not None:
            _end_session(request.app, token)
    elif kind == "csrf_rotation":
        token = _live_session(request)
        if token is not None:
            rotate_csrf(request.app, token)
    elif kind in ("stale_dom", "missing_element"):
        request[_PAGE_FAULT] = kind
    elif kind in ("reset", "truncate"):
        normal = await handler(request)
        return await _cut_short(request, normal, float(fault.params["fraction"]), kind == "reset")
    return await handler(request), False


# --- faults ------------------------------------------------------------------

_NO_STORE = {"Cache-Control": "no-store"}
# What a half-deployed script looks like: cut off mid-statement, a SyntaxError.
_BROKEN_SCRIPT = (
    "// matches.js: this deploy was cut short (a truncated build artefact).\n"
    '"use strict";\n'
    "(function () {\n"
    "  var body = document.body;\n"
    "  var rows = [;\n"
)
# Seconds to wait for the kernel to take the bytes before a connection is cut.
_FLUSH_TIMEOUT = 2.0


def _rate_limited(retry_after: int) -> web.Response:
    content = (
        '<h1 id="rate-limited">Too many requests</h1>\n'
        f"<p>Please wait {retry_after} seconds before trying again.</p>"
    )
    response = _html(_document("Too many requests", content), status=429)
    response.headers.update({"Retry-After": str(retry_after), **_NO_STORE})
    return response


def _server_error() -> web.Response:
    content = (
        '<h1 id="server-error">Internal server error</h1>\n'
        "<p>Something went wrong on our side. Please try again.</p>"
    )
    response = _html(_document("Internal server error", content), status=500)
    response.headers.update(_NO_STORE)
    return response


def _maintenance(retry_after: int) -> web.Response:
    content = (
        '<h1 id="maintenance">Down for maintenance</h1>\n'
        f"<p>We will be back in about {retry_after} seconds.</p>"
    )
    response = _html(_document("Down for maintenance", content), status=503)
    response.headers.update({"Retry-After": str(retry_after), **_NO_STORE})
    return response


def _broken_script() -> web.Response:
    return web.Response(
        text=_BROKEN_SCRIPT, content_type="text/javascript", charset="utf-8", headers=_NO_STORE
    )


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


# --- helpers -----------------------------------------------------------------


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _document(title: str, content: str, body_attrs: str = "", head_extra: str = "") -> str:
    # The empty icon keeps browsers from requesting /favicon.ico on every page.
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(title)}</title>\n{head_extra}</head>\n"
        f"<body{body_attrs}>\n{content}\n</body>\n</html>\n"
    )


# Reports uncaught script errors (a broken script) on the page instead of leaving it "loading".
_ERROR_CATCHER = (
    "<script>\n"
    'window.addEventListener("error", function (event) {\n'
    "  var body = document.body;\n"
    "  if (!body) { return; }\n"
    '  body.dataset.error = "script error: " + event.message;\n'
    '  body.dataset.state = "error";\n'
    "});\n"
    "</script>\n"
)


def _not_found(what: str) -> web.Response:
    content = f'<h1 id="not-found">Not found</h1>\n<p>{html.escape(what)}</p>'
    return _html(_document("Not found", content), status=404)


def _current_user(request: web.Request) -> str | None:
    token = _live_session(request)
    return None if token is None else request.app[SESSIONS][token]


def _live_session(request: web.Request) -> str | None:
    """The token of the request's live session, or None (an expired one is ended)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token is None:
        return None
    app = request.app
    deadline = app[_SESSION_DEADLINES].get(token)
    if deadline is not None and app[CONFIG].clock() >= deadline:
        _end_session(app, token)
        return None
    return token if token in app[SESSIONS] else None


def _end_session(app: web.Application, token: str) -> None:
    app[SESSIONS].pop(token, None)
    app[_SESSION_DEADLINES].pop(token, None)
    forget_session(app, token)


def _login_redirect(request: web.Request) -> web.Response:
    return _redirect("/login?" + urlencode({"next": request.path_qs}))


def _parse_page(raw: str | None, pages: int) -> int | None:
    if raw is None or _PAGE_RE.fullmatch(raw) is None:
        return None
    page = int(raw)
    return page if 1 <= page <= pages else None


def _safe_next(target: str) -> str:
    # Only local paths: "//host" and "/\host" are treated as other origins by browsers.
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/matches?page=1"


def _header(user: str) -> str:
    return (
        '<header><span id="user">'
        f"{html.escape(user)}</span> "
        '<a id="logout-link" href="/logout">Log out</a></header>'
    )


def _login_page(next_target: str, error: bool = False) -> str:
    message = '<p class="login-error">Wrong username or password</p>\n' if error else ""
    content = (
        "<h1>Log in</h1>\n"
        f"{message}"
        '<form id="login-form" method="post" action="/login">\n'
        '<label for="username">Username</label>\n'
        '<input id="username" name="username" autocomplete="username">\n'
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" autocomplete="current-password">\n'
        f'<input type="hidden" name="next" value="{html.escape(next_target)}">\n'
        '<button id="login-button" type="submit">Log in</button>\n'
        "</form>"
    )
    return _document("Log in", content)


# --- handlers ----------------------------------------------------------------


async def _index(request: web.Request) -> web.Response:
    return _redirect("/matches?page=1")


async def _login_form(request: web.Request) -> web.Response:
    return _html(_login_page(request.query.get("next", "/matches?page=1")))


async def _login_submit(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    form = await request.post()
    username = form.get("username")
    password = form.get("password")
    next_raw = form.get("next")
    next_target = next_raw if isinstance(next_raw, str) else "/matches?page=1"
    ok = (
        isinstance(username, str)
        and isinstance(password, str)
        and secrets.compare_digest(username.encode(), config.username.encode())
        and secrets.compare_digest(password.encode(), config.password.encode())
    )
    if not ok:
        logger.debug("login refused for user %r", username)
        return _html(_login_page(next_target, error=True), status=401)
    token = secrets.token_urlsafe(32)
    request.app[SESSIONS][token] = config.username
    max_age: int | None = None
    if config.session_ttl is not None:
        request.app[_SESSION_DEADLINES][token] = config.clock() + config.session_ttl
        max_age = math.ceil(config.session_ttl)
    logger.debug("login ok for user %r", config.username)
    response = _redirect(_safe_next(next_target))
    response.set_cookie(
        SESSION_COOKIE, token, path="/", max_age=max_age, httponly=True, samesite="Lax"
    )
    start_csrf(request.app, token, response)
    return response


async def _logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        _end_session(request.app, token)
    response = _redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


async def _matches(request: web.Request) -> web.Response:
    user = _current_user(request)
    if user is None:
        return _login_redirect(request)
    pages = request.app[CONFIG].pages
    page = _parse_page(request.query.get("page"), pages)
    if page is None:
        return _not_found(f"There is no page {request.query.get('page', '')!r}.")
    prev_link = (
        f'<a id="prev-page" rel="prev" href="/matches?page={page - 1}">Previous</a>'
        if page > 1
        else '<span id="prev-page" class="disabled">Previous</span>'
    )
    next_link = (
        f'<a id="next-page" rel="next" href="/matches?page={page + 1}">Next</a>'
        if page < pages
        else '<span id="next-page" class="disabled">Next</span>'
    )
    page_fault = request.get(_PAGE_FAULT)
    if page_fault == "missing_element":
        listing = (
            '<div id="matches-unavailable" class="notice">'
            "The match list is temporarily unavailable.</div>\n"
        )
    else:
        head = "".join(f"<th>{html.escape(label)}</th>" for label in _COLUMNS)
        listing = (
            f'<table id="matches">\n<thead><tr>{head}</tr></thead>\n<tbody></tbody>\n</table>\n'
        )
    content = (
        f"{_header(user)}\n"
        f"<h1>Matches — page {page} of {pages}</h1>\n"
        f"{listing}"
        f'<nav class="pagination">{prev_link} '
        f'<span class="page-info">Page {page} of {pages}</span> {next_link}</nav>\n'
        '<script src="/static/matches.js"></script>'
    )
    attrs = f' data-page="{page}" data-pages="{pages}" data-state="loading"'
    if page_fault == "stale_dom":
        attrs += ' data-rerender="1"'
    title = f"Matches — page {page} of {pages}"
    return _html(_document(title, content, attrs, head_extra=_ERROR_CATCHER))


async def _api_matches(request: web.Request) -> web.Response:
    if _current_user(request) is None:
        return web.json_response({"error": "not logged in"}, status=401)
    config = request.app[CONFIG]
    page = _parse_page(request.query.get("page"), config.pages)
    if page is None:
        return web.json_response({"error": "no such page"}, status=404)
    rows = page_rows(config.seed, page, config.rows)
    return web.json_response({"page": page, "pages": config.pages, "rows": rows})


async def _api_meta(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return web.json_response({"pages": config.pages, "rows": config.rows, "seed": config.seed})


async def _match_detail(request: web.Request) -> web.Response:
    user = _current_user(request)
    if user is None:
        return _login_redirect(request)
    config = request.app[CONFIG]
    wanted = request.match_info["match_id"]
    record = find_match(config.seed, config.pages, config.rows, wanted)
    if record is None:
        return _not_found(f"There is no match {wanted!r}.")
    items = []
    for key, label in _FIELD_LABELS:
        value = record[key]
        text = f"{value:.1f}" if isinstance(value, float) else str(value)
        items.append(f'<dt>{label}</dt><dd data-field="{key}">{html.escape(text)}</dd>')
    name = str(record["name"])
    content = (
        f"{_header(user)}\n"
        f"<h1>{html.escape(name)}</h1>\n"
        '<dl id="match-detail">\n' + "\n".join(items) + "\n</dl>\n"
        f'<p><a id="back-link" href="/matches?page={record["page"]}">Back to matches</a></p>'
    )
    return _html(_document(f"Match — {name}", content))


async def _script(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[_SCRIPT],
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")
