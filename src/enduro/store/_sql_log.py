"""Runs, processes, events, samples and job state, in SQLAlchemy Core (see
``_base`` for what each method promises)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, literal, select, update

from enduro.errors import first_line, message_shape
from enduro.store import _schema as s
from enduro.store._base import EventLog, JobState, RunRegistry, SampleLog
from enduro.store._rows import ProcessRow, RunRow
from enduro.store._sql import SqlBase, dataclass_row, release_where

__all__ = ["SqlLog"]


class SqlLog(SqlBase, RunRegistry, EventLog, SampleLog, JobState):
    """:class:`RunRegistry`, :class:`EventLog`, :class:`SampleLog` and
    :class:`JobState` on a SQL database."""

    def begin_run(self, run_id: str, job: str, host: str, pid: int, pid_create_time: float) -> None:
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
        now = self._clock()
        with self._begin() as conn:
            conn.execute(update(s.runs).where(s.runs.c.run_id == run_id).values(heartbeat_at=now))
            conn.execute(
                update(s.pages)
                .where(s.pages.c.lease_owner == run_id, s.pages.c.status == "leased")
                .values(lease_expires=now + lease_seconds)
            )

    def end_run(self, run_id: str, status: str, exit_code: int | None) -> None:
        now = self._clock()
        with self._begin() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.run_id == run_id)
                .values(ended_at=now, status=status, exit_code=exit_code)
            )
            release_where(conn, s.pages.c.lease_owner == run_id, now)

    def runs(self, status: str | None = None) -> list[RunRow]:
        query = select(s.runs).order_by(s.runs.c.started_at)
        if status is not None:
            query = query.where(s.runs.c.status == status)
        with self._begin() as conn:
            return [dataclass_row(RunRow, r) for r in conn.execute(query)]

    def mark_run_dead(self, run_id: str, killed: int = 0) -> int | None:
        now = self._clock()
        with self._begin() as conn:
            run = conn.execute(
                select(s.runs.c.pid, s.runs.c.job).where(s.runs.c.run_id == run_id)
            ).first()
            marked = conn.execute(
                update(s.runs)
                .where(s.runs.c.run_id == run_id, s.runs.c.status == "running")
                .values(status="dead", ended_at=now)
            )
            if run is None or marked.rowcount != 1:
                return None
            released = release_where(conn, s.pages.c.lease_owner == run_id, now)
            conn.execute(
                insert(s.events).values(
                    ts=now,
                    run_id=run_id,
                    job=run.job,
                    kind="run_dead",
                    message=f"run {run_id} (pid {run.pid}) died; killed {killed} leftover "
                    f"processes, released {released} pages",
                    data=json.dumps({"killed": killed, "released": released}),
                )
            )
            return released

    def register_process(
        self,
        run_id: str,
        kind: str,
        pid: int,
        create_time: float,
        pgid: int | None,
        workdir: str | None,
    ) -> int:
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
        c = s.processes.c
        query = select(s.processes).where(c.ended_at.is_(None)).order_by(c.id)
        if run_id is not None:
            query = query.where(c.run_id == run_id)
        with self._begin() as conn:
            return [dataclass_row(ProcessRow, r) for r in conn.execute(query)]

    def all_processes(self) -> list[ProcessRow]:
        query = select(s.processes).order_by(s.processes.c.id)
        with self._begin() as conn:
            return [dataclass_row(ProcessRow, r) for r in conn.execute(query)]

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
        e = s.events.c
        query = select(s.events).order_by(e.id)
        if job is not None:
            query = query.where(e.job == job)
        if kind is not None:
            query = query.where(e.kind == kind)
        with self._begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def events_after(self, after_id: int = 0, *, limit: int = 1000) -> list[dict[str, Any]]:
        e = s.events.c
        query = select(s.events).where(e.id > after_id).order_by(e.id).limit(limit)
        with self._begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def event_counts(self, job: str | None = None) -> dict[str, int]:
        e = s.events.c
        query = select(e.kind, func.count()).group_by(e.kind)
        if job is not None:
            query = query.where(e.job == job)
        with self._begin() as conn:
            return {kind: int(n) for kind, n in conn.execute(query)}

    def error_counts(self, job: str | None = None) -> dict[str, int]:
        e = s.events.c
        query = select(e.category, func.count()).where(e.kind == "error").group_by(e.category)
        if job is not None:
            query = query.where(e.job == job)
        with self._begin() as conn:
            return {str(cat): int(n) for cat, n in conn.execute(query)}

    def top_errors(self, job: str | None = None) -> dict[str, dict[str, Any]]:
        e = s.events.c
        query = (
            select(e.category, e.message, func.count(), func.min(e.page_key))
            .where(e.kind == "error")
            .group_by(e.category, e.message)
            .order_by(func.min(e.id))  # the earliest message of a kind shows it
        )
        if job is not None:
            query = query.where(e.job == job)
        with self._begin() as conn:
            grouped = list(conn.execute(query))
        # by kind of message: its first line (a driver's goes on with a stack trace),
        # numbers aside (page 12's and page 13's "no rows" are one kind)
        kinds: dict[str, dict[str, list[Any]]] = {}
        for category, message, count, page in grouped:
            shape = message_shape(str(message))
            seen = kinds.setdefault(str(category), {}).setdefault(
                shape, [0, first_line(str(message)), page]
            )
            seen[0] += int(count)
        top: dict[str, dict[str, Any]] = {}
        for category, shapes in kinds.items():
            count, message, page = max(shapes.values(), key=lambda seen: seen[0])
            top[category] = {
                "message": message,
                "count": count,
                "page": None if page is None else str(page),
                "errors": sum(seen[0] for seen in shapes.values()),
            }
        return top

    def open_alerts(self, run_id: str | None = None) -> list[dict[str, Any]]:
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

    def add_sample(self, run_id: str, ts: float, pages: int, data: dict[str, Any]) -> None:
        with self._begin() as conn:
            conn.execute(
                insert(s.samples).values(run_id=run_id, ts=ts, pages=pages, data=json.dumps(data))
            )

    def samples(self, run_id: str | None = None) -> list[dict[str, Any]]:
        query = select(s.samples.c.run_id, s.samples.c.data).order_by(s.samples.c.id)
        if run_id is not None:
            query = query.where(s.samples.c.run_id == run_id)
        with self._begin() as conn:
            return [{"run_id": r, **json.loads(d)} for r, d in conn.execute(query)]

    def samples_after(self, after_id: int = 0, *, limit: int = 1000) -> list[dict[str, Any]]:
        c = s.samples.c
        query = (
            select(c.id, c.run_id, c.ts, c.pages, c.data)
            .where(c.id > after_id)
            .order_by(c.id)
            .limit(limit)
        )
        with self._begin() as conn:
            return [
                {**json.loads(data), "id": id_, "run_id": run_id, "ts": ts, "pages": pages}
                for id_, run_id, ts, pages, data in conn.execute(query)
            ]

    def latest_sample(self) -> dict[str, Any] | None:
        query = select(s.samples.c.run_id, s.samples.c.data).order_by(s.samples.c.id.desc())
        with self._begin() as conn:
            row = conn.execute(query.limit(1)).first()
        return None if row is None else {"run_id": row[0], **json.loads(row[1])}

    def get_state(self, job: str, key: str) -> str | None:
        j = s.job_state.c
        with self._begin() as conn:
            value = conn.execute(
                select(j.value).where(j.job == job, j.key == key)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def set_state(self, job: str, key: str, value: str) -> None:
        row = {"job": job, "key": key, "value": value, "updated_at": self._clock()}
        with self._begin() as conn:
            conn.execute(
                self._insert(s.job_state)
                .values(row)
                .on_conflict_do_update(
                    index_elements=["job", "key"],
                    set_={"value": row["value"], "updated_at": row["updated_at"]},
                )
            )

    def states(self, job: str, prefix: str = "") -> dict[str, str]:
        j = s.job_state.c
        query = select(j.key, j.value).where(j.job == job)
        if prefix:
            query = query.where(j.key.startswith(prefix, autoescape=True))
        with self._begin() as conn:
            return {str(k): str(v) for k, v in conn.execute(query)}

    def save_http_stats(self, run_id: str, job: str, snapshot: dict[str, dict[str, Any]]) -> None:
        if not snapshot:
            return
        now = self._clock()
        rows = [
            {"run_id": run_id, "endpoint": name, "job": job, "data": json.dumps(data)}
            for name, data in snapshot.items()
        ]
        statement = self._insert(s.http_stats)
        with self._begin() as conn:
            conn.execute(
                statement.values(updated_at=now).on_conflict_do_update(
                    index_elements=["run_id", "endpoint"],
                    set_={"data": statement.excluded.data, "updated_at": now},
                ),
                rows,
            )

    def http_stats(self, job: str | None = None) -> list[dict[str, dict[str, Any]]]:
        h = s.http_stats.c
        query = select(h.run_id, h.endpoint, h.data).order_by(h.updated_at)
        if job is not None:
            query = query.where(h.job == job)
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        with self._begin() as conn:
            for run_id, endpoint, data in conn.execute(query):
                runs.setdefault(str(run_id), {})[str(endpoint)] = json.loads(data)
        return list(runs.values())

    def take_turn(self, job: str, key: str, min_interval: float = 0.0) -> tuple[float, float]:
        now = self._clock()
        c = s.pacing.c
        interval = self._greatest(c.interval, literal(min_interval))
        statement = self._insert(s.pacing).values(
            job=job,
            key=key,
            next_at=now + min_interval,
            hold_until=0.0,
            interval=0.0,
            updated_at=now,
        )
        # The slot is the latest of: the one reserved before, now, the hold. The
        # row after the update holds slot + interval, so the slot is read back
        # from it (RETURNING gives the new values on every database).
        statement = statement.on_conflict_do_update(
            index_elements=["job", "key"],
            set_={
                "next_at": self._greatest(c.next_at, literal(now), c.hold_until) + interval,
                "updated_at": now,
            },
        ).returning(c.next_at - interval, interval)
        with self._begin() as conn:
            slot, spacing = conn.execute(statement).one()
        return max(0.0, float(slot) - now), float(spacing)

    def peek_pace(self, job: str, key: str) -> tuple[float, float] | None:
        with self._begin() as conn:
            row = conn.execute(self._sql.pace_row, {"b_job": job, "b_key": key}).one_or_none()
        if row is None:
            return None
        free_at = max(float(row.next_at), float(row.hold_until))
        return max(0.0, free_at - self._clock()), float(row.interval)

    def hold_left(self, job: str, key: str) -> float:
        with self._begin() as conn:
            until = conn.execute(
                self._sql.pace_hold, {"b_job": job, "b_key": key}
            ).scalar_one_or_none()
        return 0.0 if until is None else max(0.0, float(until) - self._clock())

    def set_pace(
        self,
        job: str,
        key: str,
        *,
        interval: float | None = None,
        only_slower: bool = False,
        hold_for: float | None = None,
    ) -> None:
        now = self._clock()
        c = s.pacing.c
        hold = now + hold_for if hold_for else 0.0
        set_: dict[str, Any] = {"updated_at": now}
        if interval is not None:
            set_["interval"] = (
                self._greatest(c.interval, literal(interval)) if only_slower else interval
            )
        if hold_for:
            set_["hold_until"] = self._greatest(c.hold_until, literal(hold))
        statement = self._insert(s.pacing).values(
            job=job,
            key=key,
            next_at=now,
            hold_until=hold,
            interval=interval or 0.0,
            updated_at=now,
        )
        with self._begin() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=["job", "key"], set_=set_))
