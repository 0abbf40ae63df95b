"""Server-side faults of the built-in site: the plan's decisions, and each fault served for real.

The plan is tested on its own (determinism, precedence, validation); every
fault kind is then requested over real HTTP from a ``SiteServer`` on
127.0.0.1, with urllib or a raw socket, and checked by what a client sees.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import enduro.stress.site as site
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
    page_rows,
)
from enduro.stress.site.app import SESSION_COOKIE

from .conftest import content_length, raw_get, run_node

PAGES = 8
ROWS = 5
FAVICON = '<link rel="icon" href="data:,">'
ENDURO = Path(sys.executable).parent / "enduro"
SCRIPT_PATH = Path(site.__file__).parent / "static" / "matches.js"


Client = Any  # conftest.py's shared client, made by the client_for fixture
Start = Callable[..., tuple[SiteServer, Client]]


@pytest.fixture
def start(client_for: Callable[[str], Client]) -> Iterator[Start]:
    """``start(plan=None, **config)``: a fresh site (plans are stateful) and a logged-in client."""
    servers: list[SiteServer] = []

    def _start(plan: FaultPlan | None = None, **config: Any) -> tuple[SiteServer, Client]:
        cfg = SiteConfig(seed=3, pages=PAGES, rows=ROWS, fault_plan=plan or FaultPlan(), **config)
        server = SiteServer(cfg).start()
        servers.append(server)
        client = client_for(server.url)
        assert client.login()[0] == 302
        return server, client

    yield _start
    for server in servers:
        server.close()


def _scheduled(kind: str, page: int = 2, **plan: Any) -> FaultPlan:
    return FaultPlan(schedule=[ScheduledFault(kind, page=page)], **plan)


def _log(server: SiteServer) -> list[RequestLogEntry]:
    return list(server.app[REQUEST_LOG])


# --- the plan on its own ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"rates": {"meteor": 0.1}}, "'meteor'"),
        ({"rates": {"rate_limit": -0.1}}, "-0.1"),
        ({"rates": {"rate_limit": 1.5}}, "1.5"),
        ({"rates": {"rate_limit": math.nan}}, "nan"),
        ({"rates": {"rate_limit": 0.6, "server_error": 0.5}}, "1.1"),
        ({"schedule": [ScheduledFault("meteor")]}, "'meteor'"),
        ({"schedule": [ScheduledFault("reset", times=-1)]}, "-1"),
        ({"schedule": [ScheduledFault("reset", after=-2)]}, "-2"),
        ({"schedule": [ScheduledFault("reset", page=0)]}, "0"),
        ({"expire_session_every": -3}, "-3"),
        ({"retry_after": -1.5}, "-1.5"),
        ({"latency": -0.25}, "-0.25"),
    ],
)
def test_bad_plan_values_raise_naming_the_value(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        FaultPlan(**kwargs)


def test_decide_refuses_unknown_request_kinds() -> None:
    with pytest.raises(ValueError, match="'page'"):
        FaultPlan().decide("page", "/matches?page=1", 1)


def test_every_kind_has_a_target() -> None:
    assert set(FAULT_TARGETS) == set(FAULT_KINDS)
    assert all(targets and set(targets) <= set(REQUEST_KINDS) for targets in FAULT_TARGETS.values())
    assert FAULT_TARGETS["truncate"] == ("api", "hybrid")
    assert FAULT_TARGETS["broken_script"] == ("script",)
    assert FAULT_TARGETS["csrf_rotation"] == ("hybrid",)
    # only the kinds that change the page itself stay off the JSON API
    assert {k for k, targets in FAULT_TARGETS.items() if "hybrid" not in targets} == {
        "broken_script",
        "stale_dom",
        "missing_element",
    }


def _requests(n: int, hybrid: bool = False) -> list[tuple[str, str, int | None]]:
    """A browser-like sequence: document, script, API for pages 1, 2, ... n
    (``hybrid``: and a v2 list call for the page after each)."""
    seq: list[tuple[str, str, int | None]] = []
    for i in range(n):
        page = i % 50 + 1
        seq += [
            ("document", f"/matches?page={page}", page),
            ("script", "/static/matches.js", page),
            ("api", f"/api/matches?page={page}", page),
        ]
        if hybrid:
            seq.append(("hybrid", f"/api/v2/matches?currentPage={page}", page))
    return seq


def _replay(plan: FaultPlan, seq: list[tuple[str, str, int | None]]) -> list[tuple[int, str]]:
    out = []
    for i, (kind, path, page) in enumerate(seq):
        fault = plan.decide(kind, path, page)
        if fault is not None:
            out.append((i, fault.kind))
    return out


RATES = {
    "latency": 0.02,
    "rate_limit": 0.03,
    "server_error": 0.03,
    "maintenance": 0.02,
    "reset": 0.02,
    "stale_dom": 0.03,
    "missing_element": 0.03,
    "session_expiry": 0.02,
    "truncate": 0.05,
    "broken_script": 0.05,
    "csrf_rotation": 0.05,
}


def test_same_seed_same_faults_on_the_same_requests_and_other_seeds_differ() -> None:
    seq = _requests(400, hybrid=True)
    first = _replay(FaultPlan(seed=11, rates=RATES), seq)
    again = _replay(FaultPlan(seed=11, rates=RATES), seq)
    other = _replay(FaultPlan(seed=12, rates=RATES), seq)
    assert first == again
    assert {kind for _, kind in first} == set(FAULT_KINDS)
    assert first != other


def test_random_faults_hit_only_their_target_requests_at_their_rates() -> None:
    seq = _requests(4000)
    plan = FaultPlan(seed=2, rates={"rate_limit": 0.1, "truncate": 0.2})
    faults = _replay(plan, seq)
    by_kind = {
        k: [seq[i][0] for i, kind in faults if kind == k] for k in ("rate_limit", "truncate")
    }
    assert set(by_kind["rate_limit"]) == {"document"}
    assert set(by_kind["truncate"]) == {"api"}
    # 4000 requests of each kind; the seed is fixed, so these bounds are not flaky.
    assert 300 < len(by_kind["rate_limit"]) < 500
    assert 650 < len(by_kind["truncate"]) < 950
    assert plan.counts() == {k: len(v) for k, v in by_kind.items()}


def test_an_empty_plan_never_faults() -> None:
    plan = FaultPlan(seed=5)
    assert _replay(plan, _requests(200)) == []
    assert plan.delivered == [] and plan.counts() == {}


def test_a_schedule_takes_precedence_and_leaves_the_random_draws_in_place() -> None:
    seq = _requests(300)
    plain = _replay(FaultPlan(seed=4, rates=RATES), seq)
    schedule = [ScheduledFault("maintenance", page=7, times=2)]
    mixed = _replay(FaultPlan(seed=4, rates=RATES, schedule=schedule), seq)
    page7 = [i for i, (kind, _, page) in enumerate(seq) if kind == "document" and page == 7]
    assert [(i, "maintenance") for i in page7[:2]] == [f for f in mixed if f[0] in page7[:2]]
    # Every other request gets what it got without the schedule.
    assert [f for f in mixed if f[0] not in page7[:2]] == [
        f for f in plain if f[0] not in page7[:2]
    ]


def test_scheduled_times_and_after() -> None:
    plan = FaultPlan(
        rates={"server_error": 1.0},
        schedule=[ScheduledFault("rate_limit", page=3, times=2, after=1)],
    )
    got = [plan.decide("document", "/matches?page=3", 3) for _ in range(4)]
    assert [f.kind if f else None for f in got] == [
        "server_error",  # let through by the schedule; the random rate of 1 hits it
        "rate_limit",
        "rate_limit",
        "server_error",
    ]
    other = plan.decide("document", "/matches?page=2", 2)
    assert other is not None and other.kind == "server_error"


def test_rearm_serves_the_schedule_again_and_keeps_what_was_handed_out() -> None:
    plan = FaultPlan(schedule=[ScheduledFault("stale_dom", page=2)])
    first = [plan.decide("document", "/matches?page=2", 2) for _ in range(2)]
    assert [f.kind if f else None for f in first] == ["stale_dom", None]
    plan.rearm()  # a new pass over the pages
    again = [plan.decide("document", "/matches?page=2", 2) for _ in range(2)]
    assert [f.kind if f else None for f in again] == ["stale_dom", None]
    assert [f.id for f in plan.delivered] == ["f000001", "f000002"]


def test_two_schedules_on_one_request_the_first_wins_and_the_other_waits() -> None:
    plan = FaultPlan(
        schedule=[ScheduledFault("reset", page=1), ScheduledFault("latency", page=None, times=1)]
    )
    kinds = [plan.decide("document", "/matches?page=1", 1) for _ in range(3)]
    assert [f.kind if f else None for f in kinds] == ["reset", "latency", None]
    assert plan.decide("api", "/api/matches?page=1", 1) is None  # no api fault scheduled


def test_faults_carry_ids_paths_pages_times_and_params() -> None:
    plan = FaultPlan(
        schedule=[
            ScheduledFault("rate_limit", page=1),
            ScheduledFault("latency", page=2),
            ScheduledFault("server_error", page=3),
            ScheduledFault("truncate", page=3),
        ],
        retry_after=1.2,
        latency=0.5,
    )
    before = time.time()
    for kind, path, page in _requests(3):
        plan.decide(kind, path, page)
    delivered = plan.delivered
    assert [(f.id, f.kind, f.path, f.page) for f in delivered] == [
        ("f000001", "rate_limit", "/matches?page=1", 1),
        ("f000002", "latency", "/matches?page=2", 2),
        ("f000003", "server_error", "/matches?page=3", 3),
        ("f000004", "truncate", "/api/matches?page=3", 3),
    ]
    assert [dict(f.params) for f in delivered[:3]] == [
        {"retry_after": 2},
        {"delay": 0.5},
        {"status": 500},
    ]
    assert all(before <= f.at <= time.time() for f in delivered)
    delivered.clear()  # a copy: the plan's record is untouched
    assert len(plan.delivered) == 4
    assert plan.counts() == {"rate_limit": 1, "latency": 1, "server_error": 1, "truncate": 1}


def test_expire_session_every_counts_every_document_request() -> None:
    plan = FaultPlan(expire_session_every=30, schedule=[ScheduledFault("reset", page=5)])
    expired = [
        i
        for i, (kind, path, page) in enumerate(_requests(200))
        if (f := plan.decide(kind, path, page)) is not None and f.kind == "session_expiry"
    ]
    # Document requests 30, 60, ... 180 (the reset on page 5 is counted, not expired).
    assert [i // 3 + 1 for i in expired] == [30, 60, 90, 120, 150, 180]
    assert plan.counts() == {"reset": 1, "session_expiry": 6}


# --- each fault, served for real ---------------------------------------------------------


def test_no_plan_serves_every_page_normally(start: Start) -> None:
    server, client = start()
    for page in (1, 2, 3):
        status, _, body = client.request(f"/matches?page={page}")
        assert status == 200 and 'id="matches"' in body
    assert all(e.fault_id is None for e in _log(server))


def test_latency_holds_the_page_back(start: Start) -> None:
    _, client = start(_scheduled("latency", latency=0.6))
    began = time.monotonic()
    status, _, body = client.request("/matches?page=2")
    assert time.monotonic() - began >= 0.6  # a lower bound only
    assert status == 200 and '<table id="matches">' in body


@pytest.mark.parametrize(
    ("kind", "status", "text", "retry_after"),
    [
        ("rate_limit", 429, "Too many requests", "2"),
        ("server_error", 500, "Internal server error", None),
        ("maintenance", 503, "Down for maintenance", "2"),
    ],
)
def test_error_statuses(
    start: Start, kind: str, status: int, text: str, retry_after: str | None
) -> None:
    server, client = start(_scheduled(kind, retry_after=1.2))
    got, headers, body = client.request("/matches?page=2")
    assert got == status
    assert headers["Retry-After"] == retry_after  # rounded up to whole seconds
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert text in body and FAVICON in body
    assert 'id="matches"' not in body
    # Served once: the next request for the page is normal.
    assert client.request("/matches?page=2")[0] == 200
    (faulted,) = [e for e in _log(server) if e.fault_kind]
    assert (faulted.status, faulted.fault_kind, faulted.path) == (status, kind, "/matches?page=2")


def test_reset_cuts_the_document_with_a_tcp_reset(start: Start) -> None:
    server, client = start(FaultPlan(schedule=[ScheduledFault("reset", page=2, times=2)]))
    raw, error = raw_get(
        server.port, "/matches?page=2", {"Cookie": f"{SESSION_COOKIE}={client.token()}"}
    )
    assert isinstance(error, ConnectionResetError)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    length, body = content_length(raw)
    assert 0 < len(body) < length
    assert body.startswith(b"<!DOCTYPE html>") and b"<body" not in body
    # urllib sees the connection error too.
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        client.request("/matches?page=2")
    # Served twice: the page is whole afterwards.
    raw, error = raw_get(
        server.port, "/matches?page=2", {"Cookie": f"{SESSION_COOKIE}={client.token()}"}
    )
    assert error is None and b'<table id="matches">' in raw
    entries = [e for e in _log(server) if e.fault_kind == "reset"]
    assert [(e.status, e.fault_id) for e in entries] == [(0, "f000001"), (0, "f000002")]


def test_truncate_sends_half_the_json_then_closes(start: Start) -> None:
    server, client = start(_scheduled("truncate"))
    req = urllib.request.Request(
        f"{server.url}/api/matches?page=2",
        headers={"Cookie": f"{SESSION_COOKIE}={client.token()}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        length = int(resp.headers["Content-Length"])
        with pytest.raises(http.client.IncompleteRead) as cut:
            resp.read()
    assert 0 < len(cut.value.partial) < length
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.value.partial)
    # The next request gets the whole, valid JSON.
    status, _, body = client.request("/api/matches?page=2")
    assert status == 200 and json.loads(body)["rows"] == page_rows(3, 2, ROWS)
    assert len(body.encode()) == length
    entry = next(e for e in _log(server) if e.fault_kind == "truncate")
    assert (entry.status, entry.path) == (0, "/api/matches?page=2")


def test_broken_script_is_served_to_the_page_it_was_scheduled_for(start: Start) -> None:
    _, client = start(_scheduled("broken_script", page=4))
    good = SCRIPT_PATH.read_text(encoding="utf-8")
    referer = {"Referer": f"{client.base}/matches?page=3"}
    assert client.request("/static/matches.js", headers=referer)[2] == good
    status, headers, broken = client.request(
        "/static/matches.js", headers={"Referer": f"{client.base}/matches?page=4"}
    )
    assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert broken != good
    assert "var rows = [;" in broken  # an array literal cut short: a SyntaxError
    node = shutil.which("node")
    assert node is not None, "node is missing: make setup installs Debian's nodejs"
    check = subprocess.run([node, "--check", "-"], input=broken, capture_output=True, text=True)
    assert check.returncode != 0 and "SyntaxError" in check.stderr
    assert client.request("/static/matches.js", headers=referer)[2] == good


def test_stale_dom_marks_the_page_for_a_rerender(start: Start) -> None:
    _, client = start(_scheduled("stale_dom"))
    _, _, body = client.request("/matches?page=2")
    assert (
        f'<body data-page="2" data-pages="{PAGES}" data-state="loading" data-rerender="1">' in body
    )
    assert '<table id="matches">' in body
    _, _, body = client.request("/matches?page=2")
    assert "data-rerender" not in body


def test_missing_element_serves_the_page_without_its_table(start: Start) -> None:
    _, client = start(_scheduled("missing_element"))
    status, _, body = client.request("/matches?page=2")
    assert status == 200
    assert 'id="matches"' not in body and '<div id="matches-unavailable"' in body
    assert f'<body data-page="2" data-pages="{PAGES}" data-state="loading">' in body
    assert '<script src="/static/matches.js"></script>' in body
    assert '<table id="matches">' in client.request("/matches?page=2")[2]


def test_session_expiry_logs_a_valid_session_out(start: Start) -> None:
    server, client = start(_scheduled("session_expiry", page=3))
    token = client.token()
    assert client.request("/matches?page=2")[0] == 200
    status, headers, _ = client.request("/matches?page=3")
    assert (status, headers["Location"]) == (302, "/login?next=%2Fmatches%3Fpage%3D3")
    assert client.request("/api/matches?page=1", cookie=token)[0] == 401
    assert client.login()[0] == 302  # a new login works
    assert client.token() != token and client.request("/matches?page=3")[0] == 200
    entry = next(e for e in _log(server) if e.fault_kind == "session_expiry")
    assert (entry.status, entry.path) == (302, "/matches?page=3")


def test_expire_session_every_over_http(start: Start) -> None:
    server, client = start(FaultPlan(expire_session_every=3))
    statuses = []
    for page in range(1, 7):
        status, _, _ = client.request(f"/matches?page={page}")
        statuses.append(status)
        if status == 302:
            client.login()
    assert statuses == [200, 200, 302, 200, 200, 302]
    assert server.config.fault_plan.counts() == {"session_expiry": 2}


def test_logged_out_and_bad_page_requests_are_not_faulted(
    start: Start, client_for: Callable[[str], Client]
) -> None:
    # Every document and every API request would be faulted (missing_element hits
    # documents only, so it can go with truncate at 1: both would be 2 on hybrid requests).
    server, client = start(FaultPlan(rates={"missing_element": 1.0, "truncate": 1.0}))
    assert client_for(server.url).request("/matches?page=2")[0] == 302
    assert client.request("/matches?page=99")[0] == 404
    assert client.request("/api/matches?page=0")[0] == 404
    assert client_for(server.url).request("/api/v2/matches?currentPage=1")[0] == 303
    assert server.config.fault_plan.delivered == []
    status, _, body = client.request("/matches?page=2")
    assert status == 200 and '<div id="matches-unavailable"' in body


def test_random_faults_over_http_follow_the_seed(start: Start) -> None:
    def run() -> list[tuple[str, int, str | None]]:
        server, client = start(FaultPlan(seed=9, rates={"server_error": 0.3, "rate_limit": 0.3}))
        for page in range(1, PAGES + 1):
            client.request(f"/matches?page={page}")
        return [(e.path, e.status, e.fault_kind) for e in _log(server) if e.path != "/login"]

    first, second = run(), run()
    assert first == second
    assert {kind for _, _, kind in first} >= {"server_error", "rate_limit"}


# --- the request log, HTML details, session TTL ---------------------------------------------


def test_the_request_log_records_every_request_and_its_fault(start: Start) -> None:
    before = time.time()
    server, client = start(
        FaultPlan(schedule=[ScheduledFault("rate_limit", page=2), ScheduledFault("truncate")])
    )
    client.request("/matches?page=1")
    client.request("/matches?page=2")
    client.request("/healthz")
    client.request("/nope")
    log = _log(server)
    assert [(e.method, e.path, e.status, e.fault_id, e.fault_kind) for e in log] == [
        ("POST", "/login", 302, None, None),
        ("GET", "/matches?page=1", 200, None, None),
        ("GET", "/matches?page=2", 429, "f000001", "rate_limit"),
        ("GET", "/healthz", 200, None, None),
        ("GET", "/nope", 404, None, None),
    ]
    assert before <= log[0].at <= log[-1].at <= time.time()
    assert [e.at for e in log] == sorted(e.at for e in log)


def test_every_html_page_has_an_empty_icon_and_the_list_catches_script_errors(
    start: Start, client_for: Callable[[str], Client]
) -> None:
    server, client = start()
    pages = {
        "/login": 200,
        "/matches?page=1": 200,
        "/matches?page=999": 404,
        "/no/such/route": 404,
        f"/match/{page_rows(3, 1, ROWS)[0]['match_id']}": 200,
    }
    for path, expected in pages.items():
        status, headers, body = client.request(path)
        assert status == expected, path
        assert headers["Content-Type"] == "text/html; charset=utf-8", path
        assert FAVICON in body.split("</head>")[0], path
    head = client.request("/matches?page=1")[2].split("</head>")[0]
    assert 'window.addEventListener("error"' in head
    assert '"script error: " + event.message' in head
    assert client_for(server.url).request("/login", {"username": "x", "password": "y"})[0] == 401


def test_session_ttl_sets_max_age_and_expires_the_login(start: Start) -> None:
    now = [1000.0]  # the site's clock, moved by hand
    _, client = start(session_ttl=0.4, clock=lambda: now[0])
    cookie = client.login()[1]["Set-Cookie"]
    assert "Max-Age=1" in cookie
    token = client.token()
    now[0] += 0.39
    assert client.request("/api/matches?page=1")[0] == 200
    now[0] += 0.02
    assert client.request("/api/matches?page=1", cookie=token)[0] == 401
    assert client.request("/matches?page=1", cookie=token)[0] == 302


def test_without_session_ttl_the_cookie_lasts_the_browser_session(start: Start) -> None:
    _, client = start()
    assert "Max-Age" not in client.login()[1]["Set-Cookie"]


@pytest.mark.parametrize("ttl", [0, -1.0, math.inf])
def test_bad_session_ttl_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match="session_ttl"):
        SiteServer(SiteConfig(session_ttl=ttl))


# --- matches.js under the faults, run by node against a minimal fake DOM ------------------

_HARNESS = r"""
const fs = require("fs");
const [scriptPath, withTable, rerender] = process.argv.slice(2);
Node.prototype.replaceWith = function (n) { current.table = n; };
const body = new Node("body");
body.dataset = { page: "2", pages: "5", state: "loading" };
if (rerender === "1") { body.dataset.rerender = "1"; }
const table = new Node("table");
const tbody = new Node("tbody");
const current = { table: withTable === "1" ? table : null };
global.document = {
  body,
  querySelector: (sel) => {
    if (!current.table) { return null; }
    if (sel === "#matches tbody") { return tbody; }
    if (sel === "#matches") { return current.table; }
    return null;
  },
  createElement: (tag) => new Node(tag),
  createDocumentFragment: () => new Node("#fragment"),
};
let fetched = 0;
global.fetch = () => {
  fetched += 1;
  return Promise.resolve({ status: 200, ok: true, json: () => Promise.resolve({ rows: [] }) });
};
eval(fs.readFileSync(scriptPath, "utf8"));
setTimeout(() => {
  console.log(JSON.stringify({
    fetched, dataset: body.dataset, replaced: current.table !== null && current.table !== table,
    clone: Boolean(current.table && current.table.clone),
  }));
}, 400);
"""


def _run_script(tmp_path: Path, with_table: bool, rerender: bool) -> dict[str, Any]:
    result: dict[str, Any] = run_node(
        tmp_path, _HARNESS, str(SCRIPT_PATH), str(int(with_table)), str(int(rerender))
    )
    return result


def test_script_without_the_table_is_ready_with_no_rows(tmp_path: Path) -> None:
    result = _run_script(tmp_path, with_table=False, rerender=False)
    assert result["fetched"] == 0
    assert result["dataset"] == {"page": "2", "pages": "5", "state": "ready"}


def test_script_rerenders_the_table_before_ready_only_when_asked(tmp_path: Path) -> None:
    asked = _run_script(tmp_path, with_table=True, rerender=True)
    assert asked["dataset"]["state"] == "ready" and asked["fetched"] == 1
    assert asked["replaced"] and asked["clone"]
    plain = _run_script(tmp_path, with_table=True, rerender=False)
    assert plain["dataset"]["state"] == "ready" and not plain["replaced"]


def test_script_source_has_the_fault_hooks() -> None:
    # Node-free: the hooks the faults rely on are in the script as served.
    source = SCRIPT_PATH.read_text(encoding="utf-8")
    assert "table.replaceWith(table.cloneNode(true))" in source
    # the re-render comes a moment after the rows, and "ready" only after it
    assert source.index("replaceWith") < source.rindex('body.dataset.state = "ready"')
    assert 'body.dataset.rerender !== "1"' in source
    assert "if (!tbody)" in source


def test_the_inline_catcher_reports_a_script_error(start: Start, tmp_path: Path) -> None:
    _, client = start()
    head = client.request("/matches?page=1")[2].split("</head>")[0]
    (inline,) = re.findall(r"<script>(.*?)</script>", head, flags=re.S)
    dataset = run_node(
        tmp_path,
        "const listeners = {};\n"
        "global.window = { addEventListener: (t, f) => { listeners[t] = f; } };\n"
        "global.document = { body: { dataset: { state: 'loading' } } };\n"
        f"{inline}\n"
        "listeners.error({ message: \"Uncaught SyntaxError: Unexpected token ';'\" });\n"
        "console.log(JSON.stringify(document.body.dataset));\n",
    )
    assert dataset == {
        "state": "error",
        "error": "script error: Uncaught SyntaxError: Unexpected token ';'",
    }


# --- the CLI ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--fault", "meteor=0.1"], "'meteor'"),
        (["--fault", "rate_limit=2"], "rate_limit=2"),
        (["--fault", "rate_limit"], "rate_limit"),
        (["--fault", "rate_limit=0.7", "--fault", "server_error=0.7"], "1.4"),
        (["--retry-after", "-1"], "-1"),
        (["--expire-session-every", "-2"], "-2"),
        (["--session-ttl", "0"], "0"),
    ],
)
def test_cli_refuses_bad_fault_options(args: list[str], named: str) -> None:
    done = subprocess.run(
        [str(ENDURO), "site", "--port", "0", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert done.stdout == ""


def test_cli_serves_the_faults_it_is_given(client_for: Callable[[str], Client]) -> None:
    proc = subprocess.Popen(
        [
            *(str(ENDURO), "site", "--port", "0", "--pages", "3", "--rows", "2"),
            *("--fault", "server_error=1", "--session-ttl", "30"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        assert "server_error 1" in line
        client = client_for(match.group(0))
        status, headers = client.login()
        assert status == 302 and "Max-Age=30" in headers["Set-Cookie"]
        assert client.request("/matches?page=1")[0] == 500
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_pace_holds_every_list_page_and_rejects_nonsense() -> None:
    with SiteServer(SiteConfig(pages=2, rows=2, pace=0.3)) as server:
        began = time.monotonic()
        with urllib.request.urlopen(f"{server.url}/matches?page=1") as response:
            assert response.status == 200  # the login form, after a paced redirect
        assert time.monotonic() - began >= 0.3
    with pytest.raises(ValueError, match="pace"):
        SiteServer(SiteConfig(pace=-1))
