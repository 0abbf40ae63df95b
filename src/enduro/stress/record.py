"""The run record: what the tester saw of one stress run, saved as ``run.json``.

The tester fills a :class:`RunRecord` as the run goes on and writes it into
the report directory when the run ends, beside the store, the schedule and
the runner's logs. It holds everything the verdict is judged from besides the
store: the scenario, the fault schedule, every delivery of a fault (the
tester's and the site's), the part of the site's request log the
Retry-After check reads, the passes and the times. So a finished run can be
judged again from its directory alone (:func:`enduro.stress.analysis.analyse`
given the directory; ``enduro report DIR``), without the tester object or
the user's job module.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from enduro.errors import UsageError
from enduro.stress.injector import FaultSchedule, Injection
from enduro.stress.scenario import StressTestConfig
from enduro.stress.site import Fault, RequestLogEntry

__all__ = [
    "RUN_FILE",
    "SLOW_DOWN_KINDS",
    "Delivery",
    "RunRecord",
    "judged_requests",
    "read_record",
    "retry_after_window",
]

RUN_FILE = "run.json"
"""The file name of the run record inside a report directory."""

SLOW_DOWN_KINDS = ("rate_limit", "maintenance")
"""The site's answers that carry a Retry-After (429, 503)."""

_FORMAT = 1  # version of run.json


@dataclass
class Delivery:
    """One injection as it happened (or did not)."""

    injection: Injection
    at: float = 0.0
    delivered: bool = False
    detail: str = ""
    tries: int = 0


class RunRecord(BaseModel):
    """Everything one stress run left besides its store, to judge it from.

    Times are epoch seconds from the tester's clock (the site's faults and
    requests carry the site's, the same wall clock in one process).
    """

    model_config = ConfigDict(extra="forbid")

    format: int = _FORMAT
    run_id: str
    """The tester's id for this run."""
    config: StressTestConfig
    """The scenario, as it ran (narrowed onto a user's job or the hybrid job)."""
    schedule: dict[str, Any]
    """The fault schedule (``schedule.json``'s content)."""
    job_name: str
    record_key: str
    keys: list[str]
    """The page keys of the run, in order."""
    store: str = "stress.db"
    """The store, relative to the report directory."""
    site_served: bool = True
    """Whether the built-in site was served (its request log then judges Retry-After)."""
    grid: str = ""
    """The Selenium Grid the browsers came from (password hidden); empty: local browsers."""
    started_at: float = 0.0
    ended_at: float = 0.0
    runner_starts: int = 0
    runner_exits: list[int] = Field(default_factory=list)
    """Exit codes of the runner processes, -9 for the ones the tester SIGKILLed."""
    deliveries: list[Delivery] = Field(default_factory=list)
    """The tester's own injections (every pass's), delivered or not."""
    site_faults: list[Fault] = Field(default_factory=list)
    """Every fault the built-in site served."""
    requests: list[RequestLogEntry] = Field(default_factory=list)
    """The site's request log, as far as the verdict reads it (:func:`judged_requests`)."""
    requests_seen: int = 0
    """Requests the site answered in all."""
    stopped_early: str = ""
    """Empty, or the stop condition that ended the run early."""
    passes: int = 0
    """Passes over the pages finished before the last one (a cycling scenario)."""
    done_times: list[float] = Field(default_factory=list)
    """When each page of those passes completed (the store keeps only the last pass's)."""

    _directory: Path | None = PrivateAttr(default=None)

    @property
    def directory(self) -> Path | None:
        """The report directory the record belongs to (set by the tester or on reading)."""
        return self._directory

    def at(self, directory: str | os.PathLike[str]) -> RunRecord:
        """The record, placed in ``directory`` (where its store is looked for)."""
        self._directory = Path(directory)
        return self

    @property
    def store_path(self) -> Path:
        """The run's store.

        Raises:
            UsageError: the record has no directory.
        """
        if self._directory is None:
            raise UsageError("the run record has no report directory", "read it with read_record")
        return self._directory / self.store

    def fault_schedule(self) -> FaultSchedule:
        """The run's fault schedule."""
        return FaultSchedule.from_json(json.dumps(self.schedule))

    def write(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Write ``run.json`` into ``directory`` (the record's own by default); return its path."""
        folder = Path(directory) if directory is not None else self._directory
        if folder is None:
            raise UsageError("the run record has no report directory", "give one to write it")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / RUN_FILE
        tmp = path.with_name(f".{RUN_FILE}.tmp")
        tmp.write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def read_record(directory: str | os.PathLike[str]) -> RunRecord:
    """Load the run record of a report directory (or the ``run.json`` file itself).

    Raises:
        UsageError: the file is missing, is not JSON or is not a run record.
    """
    source = Path(directory)
    path = source / RUN_FILE if source.is_dir() else source
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"{path} not found", "give the --report-dir of a finished stress run"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    try:
        record = RunRecord.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise UsageError(
            f"{path} is not a stress run record: {where}: {first['msg']}",
            "rerun the scenario to write it again",
        ) from exc
    if record.format != _FORMAT:
        raise UsageError(f"{path}: unknown run record format {record.format}")
    try:
        record.fault_schedule()
    except ValueError as exc:
        raise UsageError(f"{path}: its fault schedule is unreadable: {exc}") from exc
    return record.at(path.parent)


def retry_after_window(retry_after: float) -> float:
    """Seconds a 429/503 holds the client off: the site sends whole seconds, rounded up."""
    return float(math.ceil(retry_after))


def judged_requests(log: Sequence[RequestLogEntry], retry_after: float) -> list[RequestLogEntry]:
    """The requests the Retry-After check reads, in the log's order: every 429/503 the
    site sent, and every request that arrived inside the window one of them opened."""
    window = retry_after_window(retry_after)
    starts = sorted(entry.at for entry in log if entry.fault_kind in SLOW_DOWN_KINDS)
    kept = []
    for entry in log:
        last = bisect.bisect_right(starts, entry.at)  # the latest window opened by then
        if last and entry.at < starts[last - 1] + window:
            kept.append(entry)
    return kept
