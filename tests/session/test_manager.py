"""Pure parts of the session manager."""

from __future__ import annotations

from enduro.session._manager import _login_expiry


def test_login_expiry_is_the_earliest_cookie_the_login_set() -> None:
    before = {"tracking": "x", "enduro_session": "old"}
    after = [
        {"name": "tracking", "value": "x", "expires": 100.0},  # untouched by the login
        {"name": "enduro_session", "value": "new", "expires": 2000.0},
        {"name": "csrf", "value": "t", "expires": 1500.0},
        {"name": "prefs", "value": "p"},  # a session cookie: no expiry
    ]
    assert _login_expiry(before, after) == 1500.0


def test_session_cookies_only_have_no_expiry() -> None:
    after = [{"name": "enduro_session", "value": "new"}, {"name": "x", "value": "1", "expires": -1}]
    assert _login_expiry({}, after) is None
