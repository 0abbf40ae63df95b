"""The built-in site's JSON API v2 (what a hybrid job calls), over real HTTP.

A ``SiteServer`` on 127.0.0.1 and an httpx client that logs in like a
browser would, then carries the session and CSRF cookies: the data against
``data.py``, the CSRF token's life, the session lapse, the site's own rate
limit, and every fault kind on a hybrid request.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from enduro.stress.site import (
    FAULT_KINDS,
    FAULT_TARGETS,
    REQUEST_KINDS,
    REQUEST_LOG,
    FaultPlan,
    RequestLogEntry,
    ScheduledFault,
    SiteConfig,
    SiteServer,
    ground_truth,
    hybrid_record,
    hybrid_truth,
    match_details,
    match_record,
    page_rows,
)
from enduro.stress.site.api import CSRF_COOKIE, CSRF_HEADER, CSRF_TOKENS
from enduro.stress.site.app import SESSION_COOKIE, SESSIONS

from .conftest import content_length, raw_get

SEED, PAGES, ROWS = 4, 6, 10
TOTAL = PAGES * ROWS
LIST = "/api/v2/matches"
USER, PASSWORD = SiteConfig().username, SiteConfig().password
_COOKIE_RE = re.compile(r"[A-Za-z0-9_-]{24}\|[0-9a-f]{16}")


class FakeClock:
    """The site's clock, moved by hand (read from the server's thread)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Start = Callable[..., tuple[SiteServer, httpx.Client]]


def _client(server: SiteServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def _login(client: httpx.Client) -> httpx.Response:
    form = {"username": USER, "password": PASSWORD, "next": "/matches?page=1"}
    response = client.post("/login", data=form)
    assert response.status_code == 302
    return response


def _token(client: httpx.Client) -> str:
    """The CSRF token a page script reads: the cookie, URL-decoded, up to ``|``."""
    return unquote(client.cookies[CSRF_COOKIE]).split("|", 1)[0]


def _api(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    """A GET (or, with ``json=``, a POST) carrying the current CSRF token."""
    headers = {CSRF_HEADER: _token(client)}
    if "json" in kwargs or "content" in kwargs:
        return client.post(path, headers=headers, **kwargs)
    return client.get(path, headers=headers, **kwargs)


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers of a response, by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def _log(server: SiteServer) -> list[RequestLogEntry]:
    return list(server.app[REQUEST_LOG])


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(plan=None, **config)``: a fresh site and a client logged in to it."""
    servers: list[SiteServer] = []
    clients: list[httpx.Client] = []

    def _start(plan: FaultPlan | None = None, **config: Any) -> tuple[SiteServer, httpx.Client]:
        cfg = SiteConfig(
            seed=SEED, pages=PAGES, rows=ROWS, fault_plan=plan or FaultPlan(), **config
        )
        server = SiteServer(cfg).start()
        servers.append(server)
        client = _client(server)
        clients.append(client)
        _login(client)
        return server, client

    yield _start
    for client in clients:
        client.close()
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[SiteServer, httpx.Client]]:
    """One site and one logged-in client for the tests that only read."""
    with (
        SiteServer(SiteConfig(seed=SEED, pages=PAGES, rows=ROWS)) as server,
        _client(server) as client,
    ):
        _login(client)
        yield server, client


# --- data ---------------------------------------------------------------------------------


def test_details_are_fixed_and_consistent_with_the_list_record() -> None:
    # Pins the generator, like test_site's test_data_is_fixed_across_runs.
    assert match_details(1, 1, 0) == {"longest_cm": 26.8, "shared_ancestors": 3}
    for record, hybrid in zip(ground_truth(2, 20, 30), hybrid_truth(2, 20, 30), strict=True):
        assert {k: v for k, v in hybrid.items() if k in record} == record
        assert set(hybrid) - set(record) == {"longest_cm", "shared_ancestors"}
        longest, cm, segments = hybrid["longest_cm"], record["shared_cm"], record["segments"]
        assert isinstance(longest, float) and isinstance(cm, float) and isinstance(segments, int)
        assert round(longest, 1) == longest and cm / segments - 0.05 <= longest <= cm
        ancestors = hybrid["shared_ancestors"]
        assert isinstance(ancestors, int) and 0 <= ancestors <= 4
        if record["tree_size"] == 0:
            assert ancestors == 0
    assert hybrid_record(2, 3, 4) == {**match_record(2, 3, 4), **match_details(2, 3, 4)}


def test_details_vary() -> None:
    details = [match_details(1, 1, row) for row in range(200)]
    assert len({d["shared_ancestors"] for d in details}) == 5
    assert len({d["longest_cm"] for d in details}) > 100


# --- login and the CSRF cookie ------------------------------------------------------------


def test_login_sets_the_csrf_cookie_beside_the_session_cookie(start: Start) -> None:
    server, client = start(session_ttl=30)
    cookies = _set_cookies(_login(client))
    assert set(cookies) == {SESSION_COOKIE, CSRF_COOKIE}
    session, csrf = cookies[SESSION_COOKIE], cookies[CSRF_COOKIE]
    assert "HttpOnly" in session and "Max-Age=30" in session
    assert "HttpOnly" not in csrf  # page scripts read it
    assert "Path=/" in csrf and "SameSite=Lax" in csrf and "Max-Age=30" in csrf
    value = client.cookies[CSRF_COOKIE]
    assert "|" not in value and _COOKIE_RE.fullmatch(unquote(value))
    # the token kept for this session is the cookie's, and it opens the API
    state = server.app[CSRF_TOKENS][client.cookies[SESSION_COOKIE]]
    assert (state.token, state.cookie) == (_token(client), value)
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200


def test_each_login_gets_its_own_token(start: Start) -> None:
    server, client = start()
    other = _client(server)
    try:
        _login(other)
        assert _token(other) != _token(client)
        # one session's token does not open another's
        refused = other.get(f"{LIST}?currentPage=1", headers={CSRF_HEADER: _token(client)})
        assert refused.status_code == 403
    finally:
        other.close()


# --- the list call ------------------------------------------------------------------------


def test_a_page_of_rows_items_is_the_sites_page(shared: tuple[SiteServer, httpx.Client]) -> None:
    _, client = shared
    for page in range(1, PAGES + 1):
        # itemsPerPage defaults to the site's rows
        query = f"currentPage={page}" if page % 2 else f"currentPage={page}&itemsPerPage={ROWS}"
        response = _api(client, f"{LIST}?{query}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert response.json() == {
            "currentPage": page,
            "itemsPerPage": ROWS,
            "totalItems": TOTAL,
            "totalPages": PAGES,
            "matches": page_rows(SEED, page, ROWS),
        }


def test_seven_per_page_crosses_site_pages_and_covers_everything(
    shared: tuple[SiteServer, httpx.Client],
) -> None:
    _, client = shared
    pages = math.ceil(TOTAL / 7)
    got: list[dict[str, object]] = []
    for n in range(1, pages + 1):
        answer = _api(client, f"{LIST}?itemsPerPage=7&currentPage={n}").json()
        assert (answer["currentPage"], answer["itemsPerPage"]) == (n, 7)
        assert (answer["totalItems"], answer["totalPages"]) == (TOTAL, pages)
        got += answer["matches"]
        if n == 2:  # items 7..13: the end of site page 1 and the start of page 2
            assert [m["page"] for m in answer["matches"]] == [1, 1, 1, 2, 2, 2, 2]
        if n == pages:
            assert len(answer["matches"]) == TOTAL - 7 * (pages - 1) == 4
    assert got == list(ground_truth(SEED, PAGES, ROWS))


def test_one_big_page_holds_everything(shared: tuple[SiteServer, httpx.Client]) -> None:
    _, client = shared
    answer = _api(client, f"{LIST}?itemsPerPage=500&currentPage=1").json()
    assert answer["totalPages"] == 1
    assert answer["matches"] == list(ground_truth(SEED, PAGES, ROWS))


@pytest.mark.parametrize(
    ("query", "status", "named"),
    [
        ("", 400, "currentPage"),
        ("itemsPerPage=5", 400, "currentPage"),
        ("currentPage=0", 400, "currentPage"),
        ("currentPage=-1", 400, "currentPage"),
        ("currentPage=x", 400, "currentPage"),
        ("currentPage=1.5", 400, "currentPage"),
        ("currentPage=1&itemsPerPage=0", 400, "itemsPerPage"),
        ("currentPage=1&itemsPerPage=501", 400, "itemsPerPage"),
        ("currentPage=1&itemsPerPage=ten", 400, "itemsPerPage"),
        ("currentPage=1&itemsPerPage=", 400, "itemsPerPage"),
        (f"currentPage={PAGES + 1}", 404, "currentPage"),
        ("currentPage=9&itemsPerPage=7", 200, None),
        ("currentPage=10&itemsPerPage=7", 404, "currentPage"),
    ],
)
def test_bad_list_parameters(
    shared: tuple[SiteServer, httpx.Client], query: str, status: int, named: str | None
) -> None:
    _, client = shared
    response = _api(client, f"{LIST}?{query}")
    assert response.status_code == status
    if named is not None:
        (message,) = response.json().values()
        assert named in response.json()["error"] and message == response.json()["error"]


# --- detail calls and the batch -----------------------------------------------------------


def test_relationship_and_badge_of_every_match(shared: tuple[SiteServer, httpx.Client]) -> None:
    _, client = shared
    for page in (1, PAGES):
        for row, record in enumerate(page_rows(SEED, page, ROWS)):
            details = match_details(SEED, page, row)
            mid = record["match_id"]
            relationship = _api(client, f"{LIST}/{mid}/relationship")
            assert relationship.status_code == 200
            assert relationship.json() == {
                "match_id": mid,
                "relationship": record["relationship"],
                "shared_cm": record["shared_cm"],
                "segments": record["segments"],
                "longest_cm": details["longest_cm"],
            }
            badge = _api(client, f"{LIST}/{mid}/badge")
            assert badge.json() == {
                "match_id": mid,
                "tree_size": record["tree_size"],
                "shared_ancestors": details["shared_ancestors"],
            }


def test_unknown_matches_and_endpoints_are_json_404s(
    shared: tuple[SiteServer, httpx.Client],
) -> None:
    _, client = shared
    outside = match_record(SEED, PAGES + 1, 0)["match_id"]  # a real id, of another site size
    for path in (f"{LIST}/MNOSUCHMATCH/badge", f"{LIST}/{outside}/relationship"):
        response = _api(client, path)
        assert response.status_code == 404 and "error" in response.json()
    for path in ("/api/v2/nothing", f"{LIST}/badges", f"{LIST}/x/y/z"):
        response = _api(client, path)
        assert response.status_code == 404
        assert response.json() == {"error": "no such endpoint"}


def test_the_batch_answers_in_the_order_asked(shared: tuple[SiteServer, httpx.Client]) -> None:
    _, client = shared
    ids = [str(match_record(SEED, page, row)["match_id"]) for page, row in ((3, 2), (1, 0), (6, 9))]
    wanted = [ids[0], "MNOSUCHMATCH", ids[1], ids[2], ids[0], "nope"]
    response = _api(client, f"{LIST}/badges", json={"match_ids": wanted})
    assert response.status_code == 200
    expected = [
        _api(client, f"{LIST}/{mid}/badge").json() for mid in (ids[0], ids[1], ids[2], ids[0])
    ]
    assert response.json() == {"badges": expected, "missing": ["MNOSUCHMATCH", "nope"]}
    assert expected[0]["shared_ancestors"] == match_details(SEED, 3, 2)["shared_ancestors"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"ids": ["M1"]}',
        b'{"match_ids": []}',
        b'{"match_ids": "M1"}',
        b'{"match_ids": [1, 2]}',
        json.dumps({"match_ids": ["M"] * 101}).encode(),
    ],
    ids=["text", "binary", "list", "other-key", "empty", "string", "numbers", "101"],
)
def test_a_bad_batch_is_400(shared: tuple[SiteServer, httpx.Client], body: bytes) -> None:
    _, client = shared
    response = _api(client, f"{LIST}/badges", content=body)
    assert response.status_code == 400
    assert "match_ids" in response.json()["error"]


def test_a_batch_of_100_is_fine(shared: tuple[SiteServer, httpx.Client]) -> None:
    _, client = shared
    response = _api(client, f"{LIST}/badges", json={"match_ids": ["x"] * 100})
    assert response.status_code == 200 and response.json() == {"badges": [], "missing": ["x"] * 100}


def test_list_and_details_merged_are_the_hybrid_truth(
    shared: tuple[SiteServer, httpx.Client],
) -> None:
    """What a hybrid job exports: each list record with its relationship and badge."""
    _, client = shared
    merged: list[dict[str, object]] = []
    current, pages = 1, 1
    while current <= pages:
        answer = _api(client, f"{LIST}?itemsPerPage=8&currentPage={current}").json()
        pages = answer["totalPages"]
        ids = [m["match_id"] for m in answer["matches"]]
        badges = _api(client, f"{LIST}/badges", json={"match_ids": ids}).json()
        assert badges["missing"] == []
        by_id = {b["match_id"]: b for b in badges["badges"]}
        for match in answer["matches"]:
            relationship = _api(client, f"{LIST}/{match['match_id']}/relationship").json()
            merged.append(
                {
                    **match,
                    "longest_cm": relationship["longest_cm"],
                    "shared_ancestors": by_id[match["match_id"]]["shared_ancestors"],
                }
            )
        current += 1
    assert merged == list(hybrid_truth(SEED, PAGES, ROWS))


# --- CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "wrong", "x" * 24])
def test_a_missing_or_wrong_token_is_403_with_the_current_cookie(
    start: Start, header: str | None
) -> None:
    server, client = start()
    cookie = client.cookies[CSRF_COOKIE]
    headers = {} if header is None else {CSRF_HEADER: header}
    for method, path in (("GET", f"{LIST}?currentPage=1"), ("POST", f"{LIST}/badges")):
        refused = client.request(method, path, headers=headers, json={"match_ids": ["x"]})
        assert refused.status_code == 403
        assert refused.json() == {"error": "csrf token missing or invalid"}
        set_cookie = _set_cookies(refused)[CSRF_COOKIE]
        assert set_cookie.startswith(f"{CSRF_COOKIE}={cookie};") and "Path=/" in set_cookie
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200
    statuses = [e.status for e in _log(server) if e.path.startswith("/api/v2")]
    assert statuses == [403, 403, 200]


def test_a_client_without_the_csrf_cookie_recovers_from_the_403(start: Start) -> None:
    server, client = start()
    bare = _client(server)  # the session cookie only, as a client that forgot the token
    try:
        bare.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
        refused = bare.get(f"{LIST}?currentPage=2")
        assert refused.status_code == 403
        assert bare.cookies[CSRF_COOKIE] == client.cookies[CSRF_COOKIE]  # taken from the 403
        again = _api(bare, f"{LIST}?currentPage=2")
        assert again.status_code == 200 and again.json()["matches"] == page_rows(SEED, 2, ROWS)
    finally:
        bare.close()


def test_an_old_token_is_rotated_and_refused_with_the_new_cookie(start: Start) -> None:
    clock = FakeClock()
    _, client = start(csrf_rotate_every=60.0, clock=clock)
    first = client.cookies[CSRF_COOKIE]
    old_token = _token(client)
    clock.advance(59.0)
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200
    clock.advance(1.0)
    refused = _api(client, f"{LIST}?currentPage=1")
    assert refused.status_code == 403
    second = client.cookies[CSRF_COOKIE]
    assert second != first and _COOKIE_RE.fullmatch(unquote(second))
    assert _set_cookies(refused)[CSRF_COOKIE].startswith(f"{CSRF_COOKIE}={second};")
    # the old token stays refused (and is told the new one, not rotated again)
    stale = client.get(f"{LIST}?currentPage=1", headers={CSRF_HEADER: old_token})
    assert stale.status_code == 403 and client.cookies[CSRF_COOKIE] == second
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200
    # the new token's age counts from its rotation
    clock.advance(59.0)
    assert _api(client, f"{LIST}/badges", json={"match_ids": ["x"]}).status_code == 200
    clock.advance(1.0)
    assert _api(client, f"{LIST}/badges", json={"match_ids": ["x"]}).status_code == 403
    assert client.cookies[CSRF_COOKIE] not in (first, second)


def test_without_rotation_a_token_lasts_the_session(start: Start) -> None:
    clock = FakeClock()
    _, client = start(clock=clock)
    cookie = client.cookies[CSRF_COOKIE]
    clock.advance(10 * 86400.0)
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200
    assert client.cookies[CSRF_COOKIE] == cookie


# --- session lapse ------------------------------------------------------------------------


def test_without_a_session_the_api_answers_303_to_the_login(start: Start) -> None:
    server, _ = start()
    mid = match_record(SEED, 1, 0)["match_id"]
    stranger = _client(server)
    try:
        stranger.cookies.set(SESSION_COOKIE, "no-such-session")
        for who in (_client(server), stranger):
            with who:
                for method, path in (
                    ("GET", f"{LIST}?itemsPerPage=7&currentPage=3"),
                    ("GET", f"{LIST}/{mid}/badge"),
                    ("POST", f"{LIST}/badges"),
                    ("GET", "/api/v2/nothing"),
                ):
                    response = who.request(method, path, json={"match_ids": [mid]})
                    assert response.status_code == 303, (method, path)
                    next_target = httpx.URL(response.headers["Location"]).params["next"]
                    assert response.headers["Location"].startswith("/login?next=%2F")
                    assert next_target == path
    finally:
        stranger.close()
    # the old API keeps its 401
    with _client(server) as anonymous:
        assert anonymous.get("/api/matches?page=1").status_code == 401


def test_an_expired_session_is_303_and_its_token_dropped(start: Start) -> None:
    clock = FakeClock()
    server, client = start(session_ttl=100.0, clock=clock)
    session = client.cookies[SESSION_COOKIE]
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200
    clock.advance(100.0)
    response = _api(client, f"{LIST}?currentPage=1")
    assert response.status_code == 303
    assert session not in server.app[SESSIONS] and session not in server.app[CSRF_TOKENS]


def test_a_resent_cookie_keeps_the_sessions_remaining_lifetime(start: Start) -> None:
    clock = FakeClock()
    _, client = start(session_ttl=100.0, clock=clock)
    clock.advance(40.2)
    refused = client.get(f"{LIST}?currentPage=1")
    assert refused.status_code == 403
    assert "Max-Age=60" in _set_cookies(refused)[CSRF_COOKIE]


def test_logout_drops_the_token(start: Start) -> None:
    server, client = start()
    session, token = client.cookies[SESSION_COOKIE], _token(client)
    assert session in server.app[CSRF_TOKENS]
    logout = client.get("/logout")
    assert logout.status_code == 302 and CSRF_COOKIE in _set_cookies(logout)
    assert session not in server.app[CSRF_TOKENS]
    with _client(server) as copy:
        copy.cookies.set(SESSION_COOKIE, session)
        response = copy.get(f"{LIST}?currentPage=1", headers={CSRF_HEADER: token})
        assert response.status_code == 303


# --- the site's own rate limit ------------------------------------------------------------


def test_a_burst_past_api_rate_gets_429_per_endpoint_and_session(start: Start) -> None:
    clock = FakeClock()
    server, client = start(api_rate=2.0, clock=clock)
    first, second = (match_record(SEED, 1, row)["match_id"] for row in (0, 1))
    assert [_api(client, f"{LIST}?currentPage={n}").status_code for n in (1, 2)] == [200, 200]
    limited = _api(client, f"{LIST}?currentPage=3")
    assert limited.status_code == 429
    assert limited.json() == {"error": "too many requests"}
    assert limited.headers["Retry-After"] == "1"
    # another endpoint has a bucket of its own; two ids are one endpoint
    assert _api(client, f"{LIST}/{first}/badge").status_code == 200
    assert _api(client, f"{LIST}/{second}/badge").status_code == 200
    assert _api(client, f"{LIST}/{first}/badge").status_code == 429
    # another session has buckets of its own
    with _client(server) as other:
        _login(other)
        assert _api(other, f"{LIST}?currentPage=3").status_code == 200
    clock.advance(0.5)  # one token back at 2 per second
    assert _api(client, f"{LIST}?currentPage=3").status_code == 200
    assert _api(client, f"{LIST}?currentPage=3").status_code == 429
    entries = [e for e in _log(server) if e.status == 429]
    assert len(entries) == 3
    assert all((e.fault_kind, e.fault_id) == ("rate_limit", None) for e in entries)
    assert server.config.fault_plan.delivered == []  # nothing was injected
    ok = [e for e in _log(server) if e.status == 200]
    assert all(e.fault_kind is None for e in ok)


def test_a_slow_api_rate_asks_for_whole_seconds(start: Start) -> None:
    clock = FakeClock()
    _, client = start(api_rate=0.25, clock=clock)  # burst 1, a token every 4 s
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200
    assert _api(client, f"{LIST}?currentPage=1").headers["Retry-After"] == "4"
    clock.advance(2.5)
    assert _api(client, f"{LIST}?currentPage=1").headers["Retry-After"] == "2"
    clock.advance(1.5)
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200


def test_the_real_clock_limits_too(start: Start) -> None:
    _, client = start(api_rate=1.0)
    statuses = [_api(client, f"{LIST}?currentPage=1").status_code for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_rate", 0),
        ("api_rate", -1.0),
        ("api_rate", math.inf),
        ("api_rate", math.nan),
        ("csrf_rotate_every", 0),
        ("csrf_rotate_every", -5.0),
        ("csrf_rotate_every", math.inf),
    ],
)
def test_bad_api_settings_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SiteServer(SiteConfig(**{field: value}))


# --- faults on hybrid requests ------------------------------------------------------------


def _on_hybrid(kind: str, page: int | None = 2, **plan: Any) -> FaultPlan:
    return FaultPlan(schedule=[ScheduledFault(kind, page=page)], **plan)


@pytest.mark.parametrize(
    ("kind", "status", "retry_after"),
    [("rate_limit", 429, "2"), ("server_error", 500, None), ("maintenance", 503, "2")],
)
def test_error_faults_answer_json(
    start: Start, kind: str, status: int, retry_after: str | None
) -> None:
    server, client = start(_on_hybrid(kind, retry_after=1.2))
    assert _api(client, f"{LIST}?currentPage=1").status_code == 200  # page 1: not targeted
    response = _api(client, f"{LIST}?currentPage=2")
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers.get("Retry-After") == retry_after
    assert set(response.json()) == {"error"}
    assert _api(client, f"{LIST}?currentPage=2").status_code == 200  # served once
    (entry,) = [e for e in _log(server) if e.fault_kind]
    assert (entry.method, entry.path, entry.status) == ("GET", f"{LIST}?currentPage=2", status)
    assert entry.fault_id == "f000001"


def test_latency_delays_a_hybrid_request(start: Start) -> None:
    _, client = start(_on_hybrid("latency", page=None, latency=0.5))
    began = time.monotonic()
    response = _api(client, f"{LIST}/badges", json={"match_ids": ["x"]})
    assert time.monotonic() - began >= 0.5  # a lower bound only
    assert response.status_code == 200 and response.json()["missing"] == ["x"]


def _raw(server: SiteServer, client: httpx.Client, path: str) -> tuple[bytes, BaseException | None]:
    """One GET with the client's cookies and token on a fresh socket."""
    cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
    return raw_get(server.port, path, {"Cookie": cookie, CSRF_HEADER: _token(client)})


def _cut_body(raw: bytes) -> tuple[int, bytes]:
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert b"application/json" in head
    return content_length(raw)


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_reset_and_truncate_cut_the_json(start: Start, kind: str) -> None:
    server, client = start(FaultPlan(schedule=[ScheduledFault(kind, page=2, times=2)]))
    raw, error = _raw(server, client, f"{LIST}?currentPage=2")
    length, body = _cut_body(raw)
    # half the body, not the "<body"-in-head cut of an HTML document
    assert len(body) == length // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    if kind == "reset":
        assert isinstance(error, ConnectionResetError)
    else:
        assert error is None  # a plain close
    with pytest.raises(httpx.TransportError):
        _api(client, f"{LIST}?currentPage=2")
    whole = _api(client, f"{LIST}?currentPage=2")
    assert whole.status_code == 200 and len(whole.content) == length
    assert whole.json()["matches"] == page_rows(SEED, 2, ROWS)
    entries = [e for e in _log(server) if e.fault_kind == kind]
    assert [(e.status, e.fault_id) for e in entries] == [(0, "f000001"), (0, "f000002")]


def test_session_expiry_on_a_hybrid_request_is_303_and_the_session_is_gone(
    start: Start,
) -> None:
    server, client = start(_on_hybrid("session_expiry", page=3))
    session = client.cookies[SESSION_COOKIE]
    mid = match_record(SEED, 3, 5)["match_id"]  # a detail call's page is its match's
    assert _api(client, f"{LIST}/{match_record(SEED, 2, 5)['match_id']}/badge").status_code == 200
    response = _api(client, f"{LIST}/{mid}/badge")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/login?next=%2Fapi%2Fv2%2Fmatches%2F{mid}%2Fbadge"
    assert session not in server.app[SESSIONS] and session not in server.app[CSRF_TOKENS]
    assert client.get("/matches?page=1").status_code == 302  # the browser pages too
    _login(client)
    assert _api(client, f"{LIST}/{mid}/badge").status_code == 200
    entry = next(e for e in _log(server) if e.fault_kind == "session_expiry")
    assert entry.status == 303


def test_csrf_rotation_is_403_with_the_new_cookie(start: Start) -> None:
    server, client = start(_on_hybrid("csrf_rotation", page=None))
    before = client.cookies[CSRF_COOKIE]
    refused = _api(client, f"{LIST}?currentPage=4")
    assert refused.status_code == 403
    after = client.cookies[CSRF_COOKIE]
    assert after != before and _set_cookies(refused)[CSRF_COOKIE].startswith(
        f"{CSRF_COOKIE}={after};"
    )
    assert _api(client, f"{LIST}?currentPage=4").status_code == 200  # the retry succeeds
    entry = next(e for e in _log(server) if e.fault_kind == "csrf_rotation")
    assert (entry.status, entry.path) == (403, f"{LIST}?currentPage=4")


def test_a_hybrid_requests_page_is_its_first_items(start: Start) -> None:
    server, client = start(FaultPlan(schedule=[ScheduledFault("server_error", page=2, times=9)]))
    statuses = {
        n: _api(client, f"{LIST}?itemsPerPage=7&currentPage={n}").status_code for n in (1, 2, 3)
    }
    # items 0, 7, 14 are on site pages 1, 1, 2 (10 rows a page)
    assert statuses == {1: 200, 2: 200, 3: 500}
    on_page_1, on_page_2 = (
        match_record(SEED, 1, 9)["match_id"],
        match_record(SEED, 2, 0)["match_id"],
    )
    assert _api(client, f"{LIST}/{on_page_1}/relationship").status_code == 200
    assert _api(client, f"{LIST}/{on_page_2}/relationship").status_code == 500
    # the batch has no page, and bad parameters give none
    assert _api(client, f"{LIST}/badges", json={"match_ids": [on_page_2]}).status_code == 200
    assert _api(client, f"{LIST}?currentPage=99").status_code == 404
    assert [f.page for f in server.config.fault_plan.delivered] == [2, 2]


def test_every_hybrid_request_is_logged_and_browser_faults_stay_off_it(start: Start) -> None:
    plan = FaultPlan(rates={"stale_dom": 1.0, "missing_element": 0.0, "broken_script": 1.0})
    server, client = start(plan)
    paths = [f"{LIST}?currentPage=1", f"{LIST}/MNOSUCHMATCH/badge", "/api/v2/nothing"]
    for path in paths:
        _api(client, path)
    _api(client, f"{LIST}/badges", json={"match_ids": ["x"]})
    entries = [e for e in _log(server) if e.path.startswith("/api/v2")]
    assert [(e.method, e.path, e.status) for e in entries] == [
        ("GET", paths[0], 200),
        ("GET", paths[1], 404),
        ("GET", paths[2], 404),
        ("POST", f"{LIST}/badges", 200),
    ]
    assert all(e.fault_kind is None for e in entries)
    assert plan.delivered == []


# --- the plan and hybrid requests ---------------------------------------------------------


def test_expire_session_every_counts_documents_and_list_calls() -> None:
    plan = FaultPlan(expire_session_every=2)
    seq: list[tuple[str, str, bool | None]] = [
        ("document", "/matches?page=1", None),  # load 1
        ("hybrid", f"{LIST}/M1/badge", False),
        ("api", "/api/matches?page=1", None),
        ("hybrid", f"{LIST}?currentPage=1", True),  # load 2: expires
        ("script", "/static/matches.js", None),
        ("hybrid", f"{LIST}/badges", False),
        ("hybrid", f"{LIST}?currentPage=2", True),  # load 3
        ("document", "/matches?page=2", None),  # load 4: expires
    ]
    got = [plan.decide(kind, path, 1, page_load=load) for kind, path, load in seq]
    assert [i for i, fault in enumerate(got) if fault is not None] == [3, 7]
    assert {f.kind for f in plan.delivered} == {"session_expiry"}
    with pytest.raises(ValueError, match="page_load"):
        plan.decide("api", "/api/matches?page=1", 1, page_load=True)
    # page_load=False keeps even a document out of the count
    quiet = FaultPlan(expire_session_every=1)
    assert quiet.decide("document", "/matches?page=1", 1, page_load=False) is None


def test_expire_session_every_over_http_counts_list_calls_only(start: Start) -> None:
    server, client = start(FaultPlan(expire_session_every=2))
    mid = match_record(SEED, 1, 0)["match_id"]
    statuses = []
    for n in range(1, 5):
        statuses.append(_api(client, f"{LIST}/{mid}/badge").status_code)  # not a page load
        response = _api(client, f"{LIST}?currentPage={n}")
        statuses.append(response.status_code)
        if response.status_code == 303:
            _login(client)
    assert statuses == [200, 200, 200, 303, 200, 200, 200, 303]
    assert server.config.fault_plan.counts() == {"session_expiry": 2}


@pytest.mark.parametrize(
    ("rates", "named"),
    [
        ({"truncate": 0.6, "csrf_rotation": 0.5}, "hybrid requests add up to 1.1"),
        ({"latency": 0.5, "csrf_rotation": 0.6}, "hybrid requests add up to 1.1"),
        ({"server_error": 1.0, "truncate": 1.0}, "hybrid requests add up to 2"),
        ({"stale_dom": 0.7, "latency": 0.4}, "document requests add up to 1.1"),
    ],
)
def test_rates_add_up_to_one_at_most_per_request_kind(rates: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        FaultPlan(rates=rates)


def test_rates_on_different_request_kinds_do_not_add_up() -> None:
    # stale_dom hits documents only, csrf_rotation hybrid requests only
    FaultPlan(rates={"stale_dom": 0.6, "csrf_rotation": 0.6})
    FaultPlan(rates={"missing_element": 1.0, "truncate": 1.0})
    FaultPlan(rates={"broken_script": 1.0, "csrf_rotation": 1.0})


def test_random_faults_on_hybrid_requests_follow_the_targets() -> None:
    plan = FaultPlan(seed=3, rates={"csrf_rotation": 0.1, "stale_dom": 0.2, "truncate": 0.1})
    hits: dict[str, list[str]] = {kind: [] for kind in REQUEST_KINDS}
    for i in range(3000):
        for kind_of_request in REQUEST_KINDS:
            fault = plan.decide(kind_of_request, f"/x/{i}", i % 9 + 1)
            if fault is not None:
                hits[kind_of_request].append(fault.kind)
    assert set(hits["hybrid"]) == {"csrf_rotation", "truncate"}
    assert set(hits["document"]) == {"stale_dom"}
    assert set(hits["api"]) == {"truncate"}
    assert hits["script"] == []
    # 3000 of each; the seed is fixed, so these bounds are not flaky
    assert 220 < hits["hybrid"].count("csrf_rotation") < 380
    assert 220 < hits["hybrid"].count("truncate") < 380
    for kind in FAULT_KINDS:
        for kind_of_request, kinds in hits.items():
            assert kind not in kinds or kind_of_request in FAULT_TARGETS[kind]
