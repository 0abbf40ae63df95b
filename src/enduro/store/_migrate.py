"""Moving a whole store from one backend to another (a SQLite file to
PostgreSQL and back): every table, row for row, in one transaction on the
destination, so a copy that fails leaves the destination as it was."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table, insert, select

from enduro.errors import StoreError
from enduro.store import _schema as s
from enduro.store._base import Store
from enduro.store._sql import SqlBase

__all__ = ["copy_store"]

# Parents first is not needed (the schema has no foreign keys); the meta rows
# are the destination's own. Tables whose ``id`` the database assigns get new
# ids, in the source's order.
_TABLES: tuple[Table, ...] = (
    s.pages,
    s.records,
    s.runs,
    s.processes,
    s.events,
    s.samples,
    s.job_state,
    s.http_stats,
    s.pacing,
)
_CHUNK = 2000


def copy_store(source: Store, target: str | Path) -> tuple[str, dict[str, int]]:
    """Copy every row of ``source`` into the store at ``target`` (a path or a URL),
    made new or found empty; returns where it is and the rows copied per table.

    Raises:
        StoreError: the source has a run still running (stop it first: nothing
            is opened at ``target`` then), the destination holds pages, runs or
            events already, or either is not a SQL store.
    """
    running = source.running_runs()
    if running:
        raise StoreError(
            f"store {source.location} has {len(running)} run(s) still running",
            "stop them (or let them finish) before migrating",
        )
    with Store.open(target) as destination:
        if not isinstance(source, SqlBase) or not isinstance(destination, SqlBase):
            raise StoreError("both stores must be SQL stores", "give a path or a postgresql:// URL")
        if destination.page_counts()["total"] or destination.runs() or destination.event_counts():
            raise StoreError(
                f"store {destination.location} is not empty",
                "migrate into a new file or an empty database",
            )
        copied: dict[str, int] = {}
        with source._begin() as read, destination._begin() as write:
            for table in _TABLES:
                columns = [
                    c for c in table.columns if not (c.primary_key and c.autoincrement is True)
                ]
                rows = read.execute(select(*columns).order_by(*table.primary_key.columns))
                count = 0
                while chunk := rows.fetchmany(_CHUNK):
                    write.execute(insert(table), [dict(r._mapping) for r in chunk])
                    count += len(chunk)
                copied[table.name] = count
        return destination.location, copied
