"""Durable state of enduro runs: pages, records, events, runs, processes."""

from enduro.store._store import (
    ClaimedPage,
    ProcessRow,
    RunRow,
    Store,
    dumps_record,
    prepare_records,
)

__all__ = ["ClaimedPage", "ProcessRow", "RunRow", "Store", "dumps_record", "prepare_records"]
