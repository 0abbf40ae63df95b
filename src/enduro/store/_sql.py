"""What the SQL backends share: the engine, transactions, and the statements of
the hot path, built once per store with the backend's own ``INSERT … ON
CONFLICT`` (SQLite's and PostgreSQL's take the same arguments).

Everything else in ``_sql_pages`` and ``_sql_log`` is plain SQLAlchemy Core, the
same on every database enduro supports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, select, update

from enduro.store import _schema as s
from enduro.store._rows import Clock

__all__ = ["SqlBase", "Statements", "add_pages", "dataclass_row", "release_where"]

Insert = Callable[[Table], Any]
"""The backend's ``insert`` construct (with ``on_conflict_do_update`` / ``…_nothing``)."""


@dataclass(frozen=True)
class Statements:
    """The statements a page's completion (and its turn) runs, built once per store."""

    mark_done: Any
    delete_page_records: Any
    upsert_records: Any
    moved_records: Any
    insert_pages: Any
    page_done_event: Any
    key_moved_event: Any
    pace_hold: Any
    pace_row: Any

    @classmethod
    def build(cls, insert: Insert) -> Statements:
        p, r, c = s.pages.c, s.records.c, s.pacing.c
        pace_key = (c.job == bindparam("b_job"), c.key == bindparam("b_key"))
        upsert = insert(s.records)
        return cls(
            mark_done=update(s.pages)
            .where(
                p.job == bindparam("b_job"),
                p.key == bindparam("b_key"),
                p.status == "leased",
                p.lease_owner == bindparam("b_owner"),
            )
            .values(
                status="done",
                attempts=p.attempts + 1,
                last_error=None,
                lease_owner=None,
                lease_expires=None,
                updated_at=bindparam("b_now"),
            ),
            delete_page_records=delete(s.records).where(
                s.records.c.job == bindparam("b_job"), s.records.c.page_key == bindparam("b_key")
            ),
            upsert_records=upsert.on_conflict_do_update(
                index_elements=[s.records.c.job, s.records.c.record_key],
                set_={c: upsert.excluded[c] for c in ("page_key", "page_seq", "position", "data")},
            ),
            # records a page brings that another page holds: their keys moved
            moved_records=select(r.record_key, r.page_key).where(
                r.job == bindparam("b_job"),
                r.page_key != bindparam("b_key"),
                r.record_key.in_(bindparam("b_keys", expanding=True)),
            ),
            # RETURNING counts the rows added (an executemany's rowcount is -1 on
            # some drivers, psycopg's among them)
            insert_pages=insert(s.pages)
            .on_conflict_do_nothing(index_elements=[p.job, p.key])
            .returning(p.key),
            page_done_event=insert(s.events).values(kind="page_done", message="", category=None),
            key_moved_event=insert(s.events).values(kind="key_moved", category=None),
            # read before every page and request: built once, they cost half as much
            pace_hold=select(c.hold_until).where(*pace_key),
            # FOR UPDATE: a change in progress (a hold being stored) is waited for and
            # seen, as a turn's upsert would (SQLite: BEGIN IMMEDIATE does the same)
            pace_row=select(c.next_at, c.hold_until, c.interval).where(*pace_key).with_for_update(),
        )


class SqlBase:
    """The engine and clock of a SQL store, and its transactions."""

    def __init__(self, engine: Engine, insert: Insert, clock: Clock | None = None) -> None:
        self._engine = engine
        self._insert = insert
        self._clock: Clock = clock or time.time
        self._sql = Statements.build(insert)
        self._closed = False

    def now(self) -> float:
        """The store's clock (see :meth:`Store.now`)."""
        return self._clock()

    def _greatest(self, *values: Any) -> Any:
        """The largest of ``values``, in SQL (SQLite: the scalar ``max``)."""
        return func.max(*values)

    def close(self) -> None:
        """Release the database; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def _begin(self) -> Any:
        if self._closed:
            raise RuntimeError("store is closed")
        return self._engine.begin()


_Row = TypeVar("_Row")


def dataclass_row(cls: type[_Row], row: Any) -> _Row:
    """Build a row dataclass from the columns it names (the table may have more)."""
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{name: row._mapping[name] for name in fields})


def release_where(conn: Connection, where: Any, now: float) -> int:
    """Put the leased pages ``where`` says back to pending; returns how many."""
    result = conn.execute(
        update(s.pages)
        .where(where, s.pages.c.status == "leased")
        .values(status="pending", lease_owner=None, lease_expires=None, updated_at=now)
    )
    return int(result.rowcount)


def add_pages(
    conn: Connection, statements: Statements, job: str, keys: Sequence[str], now: float
) -> int:
    """Insert the pages of ``keys`` the job does not have yet, after its last page.

    Runs inside the caller's transaction. Keys already known are skipped (so the
    new pages' ``seq`` follow on without gaps), and the insert itself ignores a
    key another writer added meanwhile: two seeders never fail or add a page
    twice.
    """
    unique = list(dict.fromkeys(keys))
    p = s.pages.c
    known: set[str] = set()
    for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
        chunk = unique[start : start + 500]
        known.update(conn.execute(select(p.key).where(p.job == job, p.key.in_(chunk))).scalars())
    new = [key for key in unique if key not in known]
    if not new:
        return 0
    top = conn.execute(select(func.coalesce(func.max(p.seq), -1)).where(p.job == job)).scalar_one()
    result = conn.execute(
        statements.insert_pages,
        [
            {
                "job": job,
                "key": key,
                "seq": top + 1 + i,
                "status": "pending",
                "attempts": 0,
                "available_at": 0.0,
                "updated_at": now,
            }
            for i, key in enumerate(new)
        ],
    )
    return len(result.all())
