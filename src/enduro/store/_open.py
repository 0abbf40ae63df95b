"""Opening SQLite stores: refusing what is not an enduro store, creating one whole.

Nothing here writes to a file that is not (or not yet) an enduro store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DatabaseError, OperationalError

from enduro.errors import StoreError
from enduro.store import _schema as s

__all__ = ["check_existing", "create_store", "engine_for"]

Clock = Callable[[], float]


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE, so two runners
    # never both read a page as pending and then both lease it.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _read_mark(uri: str) -> tuple[Any, Any]:
    conn = sqlite3.connect(uri, uri=True)
    try:
        row = conn.execute("SELECT value FROM enduro_meta WHERE key = 'schema_version'").fetchone()
        app = conn.execute("SELECT value FROM enduro_meta WHERE key = 'app'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None, None  # a database, but not an enduro store
        raise
    finally:
        conn.close()
    return row, app


def check_existing(path: Path) -> None:
    """Refuse a file that is not an enduro store, reading it only."""
    if path.stat().st_size == 0:
        return
    # A read-only connection to a WAL database still creates -wal/-shm files
    # unless told the file is immutable, which is safe to assume for the one
    # table read here (written once, when the store is made). If that read
    # fails (a checkpoint under way), read again the ordinary way.
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    try:
        try:
            row, app = _read_mark(uri + "&immutable=1")
        except sqlite3.DatabaseError:
            row, app = _read_mark(uri)
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{str(path)!r} is not an enduro store ({exc})",
            "pass a new path or an existing enduro store",
        ) from exc
    except sqlite3.Error as exc:
        raise StoreError(f"can't read store {str(path)!r}: {exc}", "check permissions") from exc
    if app is None or app[0] != s.APP_MARK or row is None:
        raise StoreError(
            f"{str(path)!r} is not an enduro store", "pass a new path or an existing enduro store"
        )
    if int(row[0]) > s.SCHEMA_VERSION:
        raise StoreError(
            f"store {str(path)!r} has schema {row[0]}, newer than this enduro's {s.SCHEMA_VERSION}",
            "upgrade enduro",
        )


def _on_connect_reader(dbapi_conn: Any, _record: Any) -> None:
    # A reader: plain (deferred) transactions, which in WAL mode never hold up a
    # writer, on a connection that refuses every write.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _on_begin_reader(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def engine_for(path: Path, *, read_only: bool = False) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _on_connect_reader if read_only else _on_connect)
    event.listen(engine, "begin", _on_begin_reader if read_only else _on_begin)
    return engine


def create_store(path: Path, clock: Clock) -> None:
    """Create a store whole, then move it into place: nobody sees it half made.

    An empty file at ``path`` (``touch store.db``) is replaced; any other file
    that appeared meanwhile is left alone.
    """
    parent = path.parent
    if not parent.is_dir():
        raise StoreError(
            f"can't create store {str(path)!r}: directory {str(parent)!r} does not exist",
            "create it or pick another --store",
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=parent)
    except OSError as exc:
        raise StoreError(
            f"can't create store {str(path)!r}: {exc.strerror}", "pick a writable --store path"
        ) from exc
    os.close(fd)
    try:
        engine = engine_for(Path(tmp))
        with engine.begin() as conn:
            s.create_schema(conn, clock())
        engine.dispose()  # the last close checkpoints the WAL into the file
        if path.exists() and path.stat().st_size == 0:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if a store appeared meanwhile: keep that one
    except FileExistsError:
        pass
    except (OSError, OperationalError, DatabaseError) as exc:
        raise StoreError(
            f"can't create store {str(path)!r}: {exc}", "pick another --store"
        ) from exc
    finally:
        for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
