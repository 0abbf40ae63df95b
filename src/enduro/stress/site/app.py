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

All state (sessions, request counts) lives on the application object, so two
apps in one process never share anything.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from enduro.stress.site.data import find_match, page_rows
from enduro.stress.site.faults import FaultPlan

__all__ = [
    "CONFIG",
    "REQUEST_COUNTS",
    "SESSIONS",
    "SESSION_COOKIE",
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
    """

    seed: int = 1
    pages: int = 724
    rows: int = 50
    username: str = "demo"
    password: str = "enduro-demo"
    fault_plan: FaultPlan = field(default_factory=FaultPlan)


CONFIG = web.AppKey("config", SiteConfig)
SESSIONS: web.AppKey[dict[str, str]] = web.AppKey("sessions", dict)
"""Session token -> username of every live session."""
REQUEST_COUNTS: web.AppKey[Counter[str]] = web.AppKey("request_counts", Counter)
"""Requests served per path prefix (``/matches``, ``/api/matches``, ``/static``...)."""
_SCRIPT = web.AppKey("script", bytes)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(config: SiteConfig) -> web.Application:
    """Build the site for ``config``; serve it with ``SiteServer`` or ``serve_forever``."""
    if config.pages < 1 or config.rows < 1:
        raise ValueError(f"pages and rows must be >= 1, got {config.pages} and {config.rows}")
    app = web.Application(middlewares=[_count_and_fault])
    app[CONFIG] = config
    app[SESSIONS] = {}
    app[REQUEST_COUNTS] = Counter()
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
    return app


def path_prefix(path: str) -> str:
    """Return the counting key of ``path``: ``/api/<name>`` for the API, else ``/<first>``."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 1:
        return f"/api/{parts[1]}"
    return "/" + parts[0]


@web.middleware
async def _count_and_fault(request: web.Request, handler: _Handler) -> web.StreamResponse:
    request.app[REQUEST_COUNTS][path_prefix(request.path)] += 1
    # The fault hook: a later FaultPlan returns a fault to apply here; None means serve normally.
    request.app[CONFIG].fault_plan.decide(request.path)
    return await handler(request)


# --- helpers -----------------------------------------------------------------


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _document(title: str, content: str, body_attrs: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n"
        f"<body{body_attrs}>\n{content}\n</body>\n</html>\n"
    )


def _not_found(what: str) -> web.Response:
    content = f'<h1 id="not-found">Not found</h1>\n<p>{html.escape(what)}</p>'
    return _html(_document("Not found", content), status=404)


def _current_user(request: web.Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    if token is None:
        return None
    return request.app[SESSIONS].get(token)


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
    logger.debug("login ok for user %r", config.username)
    response = _redirect(_safe_next(next_target))
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="Lax")
    return response


async def _logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        request.app[SESSIONS].pop(token, None)
    response = _redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
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
    head = "".join(f"<th>{html.escape(label)}</th>" for label in _COLUMNS)
    content = (
        f"{_header(user)}\n"
        f"<h1>Matches — page {page} of {pages}</h1>\n"
        f'<table id="matches">\n<thead><tr>{head}</tr></thead>\n<tbody></tbody>\n</table>\n'
        f'<nav class="pagination">{prev_link} '
        f'<span class="page-info">Page {page} of {pages}</span> {next_link}</nav>\n'
        '<script src="/static/matches.js"></script>'
    )
    attrs = f' data-page="{page}" data-pages="{pages}" data-state="loading"'
    return _html(_document(f"Matches — page {page} of {pages}", content, attrs))


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
