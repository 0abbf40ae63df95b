"""The site's HTML pages: login, the match list, match details, the script, and the
error pages its faults answer with; and the sessions a login opens.

``add_page_routes`` wires the handlers into the application; the middleware in
app.py serves the error pages (``rate_limited``, ``server_error``,
``maintenance``, ``broken_script``) when a fault asks for them.
"""

from __future__ import annotations

import html
import logging
import math
import re
import secrets
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from enduro.stress.site.api import CSRF_COOKIE, forget_session, start_csrf
from enduro.stress.site.config import (
    CONFIG,
    PAGE_FAULT,
    SESSION_COOKIE,
    SESSION_DEADLINES,
    SESSIONS,
)
from enduro.stress.site.data import find_match, page_rows

__all__ = [
    "add_page_routes",
    "broken_script",
    "current_user",
    "document",
    "end_session",
    "html_response",
    "live_session",
    "maintenance",
    "parse_page",
    "rate_limited",
    "server_error",
]

logger = logging.getLogger(__name__)

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
_SCRIPT = web.AppKey("script", bytes)


def add_page_routes(app: web.Application) -> None:
    """Add the HTML pages, the page script and the old JSON API to ``app``."""
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


# --- error pages (served by the faults) -------------------------------------

_NO_STORE = {"Cache-Control": "no-store"}
# What a half-deployed script looks like: cut off mid-statement, a SyntaxError.
_BROKEN_SCRIPT = (
    "// matches.js: this deploy was cut short (a truncated build artefact).\n"
    '"use strict";\n'
    "(function () {\n"
    "  var body = document.body;\n"
    "  var rows = [;\n"
)


def rate_limited(retry_after: int) -> web.Response:
    content = (
        '<h1 id="rate-limited">Too many requests</h1>\n'
        f"<p>Please wait {retry_after} seconds before trying again.</p>"
    )
    response = html_response(document("Too many requests", content), status=429)
    response.headers.update({"Retry-After": str(retry_after), **_NO_STORE})
    return response


def server_error() -> web.Response:
    content = (
        '<h1 id="server-error">Internal server error</h1>\n'
        "<p>Something went wrong on our side. Please try again.</p>"
    )
    response = html_response(document("Internal server error", content), status=500)
    response.headers.update(_NO_STORE)
    return response


def maintenance(retry_after: int) -> web.Response:
    content = (
        '<h1 id="maintenance">Down for maintenance</h1>\n'
        f"<p>We will be back in about {retry_after} seconds.</p>"
    )
    response = html_response(document("Down for maintenance", content), status=503)
    response.headers.update({"Retry-After": str(retry_after), **_NO_STORE})
    return response


def broken_script() -> web.Response:
    return web.Response(
        text=_BROKEN_SCRIPT, content_type="text/javascript", charset="utf-8", headers=_NO_STORE
    )


# --- helpers -----------------------------------------------------------------


def html_response(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def document(title: str, content: str, body_attrs: str = "", head_extra: str = "") -> str:
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
    return html_response(document("Not found", content), status=404)


def current_user(request: web.Request) -> str | None:
    token = live_session(request)
    return None if token is None else request.app[SESSIONS][token]


def live_session(request: web.Request) -> str | None:
    """The token of the request's live session, or None (an expired one is ended)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token is None:
        return None
    app = request.app
    deadline = app[SESSION_DEADLINES].get(token)
    if deadline is not None and app[CONFIG].clock() >= deadline:
        end_session(app, token)
        return None
    return token if token in app[SESSIONS] else None


def end_session(app: web.Application, token: str) -> None:
    app[SESSIONS].pop(token, None)
    app[SESSION_DEADLINES].pop(token, None)
    forget_session(app, token)


def _login_redirect(request: web.Request) -> web.Response:
    return _redirect("/login?" + urlencode({"next": request.path_qs}))


def parse_page(raw: str | None, pages: int) -> int | None:
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
    return document("Log in", content)


# --- handlers ----------------------------------------------------------------


async def _index(request: web.Request) -> web.Response:
    return _redirect("/matches?page=1")


async def _login_form(request: web.Request) -> web.Response:
    return html_response(_login_page(request.query.get("next", "/matches?page=1")))


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
        return html_response(_login_page(next_target, error=True), status=401)
    token = secrets.token_urlsafe(32)
    request.app[SESSIONS][token] = config.username
    max_age: int | None = None
    if config.session_ttl is not None:
        request.app[SESSION_DEADLINES][token] = config.clock() + config.session_ttl
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
        end_session(request.app, token)
    response = _redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


async def _matches(request: web.Request) -> web.Response:
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    pages = request.app[CONFIG].pages
    page = parse_page(request.query.get("page"), pages)
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
    page_fault = request.get(PAGE_FAULT)
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
    return html_response(document(title, content, attrs, head_extra=_ERROR_CATCHER))


async def _api_matches(request: web.Request) -> web.Response:
    if current_user(request) is None:
        return web.json_response({"error": "not logged in"}, status=401)
    config = request.app[CONFIG]
    page = parse_page(request.query.get("page"), config.pages)
    if page is None:
        return web.json_response({"error": "no such page"}, status=404)
    rows = page_rows(config.seed, page, config.rows)
    return web.json_response({"page": page, "pages": config.pages, "rows": rows})


async def _api_meta(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return web.json_response({"pages": config.pages, "rows": config.rows, "seed": config.seed})


async def _match_detail(request: web.Request) -> web.Response:
    user = current_user(request)
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
    return html_response(document(f"Match — {name}", content))


async def _script(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[_SCRIPT],
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")
