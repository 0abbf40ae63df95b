"""The values the store hands out and takes in: claimed pages, runs, processes,
and records checked and encoded the way they are stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from enduro.errors import BadRecords

__all__ = [
    "ClaimedPage",
    "Clock",
    "ProcessRow",
    "RunRow",
    "claimed_pages",
    "dumps_record",
    "prepare_records",
]

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


def claimed_pages(job: str, rows: Iterable[Any]) -> list[ClaimedPage]:
    """The leases a claim's rows (key, seq, attempts, recoveries) stand for."""
    return [
        ClaimedPage(job=job, key=r.key, seq=r.seq, attempts=r.attempts, recoveries=r.recoveries)
        for r in rows
    ]


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
