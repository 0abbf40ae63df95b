"""The page queue and the records, in SQLAlchemy Core (see ``_base`` for what
each method promises and ``_sql`` for what the SQL backends share)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, func, or_, select, update

from enduro.store import _schema as s
from enduro.store._base import PageQueue, RecordStore
from enduro.store._rows import ClaimedPage, claimed_pages
from enduro.store._sql import SqlBase, add_pages, release_where

__all__ = ["SqlPages"]

MOVED_CHUNK = 500  # record keys looked up per statement (SQLite caps a statement's parameters)


class SqlPages(SqlBase, PageQueue, RecordStore):
    """:class:`PageQueue` and :class:`RecordStore` on a SQL database."""

    def seed_pages(self, job: str, keys: Sequence[str]) -> int:
        with self._begin() as conn:
            self._lock_job(conn, job)
            return add_pages(conn, self._sql, job, keys, self._clock())

    def claim_many(
        self, job: str, owner: str, lease_seconds: float, limit: int
    ) -> list[ClaimedPage]:
        return self._claim_at(job, owner, lease_seconds, limit, self._clock())

    def _claim_at(
        self, job: str, owner: str, lease_seconds: float, limit: int, now: float
    ) -> list[ClaimedPage]:
        p = s.pages.c
        ready = self._lock_ready(
            select(p.key)
            .where(p.job == job, p.status == "pending", p.available_at <= now)
            .order_by(p.seq)
            .limit(limit)
        )
        # One statement, re-checking ``pending``: under a database that lets two
        # claimers read the same rows (PostgreSQL's READ COMMITTED), the second
        # UPDATE finds them leased and takes none of them.
        claim = (
            update(s.pages)
            .where(p.job == job, p.status == "pending", p.key.in_(ready))
            .values(
                status="leased",
                lease_owner=owner,
                lease_expires=now + lease_seconds,
                updated_at=now,
            )
            .returning(p.key, p.seq, p.attempts, p.recoveries)
        )
        with self._begin() as conn:
            rows = sorted(conn.execute(claim).all(), key=lambda r: r.seq)
        return claimed_pages(job, rows)

    def _lock_ready(self, ready: Select[Any]) -> Select[Any]:
        """The claim's choice of pages, as the backend must lock and evaluate it
        (SQLite: as is; its writers are serialised by BEGIN IMMEDIATE)."""
        return ready

    def _lock_job(self, conn: Connection, job: str) -> None:
        """Serialise adding pages to ``job`` (SQLite: its writers already are)."""

    def next_retry_at(self, job: str) -> float | None:
        p = s.pages.c
        with self._begin() as conn:
            value = conn.execute(
                select(func.min(p.available_at)).where(p.job == job, p.status == "pending")
            ).scalar_one()
        return None if value is None else float(value)

    def complete_rows(
        self,
        page: ClaimedPage,
        owner: str,
        rows: list[dict[str, Any]],
        new_pages: Sequence[str] = (),
        *,
        turn_at: float | None = None,
        took: float | None = None,
    ) -> bool:
        return self._complete_at(page, owner, rows, new_pages, self._clock(), turn_at, took)

    def _complete_at(
        self,
        page: ClaimedPage,
        owner: str,
        rows: list[dict[str, Any]],
        new_pages: Sequence[str],
        now: float,
        turn_at: float | None = None,
        took: float | None = None,
    ) -> bool:
        where = {"b_job": page.job, "b_key": page.key}
        data: dict[str, Any] = {"records": len(rows)}
        if turn_at is not None:
            data["turn_at"] = round(turn_at, 6)
        if took is not None:
            data["took"] = round(took, 4)
        with self._begin() as conn:
            done = conn.execute(self._sql.mark_done, {**where, "b_owner": owner, "b_now": now})
            if done.rowcount != 1:
                conn.rollback()
                return False
            conn.execute(self._sql.delete_page_records, where)
            if rows:
                moved = self._moved_keys(conn, page, rows)
                conn.execute(self._sql.upsert_records, rows)
                if moved:  # the record is the later page's now; the move is on the record
                    conn.execute(
                        self._sql.key_moved_event,
                        [self._moved_event(page, owner, now, key, was) for key, was in moved],
                    )
            if new_pages:
                self._lock_job(conn, page.job)
                add_pages(conn, self._sql, page.job, new_pages, now)
            # the audit trail: a page done twice would show two of these
            conn.execute(
                self._sql.page_done_event,
                {
                    "ts": now,
                    "run_id": owner,
                    "job": page.job,
                    "page_key": page.key,
                    "data": json.dumps(data),
                },
            )
        return True

    def _moved_keys(
        self, conn: Connection, page: ClaimedPage, rows: list[dict[str, Any]]
    ) -> list[tuple[str, str]]:
        """(record key, page holding it) of the rows whose key another page holds."""
        keys = list(dict.fromkeys(row["record_key"] for row in rows))
        moved: list[tuple[str, str]] = []
        for start in range(0, len(keys), MOVED_CHUNK):
            chunk = keys[start : start + MOVED_CHUNK]
            found = conn.execute(
                self._sql.moved_records, {"b_job": page.job, "b_key": page.key, "b_keys": chunk}
            )
            moved.extend((str(key), str(was)) for key, was in found)
        return moved

    @staticmethod
    def _moved_event(
        page: ClaimedPage, owner: str, now: float, key: str, was: str
    ) -> dict[str, Any]:
        return {
            "ts": now,
            "run_id": owner,
            "job": page.job,
            "page_key": page.key,
            "message": f"record {key} moved from page {was} to page {page.key}",
            "data": json.dumps({"record_key": key, "from": was, "to": page.key}),
        }

    def fail_attempt(
        self,
        page: ClaimedPage,
        owner: str,
        error: str,
        retry_at: float | None,
        *,
        charge: str = "page",
    ) -> bool:
        p = s.pages.c
        counter = {"page": "attempts", "infra": "recoveries"}[charge]
        values: dict[str, Any] = {
            counter: getattr(p, counter) + 1,
            "last_error": error[:2000],
            "lease_owner": None,
            "lease_expires": None,
            "updated_at": self._clock(),
        }
        if retry_at is None:
            values["status"] = "failed"
        else:
            values["status"] = "pending"
            values["available_at"] = retry_at
        with self._begin() as conn:
            result = conn.execute(
                update(s.pages)
                .where(p.job == page.job, p.key == page.key, p.lease_owner == owner)
                .values(**values)
            )
        return bool(result.rowcount == 1)

    def release(self, page: ClaimedPage, owner: str) -> None:
        with self._begin() as conn:
            release_where(
                conn,
                and_(
                    s.pages.c.job == page.job,
                    s.pages.c.key == page.key,
                    s.pages.c.lease_owner == owner,
                ),
                self._clock(),
            )

    def requeue(self, job: str | None, *, failed: bool = False, keys: Sequence[str] = ()) -> int:
        p = s.pages.c
        cond = []
        if failed:
            cond.append(p.status == "failed")
        if keys:
            cond.append(p.key.in_(list(keys)))
        if not cond:
            return 0
        where = or_(*cond)
        if job is not None:
            where = and_(p.job == job, where)
        with self._begin() as conn:
            result = conn.execute(
                update(s.pages)
                .where(where, p.status != "leased")
                .values(
                    status="pending",
                    attempts=0,
                    recoveries=0,
                    available_at=0.0,
                    updated_at=self._clock(),
                )
            )
        return int(result.rowcount)

    def reclaim_expired_leases(self, job: str) -> int:
        now = self._clock()
        with self._begin() as conn:
            return release_where(
                conn,
                and_(
                    s.pages.c.job == job,
                    s.pages.c.status == "leased",
                    s.pages.c.lease_expires < now,
                ),
                now,
            )

    def jobs(self) -> list[str]:
        with self._begin() as conn:
            return list(
                conn.execute(select(s.pages.c.job).distinct().order_by(s.pages.c.job)).scalars()
            )

    def page_counts(self, job: str | None = None) -> dict[str, int]:
        p = s.pages.c
        query = select(p.status, func.count()).group_by(p.status)
        if job is not None:
            query = query.where(p.job == job)
        with self._begin() as conn:
            counts = {status: int(n) for status, n in conn.execute(query)}
        out = {k: counts.get(k, 0) for k in ("pending", "leased", "done", "failed")}
        out["total"] = sum(counts.values())
        return out

    def failed_pages(self, job: str | None = None) -> list[tuple[str, str, str]]:
        p = s.pages.c
        query = select(p.job, p.key, p.last_error).where(p.status == "failed")
        if job is not None:
            query = query.where(p.job == job)
        with self._begin() as conn:
            return [(j, k, e or "") for j, k, e in conn.execute(query.order_by(p.job, p.seq))]

    def page_status(self, job: str, key: str) -> dict[str, Any] | None:
        p = s.pages.c
        with self._begin() as conn:
            row = conn.execute(select(s.pages).where(p.job == job, p.key == key)).first()
        return None if row is None else dict(row._mapping)

    def done_at(self, job: str) -> dict[str, float]:
        p = s.pages.c
        query = select(p.key, p.updated_at).where(p.job == job, p.status == "done")
        with self._begin() as conn:
            return {str(key): float(at) for key, at in conn.execute(query)}

    def record_count(self, job: str | None = None) -> int:
        query = select(func.count()).select_from(s.records)
        if job is not None:
            query = query.where(s.records.c.job == job)
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

    def records_per_page(self, job: str) -> dict[str, int]:
        r = s.records.c
        query = select(r.page_key, func.count()).where(r.job == job).group_by(r.page_key)
        with self._begin() as conn:
            return {str(key): int(n) for key, n in conn.execute(query)}

    def page_records(self, job: str, page_key: str, limit: int = 50) -> list[dict[str, Any]]:
        r = s.records.c
        query = (
            select(r.data)
            .where(r.job == job, r.page_key == page_key)
            .order_by(r.position)
            .limit(limit)
        )
        with self._begin() as conn:
            return [json.loads(data) for data in conn.execute(query).scalars()]

    def iter_record_texts(self, job: str | None = None) -> Iterator[str]:
        r = s.records.c
        query = select(r.data).order_by(r.job, r.page_seq, r.position)
        if job is not None:
            query = query.where(r.job == job)
        with self._engine.connect() as conn:
            yield from conn.execute(query).scalars()
