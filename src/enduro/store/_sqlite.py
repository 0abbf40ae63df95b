"""The SQLite backend: a store in one file, in WAL mode, through SQLAlchemy Core.

SQLite runs with ``synchronous=NORMAL``: a commit survives a crash of any
process; a power cut may roll back the last few commits, which only means
those pages are done again. Its writers are serialised (every transaction
begins ``IMMEDIATE``), so a claim's read and update see no other writer.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError, OperationalError

from enduro.errors import StoreError
from enduro.store import _schema as s
from enduro.store._base import Store
from enduro.store._open import check_existing, create_store, engine_for
from enduro.store._rows import Clock
from enduro.store._sql_log import SqlLog
from enduro.store._sql_pages import SqlPages

__all__ = ["SQLiteStore", "flight_dir", "open_sqlite", "sqlite_path"]

_URL_PREFIX = "sqlite:///"


class SQLiteStore(SqlPages, SqlLog, Store):
    """The enduro store on SQLite. Use :meth:`Store.open` (or :meth:`open_file`);
    it refuses paths that are unusable and files that are not enduro stores,
    without writing to them."""

    def __init__(self, engine: Engine, path: Path, clock: Clock | None = None) -> None:
        super().__init__(engine, sqlite_insert, clock)
        self.path = path
        self.location = str(path)
        self.flight_dir = flight_dir(path)
        self.disk_dir = path.parent

    @classmethod
    def open_file(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        clock: Clock | None = None,
        read_only: bool = False,
    ) -> SQLiteStore:
        """Open (and if needed create) the store in the file at ``path``;
        ``read_only``: an existing one, for reading only (see :meth:`Store.open`).

        Raises:
            StoreError: the path is unusable, the file is not an enduro store,
                or it was made by a newer enduro; nothing is written then.
        """
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"store path {str(path)!r} is a directory", "give a file path")
        if path.exists() and path.stat().st_size > 0:
            check_existing(path)
        elif not create or read_only:
            raise StoreError(f"no store at {str(path)!r}", "check the path, or run a job first")
        else:
            create_store(path, clock or time.time)
        try:
            store = cls(engine_for(path, read_only=read_only), path, clock)
            if read_only:
                store._check_current()
            else:
                store._upgrade()
            return store
        except (OperationalError, DatabaseError) as exc:
            raise StoreError(
                f"can't use store {str(path)!r}: {exc.orig}", "check the path"
            ) from exc

    def _check_current(self) -> None:
        """Refuse, for a reader, a store an older enduro made (reading it would
        need the upgrade a reader may not write)."""
        with self._begin() as conn:
            version = conn.execute(
                select(s.meta.c.value).where(s.meta.c.key == "schema_version")
            ).scalar_one()
        if int(version) < s.SCHEMA_VERSION:
            self.close()
            raise StoreError(
                f"store {self.location!r} has the older schema {version}",
                f"upgrade it first: enduro status {self.location}",
            )

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


def flight_dir(store_path: Path) -> Path:
    """Where the flight recorder writes for a store file: ``<store>.flight/`` beside it."""
    return store_path.with_name(store_path.name + ".flight")


def sqlite_path(target: str | Path) -> Path:
    """The file a path or a ``sqlite:///path`` URL names.

    Raises:
        StoreError: a ``sqlite://`` URL without a path (an in-memory database
            would lose everything when the run ends).
    """
    text = str(target)
    if not text.lower().startswith("sqlite:"):
        return Path(target)
    if not text.lower().startswith(_URL_PREFIX) or len(text) == len(_URL_PREFIX):
        raise StoreError(
            f"store URL {text!r} names no file",
            "write sqlite:///relative/path.db or sqlite:////absolute/path.db",
        )
    return Path(text[len(_URL_PREFIX) :])


def open_sqlite(
    target: str | Path, *, create: bool, clock: Clock | None, read_only: bool = False
) -> Store:
    """The ``sqlite`` backend's opener (see :func:`~enduro.store.register_backend`)."""
    return SQLiteStore.open_file(
        sqlite_path(target), create=create, clock=clock, read_only=read_only
    )
