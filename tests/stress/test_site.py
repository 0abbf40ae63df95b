"""Tests for the built-in target site: its data, its HTTP contract and how it is served."""

from __future__ import annotations

import datetime as dt
import html
import json
import socket
import threading
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import enduro.stress.site as site
from enduro.stress.site import (
    SiteConfig,
    SiteServer,
    find_match,
    ground_truth,
    match_record,
    page_rows,
    serve_forever,
)
from enduro.stress.site.app import REQUEST_COUNTS, SESSION_COOKIE

from .conftest import run_node

CONFIG = SiteConfig(seed=7, pages=5, rows=10)
FIELDS = {
    "match_id": str,
    "name": str,
    "shared_cm": float,
    "segments": int,
    "relationship": str,
    "tree_size": int,
    "last_active": str,
    "page": int,
}
RELATIONSHIPS = {
    "Parent/Child",
    "Full sibling",
    "1st cousin",
    "2nd cousin",
    "3rd cousin",
    "4th cousin",
    "5th–8th cousin",  # noqa: RUF001 (the site prints an en dash)
}


Client = Any  # conftest.py's shared client, made by the client_for fixture


@pytest.fixture(scope="module")
def server() -> Iterator[SiteServer]:
    with SiteServer(CONFIG) as srv:
        yield srv


@pytest.fixture
def client(server: SiteServer, client_for: Callable[[str], Client]) -> Client:
    return client_for(server.url)


@pytest.fixture
def logged_in(client: Client) -> Client:
    assert client.login()[0] == 302
    return client


def _is_html(headers: Message) -> bool:
    return headers["Content-Type"] == "text/html; charset=utf-8"


# --- data -------------------------------------------------------------------------------


def test_exported_names_match_dunder_all() -> None:
    public = {
        name
        for name, value in vars(site).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(site.__all__)


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    assert list(ground_truth(3, 4, 20)) == list(ground_truth(3, 4, 20))
    first = page_rows(3, 2, 20)
    other = page_rows(4, 2, 20)
    assert {r["match_id"] for r in first}.isdisjoint({r["match_id"] for r in other})
    assert [r["name"] for r in first] != [r["name"] for r in other]


def test_data_is_fixed_across_runs() -> None:
    # Pins the generator: if this changes, every stored ground truth changes too.
    record = match_record(1, 1, 0)
    assert record["match_id"] == "M9130B15550C7"
    assert record["name"] == "Seán St. John"


def test_match_ids_unique_at_reference_size() -> None:
    ids = [r["match_id"] for r in ground_truth(1, 724, 50)]
    assert len(ids) == 724 * 50
    assert len(set(ids)) == len(ids)


def test_records_have_exactly_the_specified_shape() -> None:
    first, last = dt.date(2023, 1, 1), dt.date(2026, 11, 1)
    for record in ground_truth(11, 20, 50):
        assert set(record) == set(FIELDS)
        for key, kind in FIELDS.items():
            assert type(record[key]) is kind, (key, record[key])
        cm = record["shared_cm"]
        assert isinstance(cm, float) and cm > 0 and round(cm, 1) == cm
        assert isinstance(record["segments"], int) and record["segments"] >= 1
        assert isinstance(record["tree_size"], int) and 0 <= record["tree_size"] <= 20000
        assert record["relationship"] in RELATIONSHIPS
        assert first <= dt.date.fromisoformat(str(record["last_active"])) <= last
        assert len(str(record["last_active"])) == 10
        assert str(record["match_id"]).startswith("M")
        name = str(record["name"])
        assert name == name.strip() and "  " not in name


def test_data_is_varied_enough_to_test_escaping() -> None:
    records = list(ground_truth(1, 40, 50))
    names = {str(r["name"]) for r in records}
    assert any("'" in n for n in names)
    assert any(not n.isascii() for n in names)
    assert any("<" in n or "&" in n for n in names)
    assert any(r["tree_size"] == 0 for r in records)
    assert len({r["relationship"] for r in records}) == len(RELATIONSHIPS)


def test_ground_truth_is_pages_in_order() -> None:
    expected = [r for page in range(1, 4) for r in page_rows(5, page, 7)]
    assert list(ground_truth(5, 3, 7)) == expected
    assert [r["page"] for r in page_rows(5, 2, 7)] == [2] * 7


def test_page_rows_returns_copies() -> None:
    rows = page_rows(9, 1, 3)
    rows[0]["name"] = "changed"
    assert page_rows(9, 1, 3)[0]["name"] != "changed"


def test_find_match() -> None:
    record = match_record(2, 3, 4)
    assert find_match(2, 5, 10, str(record["match_id"])) == record
    assert find_match(2, 2, 10, str(record["match_id"])) is None  # page 3 is outside the site
    assert find_match(2, 5, 10, "MNOSUCHMATCH") is None


# --- HTTP contract --------------------------------------------------------------------


def test_root_redirects_to_first_page(client: Client) -> None:
    status, headers, _ = client.request("/")
    assert status == 302
    assert headers["Location"] == "/matches?page=1"


def test_matches_requires_login(client: Client) -> None:
    status, headers, _ = client.request("/matches?page=3")
    assert status == 302
    assert headers["Location"] == "/login?next=%2Fmatches%3Fpage%3D3"


def test_api_requires_login(client: Client) -> None:
    status, _, body = client.request("/api/matches?page=1")
    assert status == 401
    assert json.loads(body) == {"error": "not logged in"}


def test_login_form_contract(client: Client) -> None:
    status, headers, body = client.request("/login?next=%2Fmatches%3Fpage%3D2")
    assert status == 200 and _is_html(headers)
    assert '<form id="login-form" method="post" action="/login">' in body
    assert '<input id="username" name="username"' in body
    assert '<input id="password" name="password" type="password"' in body
    assert '<input type="hidden" name="next" value="/matches?page=2">' in body
    assert '<button id="login-button" type="submit">' in body


def test_wrong_password_is_refused(client: Client) -> None:
    status, headers, body = client.request(
        "/login", {"username": CONFIG.username, "password": "wrong", "next": "/"}
    )
    assert status == 401 and _is_html(headers)
    assert '<p class="login-error">Wrong username or password</p>' in body
    assert 'id="login-form"' in body
    assert client.token_or_none() is None
    assert "wrong" not in body


def test_login_sets_cookie_and_api_returns_page_rows(client: Client) -> None:
    status, headers, _ = client.request(
        "/login",
        {"username": CONFIG.username, "password": CONFIG.password, "next": "/matches?page=2"},
    )
    assert status == 302
    assert headers["Location"] == "/matches?page=2"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "Path=/" in cookie and "SameSite=Lax" in cookie
    assert client.token_or_none()

    status, headers, body = client.request("/api/matches?page=2")
    assert status == 200
    assert json.loads(body) == {
        "page": 2,
        "pages": CONFIG.pages,
        "rows": page_rows(CONFIG.seed, 2, CONFIG.rows),
    }


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_ignores_offsite_next(client: Client, target: str) -> None:
    status, headers, _ = client.request(
        "/login", {"username": CONFIG.username, "password": CONFIG.password, "next": target}
    )
    assert status == 302
    assert headers["Location"] == "/matches?page=1"


def test_matches_page_is_rendered_by_javascript(logged_in: Client) -> None:
    status, headers, body = logged_in.request("/matches?page=3")
    assert status == 200 and _is_html(headers)
    assert f"<title>Matches — page 3 of {CONFIG.pages}</title>" in body
    assert f'<body data-page="3" data-pages="{CONFIG.pages}" data-state="loading">' in body
    assert '<table id="matches">' in body and "<tbody></tbody>" in body
    assert '<script src="/static/matches.js"></script>' in body
    assert 'href="/matches?page=2"' in body and 'href="/matches?page=4"' in body
    for record in page_rows(CONFIG.seed, 3, CONFIG.rows):
        assert str(record["match_id"]) not in body
        assert html.escape(str(record["name"])) not in body


def test_script_is_served(client: Client) -> None:
    status, headers, body = client.request("/static/matches.js")
    assert status == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "/api/matches?page=" in body and "textContent" in body
    assert ".innerHTML" not in body


@pytest.mark.parametrize("page", ["0", str(CONFIG.pages + 1), "abc", "-1", "1.5", ""])
def test_bad_page_is_404(logged_in: Client, page: str) -> None:
    status, headers, _ = logged_in.request(f"/matches?page={page}")
    assert status == 404 and _is_html(headers)
    status, _, body = logged_in.request(f"/api/matches?page={page}")
    assert status == 404
    assert "error" in json.loads(body)


def test_detail_page_escapes_every_field(logged_in: Client) -> None:
    records = ground_truth(CONFIG.seed, CONFIG.pages, CONFIG.rows)
    record = next(r for r in records if "'" in str(r["name"]))
    name = str(record["name"])
    status, headers, body = logged_in.request(f"/match/{record['match_id']}")
    assert status == 200 and _is_html(headers)
    assert '<dl id="match-detail">' in body
    assert f'<dd data-field="name">{html.escape(name)}</dd>' in body
    assert name not in body  # the raw apostrophe never reaches the page
    assert f'<dd data-field="shared_cm">{record["shared_cm"]:.1f}</dd>' in body
    for key in FIELDS:
        assert f'<dd data-field="{key}">' in body


def test_detail_page_requires_login_and_knows_its_matches(
    server: SiteServer, logged_in: Client, client_for: Callable[[str], Client]
) -> None:
    match_id = str(match_record(CONFIG.seed, 1, 0)["match_id"])
    status, headers, _ = client_for(server.url).request(f"/match/{match_id}")
    assert status == 302
    assert headers["Location"] == f"/login?next=%2Fmatch%2F{match_id}"
    status, headers, _ = logged_in.request("/match/MNOSUCHMATCH")
    assert status == 404 and _is_html(headers)


def test_logout_ends_the_session(
    server: SiteServer, logged_in: Client, client_for: Callable[[str], Client]
) -> None:
    token = logged_in.token_or_none()
    assert token is not None
    assert logged_in.request("/api/matches?page=1")[0] == 200
    status, headers, _ = logged_in.request("/logout")
    assert status == 302 and headers["Location"] == "/login"
    assert logged_in.token_or_none() is None
    # The server forgot the token too, so a copy of the old cookie is worthless.
    assert client_for(server.url).request("/api/matches?page=1", cookie=token)[0] == 401


def test_meta_and_health_need_no_login(client: Client) -> None:
    status, _, body = client.request("/api/meta")
    assert status == 200
    assert json.loads(body) == {"pages": CONFIG.pages, "rows": CONFIG.rows, "seed": CONFIG.seed}
    assert client.request("/healthz")[:3:2] == (200, "ok")


def test_requests_are_counted_per_prefix(server: SiteServer, logged_in: Client) -> None:
    counts = server.app[REQUEST_COUNTS]
    before = counts["/api/matches"], counts["/healthz"]
    logged_in.request("/api/matches?page=1")
    logged_in.request("/api/matches?page=2")
    logged_in.request("/healthz")
    assert (counts["/api/matches"], counts["/healthz"]) == (before[0] + 2, before[1] + 1)


# --- serving ----------------------------------------------------------------------------


def test_site_server_lifecycle(client_for: Callable[[str], Client]) -> None:
    srv = SiteServer(CONFIG)
    with pytest.raises(RuntimeError):
        _ = srv.port
    srv.start()
    srv.start()  # idempotent
    assert srv.port > 0
    assert srv.url == f"http://127.0.0.1:{srv.port}"
    assert client_for(srv.url).request("/healthz")[0] == 200
    srv.close()
    srv.close()  # safe twice
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    with pytest.raises(RuntimeError):
        srv.start()


def test_site_server_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError):
        SiteServer(CONFIG, host="0.0.0.0")


def test_serve_forever_reports_the_real_port_and_stops(
    client_for: Callable[[str], Client],
) -> None:
    urls: list[str] = []
    ready = threading.Event()
    stop = threading.Event()

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=serve_forever,
        kwargs={"config": CONFIG, "port": 0, "on_ready": on_ready, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(10)
        (url,) = urls
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert client_for(url).request("/healthz")[:3:2] == (200, "ok")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# --- the rendering script, run by node against a minimal fake DOM --------------------

_SCRIPT = Path(site.__file__).parent / "static" / "matches.js"
_HARNESS = r"""
const fs = require("fs");
const [scriptPath, status, payload] = process.argv.slice(2);
const body = new Node("body");
body.dataset = { page: "2", pages: "5", state: "loading" };
const tbody = new Node("tbody");
tbody.appendChild(new Node("tr"));  // stale content must be replaced
global.document = {
  body,
  querySelector: (sel) => (sel === "#matches tbody" ? tbody : null),
  createElement: (tag) => new Node(tag),
  createDocumentFragment: () => new Node("#fragment"),
};
let requested = null;
global.fetch = (url, opts) => {
  requested = { url, credentials: opts.credentials };
  return Promise.resolve({
    status: Number(status),
    ok: Number(status) >= 200 && Number(status) < 300,
    json: () => Promise.resolve(JSON.parse(payload)),
  });
};
eval(fs.readFileSync(scriptPath, "utf8"));
setTimeout(() => {
  const rows = tbody.children.map((tr) => ({
    tag: tr.tag, className: tr.className, matchId: tr.dataset.matchId,
    cells: tr.children.map((td) => ({
      field: td.dataset.field, text: td.text,
      link: td.children.length ? { href: td.children[0].href, text: td.children[0].text } : null,
    })),
  }));
  console.log(JSON.stringify({ requested, dataset: body.dataset, rows }));
}, 50);
"""


def _run_script(tmp_path: Path, status: int, payload: object) -> dict[str, object]:
    result: dict[str, object] = run_node(
        tmp_path, _HARNESS, str(_SCRIPT), str(status), json.dumps(payload)
    )
    return result


def test_script_renders_rows_with_text_only(tmp_path: Path) -> None:
    records = page_rows(1, 2, 50)
    result = _run_script(tmp_path, 200, {"page": 2, "pages": 5, "rows": records})
    assert result["requested"] == {"url": "/api/matches?page=2", "credentials": "same-origin"}
    assert result["dataset"] == {"page": "2", "pages": "5", "state": "ready", "rows": "50"}
    expected = [
        {
            "tag": "tr",
            "className": "match",
            "matchId": r["match_id"],
            "cells": [
                {
                    "field": "name",
                    "text": "",
                    "link": {"href": f"/match/{r['match_id']}", "text": r["name"]},
                },
                {"field": "shared_cm", "text": f"{r['shared_cm']:.1f}", "link": None},
                {"field": "segments", "text": str(r["segments"]), "link": None},
                {"field": "relationship", "text": r["relationship"], "link": None},
                {"field": "tree_size", "text": str(r["tree_size"]), "link": None},
                {"field": "last_active", "text": r["last_active"], "link": None},
            ],
        }
        for r in records
    ]
    assert result["rows"] == expected


@pytest.mark.parametrize(
    ("status", "state", "error"), [(401, "logged-out", None), (503, "error", "HTTP 503")]
)
def test_script_reports_failures(
    tmp_path: Path, status: int, state: str, error: str | None
) -> None:
    result = _run_script(tmp_path, status, {"error": "x"})
    dataset = result["dataset"]
    assert isinstance(dataset, dict)
    assert dataset["state"] == state
    assert dataset.get("error") == error
    assert "rows" not in dataset
    assert result["rows"] == [{"tag": "tr", "cells": []}]  # the table is left as it was
