"""What the store tests share."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from enduro.store import ClaimedPage, Store
from enduro.store import _schema as s

JOB = "matches"
LEASE = 60.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def claim(store: Store, owner: str = "run-a") -> ClaimedPage:
    page = store.claim(JOB, owner, LEASE)
    assert page is not None
    return page


def records(store: Store, job: str | None = JOB) -> list[dict[str, object]]:
    return [json.loads(text) for text in store.iter_record_texts(job)]


def status(store: Store, key: str, job: str = JOB) -> dict[str, object]:
    row = store.page_status(job, key)
    assert row is not None
    return row


def pages(store: Store) -> list[dict[str, Any]]:
    """Every row of the job's pages, in page order (SQL backends)."""
    with store._begin() as conn:  # type: ignore[attr-defined]
        return [
            dict(r._mapping)
            for r in conn.execute(
                select(s.pages).where(s.pages.c.job == JOB).order_by(s.pages.c.seq)
            )
        ]
