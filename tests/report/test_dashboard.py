"""The dashboard without a browser: what LiveView follows in a store, /metrics
against `status --json`'s report, the token, the bind rule, flight files and
read-only serving. The browser-side proof is tests/integration/test_dashboard.py."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from enduro.errors import UsageError
from enduro.report import DashboardServer, LiveView, check_bind, status_report
from enduro.runner import LIVE_STATE_PREFIX
from enduro.store import Store, prepare_records

JOB = "matches"
T0 = 1_800_000_000.0
XSS = '<script>alert("hi")</script>'


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _seed(store: Store, clock: Clock) -> None:
    """Two runs of two hosts: pages done, errors, a restart, a re-login, a cool-down,
    an alert, a fault, samples, and a live state."""
    store.seed_pages(JOB, [str(n) for n in range(1, 7)])
    store.begin_run("run-a", JOB, "host-a", 1, 1.0)
    store.begin_run("run-b", JOB, "host-b", 2, 1.0)
    for n, owner in enumerate(["run-a", "run-b", "run-a"]):
        clock.now = T0 + 10 * n
        page = store.claim(JOB, owner, 60.0)
        assert page is not None
        rows = [
            {"match_id": f"m{page.key}-{i}", "name": XSS if i == 1 else f"n{i}"} for i in range(3)
        ]
        prepared = prepare_records(page, rows, "match_id")
        assert store.complete_rows(page, owner, prepared, took=0.3 * (n + 1))
    clock.now = T0 + 35
    store.add_event(
        "error",
        f"HTTP 503 {XSS}\nsecond line",
        run_id="run-a",
        job=JOB,
        category="server_error",
        page_key="4",
        data={"flight": {"screenshot": "/x/0001-server_error.png", "html": "/x/0001.html"}},
    )
    store.add_event("error", "reset", run_id="run-b", job=JOB, category="network", page_key="5")
    store.add_event("error", "reset", run_id="run-b", job=JOB, category="network", page_key="5")
    store.add_event("browser_restart", "w0 restarted", run_id="run-a", job=JOB)
    store.add_event("relogin", "logged in (auth lost)", run_id="run-b", job=JOB)
    store.add_event(
        "cooldown", "no requests for 30s", run_id="run-a", job=JOB, data={"seconds": 30.0}
    )
    store.add_event(
        "alert",
        "PSS high",
        run_id="run-a",
        job=JOB,
        category="browser_pss_mb",
        data={"state": "open"},
    )
    store.add_event("injection", "i0001 browser_kill: SIGKILL", job=JOB, data={"id": "i0001"})
    store.add_sample(
        "run-a",
        T0 + 5,
        1,
        {"browser_pss": 300 * 2**20, "browser_count": 8, "runner_rss": 80 * 2**20},
    )
    store.add_sample(
        "run-b", T0 + 6, 1, {"browser_pss": 0, "browser_count": 0, "runner_rss": 70 * 2**20}
    )
    live = {
        "run_id": "run-a",
        "host": "host-a",
        "ts": T0 + 35,
        "workers": [{"worker": "w0", "page": "6", "browser_running": True, "browser_age": 12.5}],
        "limiter": {"rate": 2.5, "cooldown": 0.0},
        "endpoints": {},
    }
    store.set_state(JOB, LIVE_STATE_PREFIX + "run-a", json.dumps(live))


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Path, Clock]]:
    clock = Clock()
    path = tmp_path / "store.db"
    with Store.open(path, clock=clock) as store:
        _seed(store, clock)
    yield path, clock


def test_the_live_view_adds_up_the_store(seeded: tuple[Path, Clock]) -> None:
    path, clock = seeded
    clock.now = T0 + 40
    view = LiveView.of(path, clock=clock)
    live = view.snapshot()

    assert live["job"] == JOB and live["waiting"] == ""
    assert live["pages"]["done"] == 3 and live["pages"]["total"] == 6
    assert live["records"] == 9
    assert live["progress"]["done"][-1] == 3
    assert {k: sum(v) for k, v in live["errors"]["by_category"].items()} == {
        "network": 2,
        "server_error": 1,
    }
    newest = live["last_errors"][0]
    assert (newest["category"], newest["page"], newest["host"]) == ("network", "5", "host-b")
    oldest = live["last_errors"][-1]
    assert oldest["message"] == f"HTTP 503 {XSS}"  # the first line, as it was: shown as text
    assert oldest["flight"] == {"screenshot": "0001-server_error.png", "html": "0001.html"}
    kinds = [m["kind"] for m in live["markers"]]
    assert {"restart", "re-login", "cool-down", "fault"} <= set(kinds)
    assert live["faults"] == 1
    assert live["windows"] == [{"endpoint": "pages", "ends_in": pytest.approx(25.0)}]
    assert [a["metric"] for a in live["alerts"]] == ["browser_pss_mb"]
    assert live["workers"][0]["page"] == "6" and live["workers"][0]["host"] == "host-a"
    memory = live["memory"]["hosts"]
    assert memory["host-a"]["browser_pss_mb"] == [300.0, None]
    assert memory["host-b"]["browser_pss_mb"] == [None, None]  # no browser seen: not measured
    assert live["records_page"] == "3" and any(r["name"] == XSS for r in live["latest_records"])


def test_the_live_view_reads_only_what_is_new(seeded: tuple[Path, Clock]) -> None:
    path, clock = seeded
    view = LiveView.of(path, clock=clock, min_interval=0.0)
    assert view.snapshot()["pages"]["done"] == 3
    with Store.open(path, clock=clock) as store:
        page = store.claim(JOB, "run-a", 60.0)
        assert page is not None and store.complete(page, "run-a", [{"match_id": "z"}], "match_id")
        store.add_event("error", "again", run_id="run-a", job=JOB, category="network")

    live = view.snapshot()

    assert live["pages"]["done"] == 4 and live["records"] == 10
    assert sum(live["errors"]["by_category"]["network"]) == 3  # each event counted once


def test_the_live_view_waits_for_a_store_that_is_not_there_yet(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    view = LiveView.of(path, min_interval=0.0)

    assert "no store" in view.snapshot()["waiting"]
    with Store.open(path) as store:
        store.seed_pages(JOB, ["1"])
        store.begin_run("r", JOB, "h", 1, 1.0)
    assert view.snapshot()["pages"]["pending"] == 1
    assert not path.with_name("later.db-journal").exists()


@pytest.fixture
def served(seeded: tuple[Path, Clock]) -> Iterator[tuple[DashboardServer, Path]]:
    path, _ = seeded
    with DashboardServer(LiveView.of(path), port=0) as server:
        yield server, path


def test_metrics_parse_and_match_the_status_report(served: tuple[DashboardServer, Path]) -> None:
    server, path = served
    body = httpx.get(server.url + "metrics").text
    families = {f.name: f for f in text_string_to_metric_families(body)}
    with Store.open(path, create=False) as store:
        status = status_report(store)["jobs"][JOB]

    def total(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if s.name == name + "_total" or s.name == name
            if all(s.labels.get(k) == v for k, v in labels.items())
        )

    for category, n in status["errors"].items():
        assert total("enduro_errors", category=category) == n
    assert total("enduro_browser_restarts") == status["restarts"]
    for state, n in status["pages"].items():
        assert total("enduro_pages", status=state) == n
    assert total("enduro_records") == status["records"]
    assert total("enduro_relogins", runner="host-b") == 1
    runners = {s.labels["runner"] for s in families["enduro_pages_done"].samples}
    assert runners == {"host-a", "host-b"}  # the fault the tester wrote is no runner's
    assert total("enduro_browser_pss_bytes", runner="host-a") == 300 * 2**20
    histogram = [s for s in families["enduro_page_seconds"].samples if s.name.endswith("_count")]
    assert sum(s.value for s in histogram) == 3
    assert total("enduro_rate_limit_pages_per_second", runner="host-a") == 2.5


def test_api_status_is_the_status_report(served: tuple[DashboardServer, Path]) -> None:
    server, path = served
    with Store.open(path, create=False) as store:
        expected = json.loads(json.dumps(status_report(store), default=str))
    assert httpx.get(server.url + "api/status").json() == expected


def test_every_route_reads_and_none_writes(served: tuple[DashboardServer, Path]) -> None:
    server, path = served
    before = _dump(path)
    for route in ("", "api/live", "api/status", "metrics", "static/dashboard.js"):
        assert httpx.get(server.url + route).status_code == 200, route
        for method in ("POST", "PUT", "DELETE"):
            assert httpx.request(method, server.url + route).status_code == 405, (method, route)
    assert _dump(path) == before


def _dump(path: Path) -> str:
    """Every row of the store, as SQL text (what is committed, WAL included)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return "\n".join(conn.iterdump())


def test_the_page_is_self_contained_and_strict(served: tuple[DashboardServer, Path]) -> None:
    server, _ = served
    page = httpx.get(server.url)
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert httpx.get(server.url + "static/uPlot.iife.min.js").status_code == 200
    assert "MIT" in httpx.get(server.url + "static/uPlot.LICENSE").text
    assert httpx.get(server.url + "static/../_live.py").status_code == 404


def test_flight_files_are_served_from_the_store_s_flight_dir_only(
    served: tuple[DashboardServer, Path],
) -> None:
    server, path = served
    flight = path.with_name(path.name + ".flight")
    flight.mkdir()
    (flight / "0001.html").write_text(f"<p>{XSS}</p>")
    (path.parent / "secret.html").write_text("not yours")

    shown = httpx.get(server.url + "flight/0001.html")
    assert shown.status_code == 200 and "sandbox" in shown.headers["Content-Security-Policy"]
    for probe in ("flight/..%2Fsecret.html", "flight/%2E%2E%2Fsecret.html", "flight/nope.html"):
        assert httpx.get(server.url + probe).status_code == 404, probe
    assert httpx.get(server.url + "flight/0001.txt").status_code == 404


def test_a_token_is_needed_on_every_request(seeded: tuple[Path, Clock]) -> None:
    path, _ = seeded
    with DashboardServer(LiveView.of(path), port=0, token="s3cret") as server:
        base = server.url.split("?", 1)[0]
        for route in ("", "api/live", "api/status", "metrics", "static/dashboard.js"):
            assert httpx.get(base + route).status_code == 401, route
            assert httpx.get(base + route + "?token=wrong").status_code == 401, route
        assert httpx.get(base + "metrics", headers={"Authorization": "Bearer s3cret"}).is_success
        with httpx.Client() as browser:  # the page, opened with its token, then its own requests
            assert browser.get(server.url).is_success
            assert browser.get(base + "static/dashboard.js").is_success
            assert browser.get(base + "api/live").is_success


def test_a_non_loopback_address_needs_a_token() -> None:
    with pytest.raises(UsageError, match="without a token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "t")
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
