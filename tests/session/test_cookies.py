"""SiteCookies: the site's cookies from the browser, Set-Cookie applied, the Cookie header."""

from __future__ import annotations

from typing import Any

import pytest

from enduro.session import LatencyHistogram, SiteCookies, merge_stats
from enduro.session._http_stats import HttpStats


def _cdp(name: str, value: str, domain: str = "127.0.0.1", path: str = "/", **more: Any) -> Any:
    return {"name": name, "value": value, "domain": domain, "path": path, **more}


def test_only_the_sites_cookies_are_kept_one_per_name_domain_path() -> None:
    jar = SiteCookies("http://www.example.com")
    changed = jar.replace(
        [
            _cdp("sid", "old", "www.example.com"),
            _cdp("sid", "new", "www.example.com"),  # the same cookie twice: the last wins
            _cdp("pref", "1", ".example.com"),  # a domain cookie of the site's domain
            _cdp("track", "x", ".ads.example"),  # another site's
            _cdp("wide", "y", "example.com.evil"),
            _cdp("gone", "z", "www.example.com", expires=1.0),  # expired
        ]
    )

    assert changed
    assert jar.values() == {"sid": "new", "pref": "1"}
    assert not jar.replace(
        [_cdp("sid", "new", "www.example.com"), _cdp("pref", "1", ".example.com")]
    )


def test_the_cookie_header_matches_paths_longest_first_and_keeps_secure_off_http() -> None:
    jar = SiteCookies("http://127.0.0.1:8700")
    jar.replace(
        [
            _cdp("a", "1"),
            _cdp("b", "2", path="/api"),
            _cdp("c", "3", path="/api/v2/"),
            _cdp("s", "4", secure=True),
        ]
    )

    assert jar.header("/api/v2/matches") == "c=3; b=2; a=1"
    assert jar.header("/api") == "b=2; a=1"
    assert jar.header("/apix") == "a=1"  # /api does not path-match /apix
    assert jar.header("/") == "a=1"
    assert SiteCookies("https://127.0.0.1").header("/") == ""


def test_set_cookie_sets_replaces_and_deletes() -> None:
    now = 1_000_000.0
    jar = SiteCookies("http://127.0.0.1:8700", clock=lambda: now)
    jar.replace([_cdp("sid", "old"), _cdp("keep", "k")])
    before = jar.generation

    changes = jar.absorb(
        [
            "sid=new; Path=/; HttpOnly; SameSite=Lax; Max-Age=60",
            "keep=; Max-Age=0; Path=/",
            "other=1; Domain=elsewhere.example; Path=/",  # not ours: ignored
            "bad cookie line ;;; ===",
        ],
        "/api/v2/matches",
    )

    assert [(c.name, c.value, c.http_only, c.same_site) for c in changes.set] == [
        ("sid", "new", True, "Lax")
    ]
    assert changes.set[0].expires == now + 60
    assert [c.name for c in changes.deleted] == ["keep"]
    assert jar.values() == {"sid": "new"} and jar.generation > before
    assert not jar.absorb([], "/")


def test_set_cookie_without_a_path_takes_the_requests_directory() -> None:
    jar = SiteCookies("http://127.0.0.1:8700")
    (cookie,) = jar.absorb(["t=1"], "/api/v2/matches").set
    assert cookie.path == "/api/v2" and cookie.domain == "127.0.0.1"
    assert cookie.to_cdp("http://127.0.0.1:8700") == {
        "name": "t",
        "value": "1",
        "path": "/api/v2",
        "secure": False,
        "httpOnly": False,
        "url": "http://127.0.0.1:8700/api/v2",
    }


def test_localhost_cookies_are_the_sites_too() -> None:
    """http.cookiejar would not send these (it rewrites localhost as localhost.local)."""
    jar = SiteCookies("http://localhost:8700")
    jar.replace([_cdp("sid", "v", "localhost")])
    assert jar.header("/x") == "sid=v"


@pytest.mark.parametrize("seconds", [0.00005, 0.001, 0.0123, 0.5, 3.0, 100.0])
def test_a_histogram_percentile_is_within_ten_percent(seconds: float) -> None:
    histogram = LatencyHistogram()
    for _ in range(99):
        histogram.add(seconds)
    histogram.add(seconds * 50)
    p50 = histogram.percentile(50)
    assert p50 is not None and seconds <= p50 <= max(seconds * 1.1, 1e-4)
    p100 = histogram.percentile(100)
    assert p100 is not None and p100 >= min(seconds * 50, 600)  # the last bucket takes the rest


def test_stats_of_several_runs_add_up_with_percentiles() -> None:
    first, second = HttpStats(), HttpStats()
    for _ in range(98):
        first.record("/a", 0.010, None, retry=False)
    first.record("/a", 0.200, "server_error", retry=False)
    second.record("/a", 0.010, None, retry=True)
    second.record("/b", 1.0, "network", retry=False)

    merged = merge_stats([first.snapshot(), second.snapshot()])

    assert merged["/a"]["requests"] == 100 and merged["/a"]["ok"] == 99
    assert merged["/a"]["retries"] == 1 and merged["/a"]["errors"] == {"server_error": 1}
    assert 10.0 <= merged["/a"]["latency_ms"]["p50"] <= 11.0
    assert merged["/a"]["latency_ms"]["p99"] <= 11.0  # 1 slow request in 100 is above p99
    assert merged["/b"]["errors"] == {"network": 1}
