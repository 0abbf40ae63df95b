"""Durable state of enduro runs: pages, records, events, runs, processes."""

from enduro.store._store import ClaimedPage, ProcessRow, RunRow, Store, dumps_record

__all__ = ["ClaimedPage", "ProcessRow", "RunRow", "Store", "dumps_record"]
