"""Durable state of enduro runs: pages, records, events, runs, processes.

:class:`Store` is every role of a store (``_base``); :meth:`Store.open` picks
the backend from its argument — a file path or ``sqlite:///path`` is the
SQLite backend, :class:`SQLiteStore`; ``postgresql://user@host/db`` is the
PostgreSQL backend, :class:`PostgresStore`, which many runners share. See
ARCHITECTURE.md, "The store".
"""

from enduro.store._base import (
    EventLog,
    JobState,
    PageQueue,
    RecordStore,
    RunRegistry,
    SampleLog,
    Store,
    StoreOpener,
    register_backend,
)
from enduro.store._migrate import copy_store
from enduro.store._postgres import PostgresStore, display_target, open_postgres
from enduro.store._rows import ClaimedPage, ProcessRow, RunRow, dumps_record, prepare_records
from enduro.store._sqlite import SQLiteStore, flight_dir, open_sqlite

register_backend("sqlite", open_sqlite)
register_backend("postgresql", open_postgres)
register_backend("postgres", open_postgres)
del open_sqlite, open_postgres  # reached through Store.open

__all__ = [
    "ClaimedPage",
    "EventLog",
    "JobState",
    "PageQueue",
    "PostgresStore",
    "ProcessRow",
    "RecordStore",
    "RunRegistry",
    "RunRow",
    "SQLiteStore",
    "SampleLog",
    "Store",
    "StoreOpener",
    "copy_store",
    "display_target",
    "dumps_record",
    "flight_dir",
    "prepare_records",
    "register_backend",
]
