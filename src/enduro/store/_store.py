"""Durable state: pages, records, events, runs and the PID registry.

The one promise: a page's records and its ``done`` mark commit in one
transaction, and a page processed again replaces its records. Any crash at
any instant leaves a store from which the next run finishes with exactly the
right records.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a commit survives a
crash of any process; a power cut may roll back the last few commits, which
only means those pages are done again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError, OperationalError

from enduro.errors import BadRecords, StoreError
from enduro.store import _schema as s
from enduro.store._open import check_existing, create_store, engine_for

__all__ = ["ClaimedPage", "ProcessRow", "RunRow", "Store", "dumps_record", "prepare_records"]

Clock = Callable[[], float]


def dumps_record(record: dict[str, Any]) -> str:
    """The canonical JSON text of a record: how it is stored and exported."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


@dataclass(frozen=True)
class ClaimedPage:
    """A page leased to one worker."""

    job: str
    key: str
    seq: int
    attempts: int
    recoveries: int = 0


@dataclass(frozen=True)
class RunRow:
    """One run of enduro against this store."""

    run_id: str
    job: str
    host: str
    pid: int
    pid_create_time: float
    started_at: float
    heartbeat_at: float
    status: str


@dataclass(frozen=True)
class ProcessRow:
    """A browser or driver process a run started."""

    id: int
    run_id: str
    kind: str
    pid: int
    create_time: float
    pgid: int | None
    workdir: str | None


class Store:
    """The enduro store on SQLite (WAL), through SQLAlchemy Core.

    Use :meth:`open`; it refuses paths that are unusable and files that are
    not enduro stores, without writing to them.
    """

    def __init__(self, engine: Engine, path: Path, clock: Clock = time.time) -> None:
        self._engine = engine
        self.path = path
        self._clock = clock
        self._closed = False

    # ---- opening -------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, clock: Clock = time.time) -> Store:
        """Open (and if needed create) the store at ``path``.

        Raises:
            StoreError: the path is unusable, the file is not an enduro store,
                or it was made by a newer enduro; nothing is written then.
        """
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"store path {str(path)!r} is a directory", "give a file path")
        if path.exists() and path.stat().st_size > 0:
            check_existing(path)
        elif not create:
            raise StoreError(f"no store at {str(path)!r}", "check the path, or run a job first")
        else:
            create_store(path, clock)
        try:
            store = cls(engine_for(path), path, clock)
            store._upgrade()
            return store
        except (OperationalError, DatabaseError) as exc:
            raise StoreError(
                f"can't use store {str(path)!r}: {exc.orig}", "check the path"
            ) from exc

    def _upgrade(self) -> None:
        """Bring a store made by an older enduro up to this schema.

        Tables are added; version 3 adds ``pages.recoveries`` (0 for old pages).
        """
        with self._begin() as conn:
            version = conn.execute(
                select(s.meta.c.value).where(s.meta.c.key == "schema_version")
            ).scalar_one()
            if int(version) < s.SCHEMA_VERSION:
                s.metadata.create_all(conn)
                if int(version) < 3:
                    conn.exec_driver_sql(
                        "ALTER TABLE pages ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0"
                    )
                conn.execute(
                    update(s.meta)
                    .where(s.meta.c.key == "schema_version")
                    .values(value=str(s.SCHEMA_VERSION))
                )

    def close(self) -> None:
        """Release the database; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _begin(self) -> Any:
        if self._closed:
            raise RuntimeError("store is closed")
        return self._engine.begin()

    # ---- runs ----------------------------------------------------------

    def begin_run(self, run_id: str, job: str, host: str, pid: int, pid_create_time: float) -> None:
        """Record that a run has started."""
        now = self._clock()
        with self._begin() as conn:
            conn.execute(
                insert(s.runs).values(
                    run_id=run_id,
                    job=job,
                    host=host,
                    pid=pid,
                    pid_create_time=pid_create_time,
                    started_at=now,
                    heartbeat_at=now,
                    status="running",
                )
            )

    def heartbeat(self, run_id: str, lease_seconds: float) -> None:
        """Show that the run is alive and extend the leases of its pages."""
        now = self._clock()
        with self._begin() as conn:
            conn.execute(update(s.runs).where(s.runs.c.run_id == run_id).values(heartbeat_at=now))
            conn.execute(
                update(s.pages)
                .where(s.pages.c.lease_owner == run_id, s.pages.c.status == "leased")
                .values(lease_expires=now + lease_seconds)
            )

    def end_run(self, run_id: str, status: str, exit_code: int | None) -> None:
        """Record how a run ended."""
        with self._begin() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.run_id == run_id)
                .values(ended_at=self._clock(), status=status, exit_code=exit_code)
            )

    def running_runs(self) -> list[RunRow]:
        """Runs still marked ``running`` (alive, or dead without saying so)."""
        return self.runs(status="running")

    def runs(self, status: str | None = None) -> list[RunRow]:
        """Runs in the order they started, optionally only those with ``status``."""
        query = select(s.runs).order_by(s.runs.c.started_at)
        if status is not None:
            query = query.where(s.runs.c.status == status)
        with self._begin() as conn:
            return [_dataclass_row(RunRow, r) for r in conn.execute(query)]

    def mark_run_dead(self, run_id: str) -> int:
        """Mark a run dead and put the pages it had leased back to pending.

        A page in the hands of a killed runner is not charged an attempt: the
        runner's death says nothing about the page.

        Returns:
            How many leased pages went back to pending.
        """
        with self._begin() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.run_id == run_id)
                .values(status="dead", ended_at=self._clock())
            )
            return _release_where(conn, s.pages.c.lease_owner == run_id, self._clock())

    def reclaim_expired_leases(self, job: str) -> int:
        """Put back pages whose lease ran out (their owner stopped renewing)."""
        now = self._clock()
        with self._begin() as conn:
            return _release_where(
                conn,
                and_(
                    s.pages.c.job == job,
                    s.pages.c.status == "leased",
                    s.pages.c.lease_expires < now,
                ),
                now,
            )

    # ---- pages ---------------------------------------------------------

    def seed_pages(self, job: str, keys: Sequence[str]) -> int:
        """Add the job's pages that the store does not know yet.

        Returns:
            How many pages were added.
        """
        with self._begin() as conn:
            return _add_pages(conn, job, keys, self._clock())

    def claim(self, job: str, owner: str, lease_seconds: float) -> ClaimedPage | None:
        """Lease the next pending page whose retry time has come, or None."""
        pages = self.claim_many(job, owner, lease_seconds, 1)
        return pages[0] if pages else None

    def claim_many(
        self, job: str, owner: str, lease_seconds: float, limit: int
    ) -> list[ClaimedPage]:
        """Lease up to ``limit`` pending pages whose retry time has come, in page order."""
        now = self._clock()
        p = s.pages.c
        with self._begin() as conn:
            rows = conn.execute(
                select(p.key, p.seq, p.attempts, p.recoveries)
                .where(p.job == job, p.status == "pending", p.available_at <= now)
                .order_by(p.seq)
                .limit(limit)
            ).all()
            if rows:
                conn.execute(
                    update(s.pages)
                    .where(p.job == job, p.key.in_([row.key for row in rows]))
                    .values(
                        status="leased",
                        lease_owner=owner,
                        lease_expires=now + lease_seconds,
                        updated_at=now,
                    )
                )
        return [
            ClaimedPage(job=job, key=r.key, seq=r.seq, attempts=r.attempts, recoveries=r.recoveries)
            for r in rows
        ]

    def next_retry_at(self, job: str) -> float | None:
        """When the earliest waiting (pending) page may be claimed; None if none wait."""
        p = s.pages.c
        with self._begin() as conn:
            value = conn.execute(
                select(func.min(p.available_at)).where(p.job == job, p.status == "pending")
            ).scalar_one()
        return None if value is None else float(value)

    def complete(
        self, page: ClaimedPage, owner: str, records: Iterable[dict[str, Any]], record_key: str
    ) -> bool:
        """Store a page's records and mark it done, in one transaction.

        Records the page stored before are replaced. A record whose key another
        page stored moves to this page (keys are unique within the job).

        Returns:
            False if the page's lease was lost (nothing is written then).

        Raises:
            BadRecords: a record is not a dict, lacks ``record_key``, or is not
                JSON-serialisable (nothing is written then).
        """
        return self.complete_rows(page, owner, prepare_records(page, records, record_key))

    def complete_rows(
        self,
        page: ClaimedPage,
        owner: str,
        rows: list[dict[str, Any]],
        new_pages: Sequence[str] = (),
    ) -> bool:
        """:meth:`complete` with records already checked by :func:`prepare_records`.

        Args:
            new_pages: page keys the handler found (``ctx.enqueue``): added in the
                same transaction, after the job's other pages; keys the store
                already knows are left as they are.
        """
        where = {"b_job": page.job, "b_key": page.key}
        now = self._clock()
        with self._begin() as conn:
            done = conn.execute(_MARK_DONE, {**where, "b_owner": owner, "b_now": now})
            if done.rowcount != 1:
                conn.rollback()
                return False
            conn.execute(_DELETE_PAGE_RECORDS, where)
            if rows:
                conn.execute(_UPSERT_RECORDS, rows)
            if new_pages:
                _add_pages(conn, page.job, new_pages, now)
        return True

    def fail_attempt(
        self,
        page: ClaimedPage,
        owner: str,
        error: str,
        retry_at: float | None,
        *,
        charge: str = "page",
    ) -> bool:
        """Charge the page for a failure; back to pending at ``retry_at``, or failed if None.

        Args:
            charge: ``page`` counts an attempt (an error about the page),
                ``infra`` a recovery (the browser, the network, the site's limits).

        Returns:
            False if the lease was lost.
        """
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
        """Give a leased page back without charging an attempt."""
        with self._begin() as conn:
            _release_where(
                conn,
                and_(
                    s.pages.c.job == page.job,
                    s.pages.c.key == page.key,
                    s.pages.c.lease_owner == owner,
                ),
                self._clock(),
            )

    def requeue(self, job: str | None, *, failed: bool = False, keys: Sequence[str] = ()) -> int:
        """Put failed pages (``failed=True``) or the named pages back to pending.

        Attempts start again from zero. Returns how many pages moved.
        """
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

    # ---- what a job learned (the site's rate, ...) ----------------------

    def get_state(self, job: str, key: str) -> str | None:
        """A value a previous run of ``job`` saved under ``key`` (None if none)."""
        j = s.job_state.c
        with self._begin() as conn:
            value = conn.execute(
                select(j.value).where(j.job == job, j.key == key)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def set_state(self, job: str, key: str, value: str) -> None:
        """Save ``value`` under ``key`` for the next runs of ``job``."""
        row = {"job": job, "key": key, "value": value, "updated_at": self._clock()}
        with self._begin() as conn:
            conn.execute(
                sqlite_insert(s.job_state)
                .values(row)
                .on_conflict_do_update(
                    index_elements=["job", "key"],
                    set_={"value": row["value"], "updated_at": row["updated_at"]},
                )
            )

    def states(self, job: str, prefix: str = "") -> dict[str, str]:
        """Every value saved for ``job`` under a key starting with ``prefix``."""
        j = s.job_state.c
        query = select(j.key, j.value).where(j.job == job)
        if prefix:
            query = query.where(j.key.startswith(prefix, autoescape=True))
        with self._begin() as conn:
            return {str(k): str(v) for k, v in conn.execute(query)}

    # ---- HTTP request counts (ctx.http) ---------------------------------------

    def save_http_stats(self, run_id: str, job: str, snapshot: dict[str, dict[str, Any]]) -> None:
        """Save a run's per-endpoint request counts (replacing what the run saved before)."""
        if not snapshot:
            return
        now = self._clock()
        rows = [
            {"run_id": run_id, "endpoint": name, "job": job, "data": json.dumps(data)}
            for name, data in snapshot.items()
        ]
        statement = sqlite_insert(s.http_stats)
        with self._begin() as conn:
            conn.execute(
                statement.values(updated_at=now).on_conflict_do_update(
                    index_elements=["run_id", "endpoint"],
                    set_={"data": statement.excluded.data, "updated_at": now},
                ),
                rows,
            )

    def http_stats(self, job: str | None = None) -> list[dict[str, dict[str, Any]]]:
        """The saved snapshots, one per run (``{endpoint: counts}``), oldest run first."""
        h = s.http_stats.c
        query = select(h.run_id, h.endpoint, h.data).order_by(h.updated_at)
        if job is not None:
            query = query.where(h.job == job)
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        with self._begin() as conn:
            for run_id, endpoint, data in conn.execute(query):
                runs.setdefault(str(run_id), {})[str(endpoint)] = json.loads(data)
        return list(runs.values())

    # ---- events and processes -------------------------------------------

    def add_event(
        self,
        kind: str,
        message: str = "",
        *,
        run_id: str | None = None,
        job: str | None = None,
        category: str | None = None,
        page_key: str | None = None,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        """Append an event (browser start/restart, error, resume, …); ``ts``: when it
        happened, if not now."""
        with self._begin() as conn:
            conn.execute(
                insert(s.events).values(
                    ts=self._clock() if ts is None else ts,
                    run_id=run_id,
                    job=job,
                    kind=kind,
                    category=category,
                    page_key=page_key,
                    message=message[:4000],
                    data=None if data is None else json.dumps(data),
                )
            )

    def events(self, job: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Events in order, optionally of one job and kind."""
        e = s.events.c
        query = select(s.events).order_by(e.id)
        if job is not None:
            query = query.where(e.job == job)
        if kind is not None:
            query = query.where(e.kind == kind)
        with self._begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def register_process(
        self,
        run_id: str,
        kind: str,
        pid: int,
        create_time: float,
        pgid: int | None,
        workdir: str | None,
    ) -> int:
        """Record a browser or driver process a run started; returns its row id."""
        with self._begin() as conn:
            result = conn.execute(
                insert(s.processes).values(
                    run_id=run_id,
                    kind=kind,
                    pid=pid,
                    create_time=create_time,
                    pgid=pgid,
                    workdir=workdir,
                    started_at=self._clock(),
                )
            )
            return int(result.inserted_primary_key[0])

    def end_processes(self, ids: Iterable[int]) -> None:
        """Mark processes as ended (killed or quit)."""
        ids = list(ids)
        if not ids:
            return
        with self._begin() as conn:
            conn.execute(
                update(s.processes)
                .where(s.processes.c.id.in_(ids), s.processes.c.ended_at.is_(None))
                .values(ended_at=self._clock())
            )

    def open_processes(self, run_id: str | None = None) -> list[ProcessRow]:
        """Processes not yet marked ended, of one run or of all runs."""
        c = s.processes.c
        query = select(s.processes).where(c.ended_at.is_(None)).order_by(c.id)
        if run_id is not None:
            query = query.where(c.run_id == run_id)
        with self._begin() as conn:
            return [_dataclass_row(ProcessRow, r) for r in conn.execute(query)]

    def all_processes(self) -> list[ProcessRow]:
        """Every process ever registered (for tests and audits)."""
        query = select(s.processes).order_by(s.processes.c.id)
        with self._begin() as conn:
            return [_dataclass_row(ProcessRow, r) for r in conn.execute(query)]

    # ---- resource samples ------------------------------------------------

    def add_sample(self, run_id: str, ts: float, pages: int, data: dict[str, Any]) -> None:
        """Store one resource sample of a run."""
        with self._begin() as conn:
            conn.execute(
                insert(s.samples).values(run_id=run_id, ts=ts, pages=pages, data=json.dumps(data))
            )

    def samples(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Resource samples in time order (of one run, or of all)."""
        query = select(s.samples.c.run_id, s.samples.c.data).order_by(s.samples.c.id)
        if run_id is not None:
            query = query.where(s.samples.c.run_id == run_id)
        with self._begin() as conn:
            return [{"run_id": r, **json.loads(d)} for r, d in conn.execute(query)]

    def latest_sample(self) -> dict[str, Any] | None:
        """The most recent resource sample in the store."""
        query = select(s.samples.c.run_id, s.samples.c.data).order_by(s.samples.c.id.desc())
        with self._begin() as conn:
            row = conn.execute(query.limit(1)).first()
        return None if row is None else {"run_id": row[0], **json.loads(row[1])}

    def open_alerts(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Alerts whose latest change is ``open``, of one run or of the runs still running."""
        run_ids = {run_id} if run_id is not None else {r.run_id for r in self.running_runs()}
        state: dict[str, dict[str, Any]] = {}
        for alert in self.events(kind="alert"):
            if alert["run_id"] in run_ids:
                state[f"{alert['run_id']}/{alert['category']}"] = alert
        return [
            {
                "run_id": e["run_id"],
                "metric": e["category"],
                "message": e["message"],
                "ts": e["ts"],
                **json.loads(e["data"]),
            }
            for e in state.values()
            if json.loads(e["data"]).get("state") == "open"
        ]

    # ---- reading -------------------------------------------------------

    def jobs(self) -> list[str]:
        """The jobs this store holds pages of."""
        with self._begin() as conn:
            return list(
                conn.execute(select(s.pages.c.job).distinct().order_by(s.pages.c.job)).scalars()
            )

    def page_counts(self, job: str | None = None) -> dict[str, int]:
        """Pages by status, plus ``total``."""
        p = s.pages.c
        query = select(p.status, func.count()).group_by(p.status)
        if job is not None:
            query = query.where(p.job == job)
        with self._begin() as conn:
            counts = {status: int(n) for status, n in conn.execute(query)}
        out = {k: counts.get(k, 0) for k in ("pending", "leased", "done", "failed")}
        out["total"] = sum(counts.values())
        return out

    def record_count(self, job: str | None = None) -> int:
        """How many records are stored."""
        query = select(func.count()).select_from(s.records)
        if job is not None:
            query = query.where(s.records.c.job == job)
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

    def event_counts(self, job: str | None = None) -> dict[str, int]:
        """Events by kind."""
        e = s.events.c
        query = select(e.kind, func.count()).group_by(e.kind)
        if job is not None:
            query = query.where(e.job == job)
        with self._begin() as conn:
            return {kind: int(n) for kind, n in conn.execute(query)}

    def error_counts(self, job: str | None = None) -> dict[str, int]:
        """Error events by category."""
        e = s.events.c
        query = select(e.category, func.count()).where(e.kind == "error").group_by(e.category)
        if job is not None:
            query = query.where(e.job == job)
        with self._begin() as conn:
            return {str(cat): int(n) for cat, n in conn.execute(query)}

    def failed_pages(self, job: str | None = None) -> list[tuple[str, str, str]]:
        """(job, key, last_error) of failed pages, in page order."""
        p = s.pages.c
        query = select(p.job, p.key, p.last_error).where(p.status == "failed")
        if job is not None:
            query = query.where(p.job == job)
        with self._begin() as conn:
            return [(j, k, e or "") for j, k, e in conn.execute(query.order_by(p.job, p.seq))]

    def page_status(self, job: str, key: str) -> dict[str, Any] | None:
        """The row of one page, as a dict."""
        p = s.pages.c
        with self._begin() as conn:
            row = conn.execute(select(s.pages).where(p.job == job, p.key == key)).first()
        return None if row is None else dict(row._mapping)

    def done_at(self, job: str) -> dict[str, float]:
        """When each done page of ``job`` was completed, by page key."""
        p = s.pages.c
        query = select(p.key, p.updated_at).where(p.job == job, p.status == "done")
        with self._begin() as conn:
            return {str(key): float(at) for key, at in conn.execute(query)}

    def records_per_page(self, job: str) -> dict[str, int]:
        """How many records each page of ``job`` holds (pages with none left out)."""
        r = s.records.c
        query = select(r.page_key, func.count()).where(r.job == job).group_by(r.page_key)
        with self._begin() as conn:
            return {str(key): int(n) for key, n in conn.execute(query)}

    def iter_record_texts(self, job: str | None = None) -> Iterator[str]:
        """Records as canonical JSON text, in page order then position."""
        r = s.records.c
        query = select(r.data).order_by(r.job, r.page_seq, r.position)
        if job is not None:
            query = query.where(r.job == job)
        with self._engine.connect() as conn:
            yield from conn.execute(query).scalars()


# ---- statements of the hot path, built once --------------------------------

_MARK_DONE = (
    update(s.pages)
    .where(
        s.pages.c.job == bindparam("b_job"),
        s.pages.c.key == bindparam("b_key"),
        s.pages.c.status == "leased",
        s.pages.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        status="done",
        attempts=s.pages.c.attempts + 1,
        last_error=None,
        lease_owner=None,
        lease_expires=None,
        updated_at=bindparam("b_now"),
    )
)
_DELETE_PAGE_RECORDS = delete(s.records).where(
    s.records.c.job == bindparam("b_job"), s.records.c.page_key == bindparam("b_key")
)
_upsert = sqlite_insert(s.records)
_UPSERT_RECORDS = _upsert.on_conflict_do_update(
    index_elements=[s.records.c.job, s.records.c.record_key],
    set_={c: _upsert.excluded[c] for c in ("page_key", "page_seq", "position", "data")},
)

# ---- helpers -----------------------------------------------------------


_Row = TypeVar("_Row")


def _dataclass_row(cls: type[_Row], row: Any) -> _Row:
    """Build a row dataclass from the columns it names (the table may have more)."""
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{name: row._mapping[name] for name in fields})


def _release_where(conn: Connection, where: Any, now: float) -> int:
    result = conn.execute(
        update(s.pages)
        .where(where, s.pages.c.status == "leased")
        .values(status="pending", lease_owner=None, lease_expires=None, updated_at=now)
    )
    return int(result.rowcount)


def _add_pages(conn: Connection, job: str, keys: Sequence[str], now: float) -> int:
    """Insert the pages of ``keys`` the job does not have yet, after its last page.

    Runs inside the caller's transaction; with SQLite's BEGIN IMMEDIATE no other
    writer can add pages between reading the last ``seq`` and inserting.
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
    conn.execute(
        insert(s.pages),
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
    return len(new)


def prepare_records(
    page: ClaimedPage, records: Iterable[dict[str, Any]], record_key: str
) -> list[dict[str, Any]]:
    """Check a handler's records and turn them into rows for :meth:`Store.complete_rows`.

    Raises:
        BadRecords: not a list of dicts, a record without ``record_key``, or a
            record that is not JSON-serialisable.
    """
    if not isinstance(records, list | tuple):
        raise BadRecords(f"handler returned {type(records).__name__}, not a list of records")
    rows = []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRecords(f"record {position} is a {type(record).__name__}, not a dict")
        key = record.get(record_key)
        if key is None or isinstance(key, dict | list):
            raise BadRecords(f"record {position} has no usable {record_key!r} field")
        try:
            data = dumps_record(record)
        except (TypeError, ValueError) as exc:
            raise BadRecords(f"record {position} is not JSON-serialisable: {exc}") from exc
        rows.append(
            {
                "job": page.job,
                "record_key": str(key),
                "page_key": page.key,
                "page_seq": page.seq,
                "position": position,
                "data": data,
            }
        )
    return rows
