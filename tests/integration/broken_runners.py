"""Deliberately broken runners, for proving that the stress verdict catches them.

    python broken_runners.py VARIANT run JOB --store PATH

patches one thing in enduro, then runs the ``enduro`` command as usual.
Never used outside the tests.
"""

from __future__ import annotations

import atexit
import sys
from typing import Any

from enduro.cli import main
from enduro.recovery import Policy, RateLimiter, Skip
from enduro.recovery._policies import RecoveryPolicies
from enduro.session._manager import SessionManager
from enduro.store import ClaimedPage, SQLiteStore

CRASHES = ("browser_crash", "driver_dead", "page_crash")


def no_crash_recovery() -> None:
    """A browser, driver or tab crash is never recovered: no restart, the page given up."""
    original_policy = RecoveryPolicies.policy
    original_restart = SessionManager.restart

    def policy(self: RecoveryPolicies, category: str) -> Policy:
        if category in CRASHES:
            return Policy(actions=(Skip(),), budget="page")
        return original_policy(self, category)

    def restart(
        self: SessionManager, reason: str, *, planned: bool = False, category: str | None = None
    ) -> None:
        if category in CRASHES or "unresponsive" in reason:
            return
        original_restart(self, reason, planned=planned, category=category)

    RecoveryPolicies.policy = policy  # type: ignore[method-assign]
    SessionManager.restart = restart  # type: ignore[method-assign]


def split_commit() -> None:
    """The done mark commits at once; records are written behind, every 5 pages."""
    buffer: list[tuple[SQLiteStore, ClaimedPage, list[dict[str, Any]]]] = []

    def flush() -> None:
        for store, page, rows in buffer:
            where = {"b_job": page.job, "b_key": page.key}
            with store._begin() as conn:
                conn.execute(store._sql.delete_page_records, where)
                if rows:
                    conn.execute(store._sql.upsert_records, rows)
        buffer.clear()

    def complete_rows(
        self: SQLiteStore,
        page: ClaimedPage,
        owner: str,
        rows: list[Any],
        new_pages: Any = (),
        **_: Any,  # what the page_done event notes (turn_at, took)
    ) -> bool:
        where = {"b_job": page.job, "b_key": page.key}
        with self._begin() as conn:
            done = conn.execute(
                self._sql.mark_done, {**where, "b_owner": owner, "b_now": self._clock()}
            )
        buffer.append((self, page, rows))
        if len(buffer) >= 5:
            flush()
        return bool(done.rowcount == 1)

    SQLiteStore.complete_rows = complete_rows  # type: ignore[method-assign]
    atexit.register(flush)  # a clean exit flushes; a SIGKILL does not


def ignore_retry_after() -> None:
    """The rate limiter neither holds nor slows down."""
    RateLimiter.hold = lambda self, seconds: None  # type: ignore[method-assign]
    RateLimiter.throttled = lambda self, retry_after=None: None  # type: ignore[method-assign]


def no_relogin() -> None:
    """A lost login is never noticed as such: no re-login."""
    SessionManager.forget_login = lambda self: None  # type: ignore[method-assign]


def intact() -> None:
    """Nothing patched: the control."""


VARIANTS = {
    f.__name__: f for f in (intact, no_crash_recovery, split_commit, ignore_retry_after, no_relogin)
}

if __name__ == "__main__":
    VARIANTS[sys.argv.pop(1)]()
    main()
