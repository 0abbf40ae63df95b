"""The target site's JSON API v2: what a "hybrid" job's HTTP client calls with a browser's cookies.

Routes (JSON, errors as ``{"error": "..."}``), all under the same three gates,
in this order:

1. a live session, else ``303 See Other`` to ``/login?next=<path and query>``;
2. the ``X-CSRF-Token`` header equal to the session's current token, else 403
   carrying ``Set-Cookie: enduro_csrf=<the current token>``, so a client that
   takes the answer's cookies can retry without a new login;
3. ``SiteConfig.api_rate``: a token bucket per endpoint template
   (``endpoint_of``) per session, else 429 with Retry-After.

::

    GET  /api/v2/matches?itemsPerPage=K&currentPage=N
            {"currentPage", "itemsPerPage", "totalItems", "totalPages",
             "matches": [list records]}; K in 1..500 (default: rows), N >= 1;
            400 on a bad or missing parameter, 404 past the last page
    GET  /api/v2/matches/{match_id}/relationship
            {"match_id", "relationship", "shared_cm", "segments", "longest_cm"}
    GET  /api/v2/matches/{match_id}/badge
            {"match_id", "tree_size", "shared_ancestors"}
    POST /api/v2/matches/badges   body {"match_ids": [1..100 strings]}
            {"badges": [badges of the known ids, in the order asked],
             "missing": [the unknown ids]}; 400 on any other body
    *    /api/v2/<anything else>  404 {"error": "no such endpoint"}

A match's list record is ``match_record``; matches are numbered page-major
(page 1's rows, then page 2's...). The CSRF token is issued on login as the
``enduro_csrf`` cookie (``quote("<token>|<signature>")``, readable by page
scripts), rotated once it is ``SiteConfig.csrf_rotate_every`` seconds old (the
request that finds it old is refused with the new one) or by the
``csrf_rotation`` fault, and dropped with the session.

app.py wires this in (``add_routes``), pages.py tells it about logins and
logouts (``start_csrf``, ``forget_session``), and app.py applies the faults of hybrid
requests (``hybrid_target``, ``fault_response``, ``rotate_csrf``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from aiohttp import web

from enduro._endpoints import endpoint_of
from enduro.stress.site.data import find_match, match_details, match_id, page_rows

if TYPE_CHECKING:
    from enduro.stress.site.config import SiteConfig

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "CSRF_TOKENS",
    "MAX_BATCH",
    "MAX_ITEMS_PER_PAGE",
    "RATE_LIMITED",
    "CsrfToken",
    "add_routes",
    "fault_response",
    "forget_session",
    "hybrid_target",
    "rotate_csrf",
    "start_csrf",
]

CSRF_COOKIE = "enduro_csrf"
"""The cookie carrying the CSRF token (``quote("<token>|<signature>")``)."""
CSRF_HEADER = "X-CSRF-Token"
"""The header every /api/v2 request carries the token in."""
MAX_ITEMS_PER_PAGE = 500
"""The largest ``itemsPerPage`` the list call takes."""
MAX_BATCH = 100
"""The most match ids one batch call takes."""

_PREFIX = "/api/v2/"
_LIST = "/api/v2/matches"
_NUMBER_RE = re.compile(r"[0-9]{1,9}")
_SIGNATURE_CHARS = 16
_NO_STORE = {"Cache-Control": "no-store"}
_CSRF_REFUSED = "csrf token missing or invalid"
_BAD_BATCH = f'the body must be JSON {{"match_ids": [1 to {MAX_BATCH} strings]}}'


@dataclass(frozen=True)
class CsrfToken:
    """The current CSRF token of one session.

    Attributes:
        token: what the ``X-CSRF-Token`` header must carry.
        cookie: the ``enduro_csrf`` cookie's value, ``quote("<token>|<signature>")``.
        issued: the site clock's reading when it was issued.
        session_deadline: the site clock's reading when the session ends
            (None: at logout); re-sent cookies get the Max-Age left.
    """

    token: str
    cookie: str
    issued: float
    session_deadline: float | None


CSRF_TOKENS: web.AppKey[dict[str, CsrfToken]] = web.AppKey("csrf_tokens", dict)
"""Session token -> its current CSRF token, for every live session."""
RATE_LIMITED = web.RequestKey("site_rate_limited", bool)
"""Set on a request the site's own ``api_rate`` answered with 429."""

_CONFIG: web.AppKey[SiteConfig] = web.AppKey("api_config")
_LIVE_SESSION: web.AppKey[Callable[[web.Request], str | None]] = web.AppKey("live_session")
_CSRF_KEY = web.AppKey("csrf_key", bytes)
# Session token -> endpoint template -> its token bucket (api_rate only).
_BUCKETS: web.AppKey[dict[str, dict[str, _Bucket]]] = web.AppKey("api_buckets", dict)


class _Bucket:
    """A token bucket's state: tokens left at ``stamp`` (site clock)."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


def add_routes(
    app: web.Application, config: SiteConfig, live_session: Callable[[web.Request], str | None]
) -> None:
    """Serve the v2 API from ``app``.

    Args:
        app: the site's application (its routes for /api/v2 must not exist yet).
        config: what the site serves (``SiteConfig``).
        live_session: the session token of a request's live session, or None.
    """
    app[_CONFIG] = config
    app[_LIVE_SESSION] = live_session
    app[_CSRF_KEY] = secrets.token_bytes(32)
    app[CSRF_TOKENS] = {}
    app[_BUCKETS] = {}
    app.router.add_get(_LIST, _list)
    app.router.add_get(_LIST + "/{match_id}/relationship", _relationship)
    app.router.add_get(_LIST + "/{match_id}/badge", _badge)
    app.router.add_post(_LIST + "/badges", _badges)
    app.router.add_route("*", _PREFIX + "{tail:.*}", _no_such_endpoint)


def start_csrf(app: web.Application, session: str, response: web.StreamResponse) -> None:
    """Issue the first CSRF token of a new session and set its cookie on ``response``."""
    config = app[_CONFIG]
    now = config.clock()
    ttl = config.session_ttl
    state = _issue(app, session, now, None if ttl is None else now + ttl)
    _set_cookie(response, state, now)


def rotate_csrf(app: web.Application, session: str) -> CsrfToken:
    """Replace the session's CSRF token with a new one (the old one is refused from now on)."""
    previous = app[CSRF_TOKENS].get(session)
    deadline = previous.session_deadline if previous is not None else None
    return _issue(app, session, app[_CONFIG].clock(), deadline)


def forget_session(app: web.Application, session: str) -> None:
    """Drop what the API keeps about a session that ended (its token, its buckets)."""
    app[CSRF_TOKENS].pop(session, None)
    app[_BUCKETS].pop(session, None)


def hybrid_target(request: web.Request) -> tuple[int | None, bool] | None:
    """The page of a /api/v2 request and whether it loads a page; None if not /api/v2.

    The page is the site page of a list call's first item, or of the match a
    detail call asks about; None when the parameters are bad, the match is
    unknown, or the call has no page (the batch call). Only a list call
    (``GET /api/v2/matches``) is a page load.
    """
    if not request.path.startswith(_PREFIX):
        return None
    config = request.app[_CONFIG]
    if request.path == _LIST and request.method in ("GET", "HEAD"):
        parsed = _list_params(request, config)
        if isinstance(parsed, tuple):
            first_item = (parsed[0] - 1) * parsed[1]
            return first_item // config.rows + 1, request.method == "GET"
        return None, request.method == "GET"
    wanted = request.match_info.get("match_id")
    if wanted is not None:
        found = find_match(config.seed, config.pages, config.rows, wanted)
        if found is not None:
            return _int(found["page"]), False
    return None, False


def fault_response(kind: str, retry_after: int) -> web.Response:
    """The JSON answer of a ``rate_limit``, ``server_error`` or ``maintenance`` fault.

    Raises:
        ValueError: for any other kind (they are not answered in place of the handler).
    """
    after = {"Retry-After": str(retry_after), **_NO_STORE}
    if kind == "rate_limit":
        return _error(429, "too many requests", after)
    if kind == "server_error":
        return _error(500, "internal server error", _NO_STORE)
    if kind == "maintenance":
        return _error(503, f"down for maintenance, back in about {retry_after} seconds", after)
    raise ValueError(f"no JSON answer for fault kind {kind!r}")


# --- gates ---------------------------------------------------------------------------


def _gate(request: web.Request) -> web.Response | None:
    """The answer refusing ``request`` (303, 403 or 429), or None to serve it."""
    app = request.app
    session = app[_LIVE_SESSION](request)
    if session is None:
        location = "/login?" + urlencode({"next": request.path_qs})
        return web.Response(status=303, headers={"Location": location})
    config = app[_CONFIG]
    now = config.clock()
    state = app[CSRF_TOKENS].get(session)
    every = config.csrf_rotate_every
    if state is None:
        state = _issue(app, session, now, None)  # a session without a token: give it one
    elif every is not None and now - state.issued >= every:
        state = rotate_csrf(app, session)
    sent = request.headers.get(CSRF_HEADER, "").encode("utf-8", "surrogateescape")
    if not secrets.compare_digest(sent, state.token.encode()):
        refused = _error(403, _CSRF_REFUSED)
        _set_cookie(refused, state, now)
        return refused
    rate = config.api_rate
    if rate is not None:
        buckets = app[_BUCKETS].setdefault(session, {})
        wait = _take(buckets, endpoint_of(request.path), rate, now)
        if wait is not None:
            request[RATE_LIMITED] = True
            return _error(429, "too many requests", {"Retry-After": str(wait), **_NO_STORE})
    return None


def _issue(
    app: web.Application, session: str, now: float, session_deadline: float | None
) -> CsrfToken:
    token = secrets.token_urlsafe(18)
    digest = hmac.new(app[_CSRF_KEY], token.encode(), hashlib.sha256).hexdigest()
    cookie = quote(f"{token}|{digest[:_SIGNATURE_CHARS]}")
    state = CsrfToken(token=token, cookie=cookie, issued=now, session_deadline=session_deadline)
    app[CSRF_TOKENS][session] = state
    return state


def _set_cookie(response: web.StreamResponse, state: CsrfToken, now: float) -> None:
    # Not HttpOnly: the page's scripts read it, as a real site's do.
    deadline = state.session_deadline
    max_age = None if deadline is None else max(1, math.ceil(deadline - now))
    response.set_cookie(CSRF_COOKIE, state.cookie, path="/", max_age=max_age, samesite="Lax")


def _take(buckets: dict[str, _Bucket], endpoint: str, rate: float, now: float) -> int | None:
    """Take a token from the endpoint's bucket; None if there was one, else Retry-After."""
    burst = max(1.0, rate)
    bucket = buckets.get(endpoint)
    if bucket is None:
        bucket = buckets[endpoint] = _Bucket(burst, now)
    bucket.tokens = min(burst, bucket.tokens + max(0.0, now - bucket.stamp) * rate)
    bucket.stamp = now
    if bucket.tokens >= 1.0:
        bucket.tokens -= 1.0
        return None
    # whole seconds until a token is free (less a hair, so 1.0000000001 s is 1, not 2)
    return max(1, math.ceil((1.0 - bucket.tokens) / rate - 1e-9))


# --- handlers ------------------------------------------------------------------------


async def _list(request: web.Request) -> web.Response:
    if (refused := _gate(request)) is not None:
        return refused
    config = request.app[_CONFIG]
    parsed = _list_params(request, config)
    if isinstance(parsed, str):
        return _error(400, parsed)
    current, per_page = parsed
    total = config.pages * config.rows
    total_pages = math.ceil(total / per_page)
    if current > total_pages:
        return _error(404, f"currentPage {current} is past the last page, {total_pages}")
    start, stop = (current - 1) * per_page, min(current * per_page, total)
    first, last = start // config.rows + 1, (stop - 1) // config.rows + 1
    records = [
        r for page in range(first, last + 1) for r in page_rows(config.seed, page, config.rows)
    ]
    offset = (first - 1) * config.rows
    return web.json_response(
        {
            "currentPage": current,
            "itemsPerPage": per_page,
            "totalItems": total,
            "totalPages": total_pages,
            "matches": records[start - offset : stop - offset],
        }
    )


async def _relationship(request: web.Request) -> web.Response:
    found = _one_match(request)
    if isinstance(found, web.Response):
        return found
    record, details = found
    keys = ("match_id", "relationship", "shared_cm", "segments")
    return web.json_response(
        {**{key: record[key] for key in keys}, "longest_cm": details["longest_cm"]}
    )


async def _badge(request: web.Request) -> web.Response:
    found = _one_match(request)
    if isinstance(found, web.Response):
        return found
    return web.json_response(_badge_of(*found))


def _one_match(
    request: web.Request,
) -> tuple[dict[str, object], dict[str, object]] | web.Response:
    """The match a detail call names (its list record and details), or the refusal."""
    if (refused := _gate(request)) is not None:
        return refused
    found = _details(request.app[_CONFIG], request.match_info["match_id"])
    return _unknown_match(request.match_info["match_id"]) if found is None else found


async def _badges(request: web.Request) -> web.Response:
    if (refused := _gate(request)) is not None:
        return refused
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, _BAD_BATCH)
    wanted = body.get("match_ids") if isinstance(body, dict) else None
    if (
        not isinstance(wanted, list)
        or not 1 <= len(wanted) <= MAX_BATCH
        or not all(isinstance(item, str) for item in wanted)
    ):
        return _error(400, _BAD_BATCH)
    config = request.app[_CONFIG]
    badges: list[dict[str, object]] = []
    missing: list[str] = []
    for wanted_id in wanted:
        found = _details(config, wanted_id)
        if found is None:
            missing.append(wanted_id)
        else:
            badges.append(_badge_of(*found))
    return web.json_response({"badges": badges, "missing": missing})


async def _no_such_endpoint(request: web.Request) -> web.Response:
    if (refused := _gate(request)) is not None:
        return refused
    return _error(404, "no such endpoint")


# --- helpers -------------------------------------------------------------------------


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _unknown_match(wanted: str) -> web.Response:
    return _error(404, f"no match {wanted!r}")


def _list_params(request: web.Request, config: SiteConfig) -> tuple[int, int] | str:
    """``(currentPage, itemsPerPage)``, or the error naming the bad parameter."""
    raw_per_page = request.query.get("itemsPerPage")
    if raw_per_page is None:
        per_page = config.rows
    elif _NUMBER_RE.fullmatch(raw_per_page) and 1 <= int(raw_per_page) <= MAX_ITEMS_PER_PAGE:
        per_page = int(raw_per_page)
    else:
        return (
            f"itemsPerPage must be a whole number from 1 to {MAX_ITEMS_PER_PAGE}, "
            f"got {raw_per_page!r}"
        )
    raw_current = request.query.get("currentPage")
    if raw_current is None:
        return "currentPage is missing"
    if not _NUMBER_RE.fullmatch(raw_current) or int(raw_current) < 1:
        return f"currentPage must be a whole number >= 1, got {raw_current!r}"
    return int(raw_current), per_page


def _details(config: SiteConfig, wanted: str) -> tuple[dict[str, object], dict[str, object]] | None:
    """The list record and the details of match ``wanted``, or None if there is none."""
    record = find_match(config.seed, config.pages, config.rows, wanted)
    if record is None:
        return None
    page = _int(record["page"])
    # find_match knows the page; the row is the one whose id it is (a few hashes).
    row = next(r for r in range(config.rows) if match_id(config.seed, page, r) == wanted)
    return record, match_details(config.seed, page, row)


def _badge_of(record: Mapping[str, object], details: Mapping[str, object]) -> dict[str, object]:
    return {
        "match_id": record["match_id"],
        "tree_size": record["tree_size"],
        "shared_ancestors": details["shared_ancestors"],
    }


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an int, got {value!r}")
    return value
