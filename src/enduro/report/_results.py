"""What a stress scenario produced: the figures, the timeline and the verdict.

These models are what the stress analysis fills, what ``results.json`` holds
and what the report reads; nothing else is needed to rebuild a report. They
live here, in the report, so the report never imports the stress tester
(``enduro.stress`` imports ``enduro.report``, not the other way round).
Times are epoch seconds, memory is in MB, rates are fractions (0.05 is 5%).

``write_results`` / ``read_results`` save and load one scenario's
``results.json``; ``write_suite`` / ``read_suite`` do the same for a
validation suite's ``suite.json``. A missing or unreadable file is a
:class:`enduro.errors.UsageError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from enduro.errors import UsageError

__all__ = [
    "NOT_JUDGED",
    "RESULTS_FILE",
    "SUITE_FILE",
    "CriterionId",
    "CriterionResult",
    "InjectionRecord",
    "InjectionStats",
    "Integrity",
    "Leak",
    "SeriesStats",
    "StressTestResults",
    "SuiteResults",
    "Timeline",
    "UnexplainedError",
    "Verdict",
    "read_results",
    "read_suite",
    "write_results",
    "write_suite",
]

RESULTS_FILE = "results.json"
"""The file name of one scenario's results inside a report directory."""

SUITE_FILE = "suite.json"
"""The file name of a validation suite's results inside a report directory."""


class _Model(BaseModel):
    # A misspelt field is an error, not a silently dropped figure.
    model_config = ConfigDict(extra="forbid")


class InjectionRecord(_Model):
    """One fault the injector planned, and what became of it."""

    id: str
    """The injection's id, as recorded in the store's events."""
    type: str
    """Fault type, e.g. ``browser_crash``."""
    layer: str
    """Where it was injected: ``site``, ``browser``, ``driver``, ``host``, ``runner``, ..."""
    at: float
    """When it was injected (or was due, if it was never delivered)."""
    after_pages: int = 0
    """Pages done when it was injected."""
    delivered: bool = False
    """Whether the fault really happened (a process killed, a response served)."""
    detail: str = ""
    """What exactly was done, e.g. ``SIGKILL chromium pid 4242``."""
    recovered_at: float | None = None
    """When the next page completed after it; ``None`` if none did."""


class InjectionStats(_Model):
    """Planned against delivered, and recovery times, for one fault type."""

    configured_rate: float = 0.0
    """The rate the scenario asked for (faults per page)."""
    planned: int = 0
    delivered: int = 0
    delivered_rate: float = 0.0
    """Delivered faults per page attempted."""
    recovery_p50: float | None = None
    """Median seconds from injection to the next completed page."""
    recovery_p95: float | None = None
    """95th percentile, linear between the closest ranks (as the monitor's summaries)."""
    recovery_max: float | None = None
    unrecovered: int = 0
    """Delivered faults after which no page completed."""


class UnexplainedError(_Model):
    """An error that no injection accounts for."""

    ts: float
    category: str
    message: str


class SeriesStats(_Model):
    """The monitor's summary of one resource series."""

    unit: str = ""
    count: int = 0
    min: float
    mean: float
    max: float
    p95: float


class Leak(_Model):
    """Memory growth against pages done; ``None`` where too few samples were taken."""

    browser_pss_mb_per_1000_pages: float | None = None
    r2: float | None = None
    """R² of the browser fit."""
    runner_rss_mb_per_1000_pages: float | None = None
    runner_r2: float | None = None
    """R² of the runner fit (None in results written before it was kept)."""


class Timeline(_Model):
    """The time series the report charts (``t`` is epoch seconds)."""

    pages_done: list[tuple[float, float]] = Field(default_factory=list)
    """``[t, pages done so far]``."""
    browser_pss_mb: list[tuple[float, float]] = Field(default_factory=list)
    """``[t, MB]``: proportional set size of the browser's process tree."""
    system_mem_percent: list[tuple[float, float]] = Field(default_factory=list)
    """``[t, percent]`` of the machine's memory in use."""
    restarts: list[float] = Field(default_factory=list)
    """When the browser session was restarted."""
    injections: list[tuple[float, str]] = Field(default_factory=list)
    """``[t, fault type]`` of every delivered fault."""
    recoveries: list[tuple[float, str, float]] = Field(default_factory=list)
    """``[t, fault type, seconds]``: at ``t`` a page completed, ``seconds`` after the fault."""


class Integrity(_Model):
    """Records checked against the site's ground truth (or, for a user's job, for completeness)."""

    mode: Literal["truth", "completeness"] = "truth"
    """``truth``: compared record by record; ``completeness``: counts and duplicates only."""
    expected: int = 0
    found: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupted: int = 0
    examples: list[str] = Field(default_factory=list)
    """A few offending records, described in one line each."""

    @property
    def perfect(self) -> bool:
        """No record lost, duplicated or corrupted."""
        return self.lost == 0 and self.duplicated == 0 and self.corrupted == 0


class CriterionId(StrEnum):
    """The stable id of each success criterion (its display name is for people)."""

    COMPLETION = "completion"
    RECORDS_LOST = "records_lost"
    RECORDS_DUPLICATED = "records_duplicated"
    RECORDS_CORRUPTED = "records_corrupted"
    CRITICAL_FAILURES = "critical_failures"
    ERROR_RATE = "error_rate"
    BROWSER_MEMORY_GROWTH = "browser_memory_growth"
    RUNNER_MEMORY_GROWTH = "runner_memory_growth"
    RECOVERY_P95 = "recovery_p95"
    """One per fault type judged; ``CriterionResult.fault`` names it."""
    RETRY_AFTER = "retry_after"
    FAULTS_DELIVERED = "faults_delivered"
    RAN_TO_THE_END = "ran_to_the_end"


NOT_JUDGED: Literal["not judged"] = "not judged"
"""What a criterion that could not be judged shows instead of passed or failed."""


class CriterionResult(_Model):
    """One success criterion, judged (or found impossible to judge)."""

    id: str = ""
    """Its :class:`CriterionId` (empty in results written before ids existed)."""
    name: str
    """Its display name, e.g. ``records lost``, ``recovery p95: browser_crash``."""
    fault: str = ""
    """The fault type a per-fault criterion (``recovery_p95``) is about."""
    passed: bool
    """False only for a criterion judged and failed: one not judged does not fail a run."""
    judged: bool = True
    """False when there was too little to judge by (too few samples, too few attempts);
    ``detail`` says why."""
    result: Literal["passed", "failed", "not judged"] = "passed"
    """``passed``, ``failed`` or ``not judged``, as the report shows it (follows
    ``passed`` and ``judged``)."""
    measured: float | str | None = None
    limit: float | str | None = None
    detail: str = ""

    @model_validator(mode="after")
    def _follow(self) -> CriterionResult:
        self.result = "not judged" if not self.judged else "passed" if self.passed else "failed"
        return self


class Verdict(_Model):
    """GO or NO-GO, the criteria that failed and what to do about them."""

    go: bool
    failed: list[CriterionResult] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    criteria: list[CriterionResult] = Field(default_factory=list)
    """Every criterion, judged or not, passed or not (the report's criteria table)."""

    @property
    def judged(self) -> int:
        """How many of the criteria were judged."""
        return sum(1 for c in self.criteria if c.judged)


class StressTestResults(_Model):
    """Everything one stress scenario produced."""

    scenario: str
    job: str = ""
    """The user's job the scenario ran (empty: the reference job on the built-in site)."""
    not_injected: list[str] = Field(default_factory=list)
    """Fault types the scenario named that were not injected (they need the built-in
    site, or, in a hybrid run, pages loaded in the browser)."""
    hybrid: bool = False
    """Whether the run was the hybrid reference job (the browser logs in, ctx.http
    calls the site's JSON API)."""
    site_faults: dict[str, int] = Field(default_factory=dict)
    """The built-in site's faults delivered, by its kind (rate_limit, reset, csrf_rotation...)."""
    http: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """A hybrid run's requests per endpoint: counts, errors by category, latency (ms)."""
    site_served: bool = True
    """Whether the built-in site was served (its request log then judges Retry-After)."""
    runners: int = 1
    """Runner processes side by side."""
    shared_store: bool = False
    """Whether the runners shared a PostgreSQL store (copied into the report's SQLite
    store when the run ended)."""
    seed: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    duration_s: float = 0.0
    time_budget_s: float | None = None
    pages_total: int = 0
    pages_done: int = 0
    pages_failed: int = 0
    success_rate: float = 0.0
    """``pages_done / pages_total``."""
    passes: int = 1
    """Passes over the pages (more than 1 for a cycling scenario; the figures above are
    the last pass's)."""
    pages_processed: int = 0
    """Pages completed over every pass."""
    pages_per_hour: float = 0.0
    """``pages_processed`` per hour of the run."""
    attempts: int = 0
    errors: int = 0
    error_rate: float = 0.0
    """Errors per attempt."""
    session_restarts: int = 0
    relogins: int = 0
    keys_moved: int = 0
    """Records whose key another page had stored before (``key_moved`` events): kept
    once, under the later page."""
    critical_failures: int = 0
    critical: list[str] = Field(default_factory=list)
    """One short description per critical failure."""
    errors_by_category: dict[str, int] = Field(default_factory=dict)
    injections: list[InjectionRecord] = Field(default_factory=list)
    injected_per_type: dict[str, InjectionStats] = Field(default_factory=dict)
    unexplained_errors: list[UnexplainedError] = Field(default_factory=list)
    resources: dict[str, SeriesStats] = Field(default_factory=dict)
    """The monitor's summaries: series name (``browser_pss``, ``mem_percent``, ...) -> stats."""
    leak: Leak = Field(default_factory=Leak)
    timeline: Timeline = Field(default_factory=Timeline)
    integrity: Integrity = Field(default_factory=Integrity)
    stopped_early: str = ""
    """Empty, or the stop condition that ended the run early."""
    retry_after_violations: list[str] = Field(default_factory=list)
    """Requests that reached the site inside a Retry-After window it had sent."""
    sample_records: list[str] = Field(default_factory=list)
    """A few stored records (canonical JSON): the first ones and any with markup in them."""
    verdict: Verdict = Field(default_factory=lambda: Verdict(go=False))
    confidence: list[str] = Field(default_factory=list)
    """Plain statements of confidence, e.g. from :func:`enduro.report.confidence_statement`."""


class SuiteResults(_Model):
    """A validation suite: its scenarios in the order run, and the overall verdict."""

    scenarios: list[StressTestResults] = Field(default_factory=list)
    go: bool = False
    stopped_at: str | None = None
    """The scenario that failed and stopped the suite; ``None`` if all ran."""
    recommendations: list[str] = Field(default_factory=list)


_M = TypeVar("_M", bound=BaseModel)


def write_results(results: StressTestResults, directory: str | os.PathLike[str]) -> Path:
    """Write ``results.json`` into ``directory`` (created if needed) and return its path.

    The file is replaced atomically, so a reader never sees half of it.
    """
    return _write(results, Path(directory) / RESULTS_FILE)


def read_results(directory_or_file: str | os.PathLike[str]) -> StressTestResults:
    """Load a scenario's results from a directory holding ``results.json``, or the file itself.

    Raises:
        UsageError: the file is missing, is not JSON or is not a stress results file.
    """
    return _read(StressTestResults, _locate(Path(directory_or_file), RESULTS_FILE))


def write_suite(suite: SuiteResults, directory: str | os.PathLike[str]) -> Path:
    """Write ``suite.json`` into ``directory`` (created if needed) and return its path."""
    return _write(suite, Path(directory) / SUITE_FILE)


def read_suite(directory_or_file: str | os.PathLike[str]) -> SuiteResults:
    """Load a suite's results from a directory holding ``suite.json``, or the file itself.

    Raises:
        UsageError: the file is missing, is not JSON or is not a suite results file.
    """
    return _read(SuiteResults, _locate(Path(directory_or_file), SUITE_FILE))


def _locate(path: Path, name: str) -> Path:
    return path / name if path.is_dir() else path


def _write(model: BaseModel, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = model.model_dump_json(indent=2)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(model: type[_M], path: Path) -> _M:
    what = "stress results" if model is StressTestResults else "suite results"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"{path} not found", hint="give the --report-dir of a finished stress run or suite"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})",
            hint=f"rerun the scenario to rewrite the {what}",
        ) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        count = exc.error_count()
        more = f" and {count - 1} more problem(s)" if count > 1 else ""
        raise UsageError(
            f"{path} is not a {what} file: {where}: {first['msg']}{more}",
            hint=f"rerun the scenario to rewrite the {what}",
        ) from exc
