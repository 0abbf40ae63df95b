"""The scenario model: a :class:`StressTestConfig` and its :class:`SuccessCriteria`, checked.

Durations read as seconds or spans (:func:`parse_duration`); every fault type
named anywhere must be one of :data:`~enduro.stress.vocabulary.FAULT_TYPES`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from enduro.stress.vocabulary import BROWSER_PAGE_FAULTS, FAULT_TYPES, JOB_FAULTS

__all__ = ["RUNNER_CRASH_SPACING", "StressTestConfig", "SuccessCriteria", "parse_duration"]

RUNNER_CRASH_SPACING = 2
"""Least number of pages between two runner crashes (so each resume does some work)."""

_DURATION = re.compile(
    r"(?:(?P<d>\d+(?:\.\d*)?)\s*d)?\s*"
    r"(?:(?P<h>\d+(?:\.\d*)?)\s*h)?\s*"
    r"(?:(?P<m>\d+(?:\.\d*)?)\s*m)?\s*"
    r"(?:(?P<s>\d+(?:\.\d*)?)\s*s)?",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Read a duration: seconds (``"900"``, ``"1.5"``) or a span like ``"90s"``,
    ``"15m"``, ``"1h"``, ``"2h30m"``, ``"1d 2h"`` (units d, h, m, s, largest first).

    Returns:
        The duration in seconds, more than 0.

    Raises:
        ValueError: naming the text, if it is not a duration or is not positive.
    """
    stripped = text.strip()
    hint = "use seconds or a span like 90s, 15m, 1h, 2h30m"
    try:
        seconds = float(stripped)
    except ValueError:
        match = _DURATION.fullmatch(stripped)
        if not stripped or match is None or not any(match.groupdict().values()):
            raise ValueError(f"{text!r} is not a duration ({hint})") from None
        seconds = sum(
            float(value) * _UNIT_SECONDS[unit]
            for unit, value in match.groupdict().items()
            if value is not None
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r} is not a duration of more than 0 seconds ({hint})")
    return seconds


def _check_fault_keys(keys: Mapping[str, Any]) -> None:
    for key in keys:
        if key not in FAULT_TYPES:
            raise ValueError(f"unknown fault type {key!r} (known: {', '.join(FAULT_TYPES)})")


class SuccessCriteria(BaseModel):
    """What a scenario must achieve for a GO, and what stops it early.

    A threshold of ``None`` means "not judged". The defaults are stricter than
    the usual "80% done" bar; :data:`LENIENT` gives that classic bar.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    min_completion: float = Field(default=1.0, ge=0, le=1)
    """Share of the pages that must eventually be done."""

    max_lost: int | None = Field(default=0, ge=0)
    """Ground-truth records missing from the store (None: not judged)."""

    max_duplicated: int | None = Field(default=0, ge=0)
    """Records stored more than once (None: not judged)."""

    max_corrupted: int | None = Field(default=0, ge=0)
    """Records whose fields differ from the ground truth (None: not judged)."""

    allow_empty_pages: bool = False
    """For a user's job (completeness only): a page done without records is not counted lost."""

    max_critical_failures: int = Field(default=0, ge=0)
    """Failures the runner did not recover from (a halt, a page given up on, a lost worker)."""

    max_error_rate: float = Field(default=0.25, ge=0, le=1)
    """Errors per page attempt, judged only past ``min_sample`` attempts."""

    min_sample: int = Field(default=50, ge=0)
    """Page attempts before the error rate is judged (and may stop the run)."""

    max_leak_mb_per_1000_pages: float | None = Field(default=100.0, ge=0)
    """Memory growth (MB per 1,000 pages) the leak estimates may show, the browser's within
    each of its lifetimes and the runner's over its own (None: not judged)."""

    max_recovery_p95: dict[str, float] | None = Field(
        default_factory=lambda: dict.fromkeys(FAULT_TYPES, 60.0)
    )
    """Seconds from an injection to the next completed page (p95), per fault type; a
    table names only the types it changes, the others stay at 60 (None: not judged)."""

    stop_error_rate: float = Field(default=0.5, gt=0, le=1)
    """Stop the run once errors per attempt exceed this, past ``min_sample`` attempts."""

    stop_critical_failures: int = Field(default=3, ge=0)
    """Stop the run once critical failures exceed this many."""

    stop_memory_percent: float = Field(default=97.0, gt=0, le=100)
    """Stop the run once host memory in use exceeds this percentage."""

    @field_validator("max_recovery_p95", mode="before")
    @classmethod
    def _fill_recovery(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {**dict.fromkeys(FAULT_TYPES, 60.0), **value}
        return value

    @field_validator("max_recovery_p95")
    @classmethod
    def _check_recovery(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            _check_fault_keys(value)
            for key, seconds in value.items():
                if not seconds > 0:
                    raise ValueError(f"{key} must be more than 0 seconds, got {seconds!r}")
        return value


class StressTestConfig(BaseModel):
    """One stress scenario: the run, the faults injected into it, and how it is judged.

    Every fault type in ``faults`` is injected at least ``min_injections[type]``
    times, 1 for a type the table leaves out (0 turns that rule off for it), on
    top of its share of ``failure_rate``: a 10-page light run at 2% would
    otherwise inject nothing, and a scenario must really deliver every fault
    it names. See :meth:`injection_counts`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str = Field(min_length=1)
    """The scenario's name, shown in reports (a preset's, or the TOML file's stem)."""

    pages: int = Field(ge=1)
    """Pages of the site the scenario walks."""

    duration: float = Field(gt=0, allow_inf_nan=False)
    """Time budget in seconds ("15m", "2h30m" in files): overrunning it fails the run; no sleep."""

    failure_rate: float = Field(ge=0, le=1)
    """Injected faults per page, all fault types together."""

    faults: tuple[str, ...]
    """The fault types the scenario injects (entries of FAULT_TYPES)."""

    weights: dict[str, float] = Field(default_factory=dict)
    """Relative weight of each fault type in ``failure_rate`` (types left out weigh 1)."""

    min_injections: dict[str, int] = Field(default_factory=dict)
    """Least injections per fault type (types left out: 1)."""

    cycle: bool = False
    """Keep cycling through the pages until ``duration`` ends (endurance)."""

    pace: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    """Seconds the site adds to each page answer, for a faithful rehearsal (None: full speed)."""

    seed: int = 1
    """Seeds the fault schedule, the site's faults and its data: same seed, same run."""

    workers: int = Field(default=1, ge=1, le=32)
    """Browser sessions side by side (in each runner)."""

    runners: int = Field(default=1, ge=1, le=8)
    """Runner processes sharing the pages through one PostgreSQL store (a throwaway
    server the tester starts); ``runner_crash`` hits any of them."""

    rows: int = Field(default=50, ge=1, le=500)
    """Records on each page of the site."""

    retry_after: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    """Seconds a rate-limit or maintenance answer asks the runner to wait."""

    memory_hold: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    """Seconds a memory-pressure sidecar holds its memory."""

    database_hold: float = Field(default=3.0, gt=0, le=50, allow_inf_nan=False)
    """Seconds a ``database_restart`` keeps the PostgreSQL server down (the runners
    wait out 120 s of it per statement)."""

    expire_session_every: int = Field(default=0, ge=0)
    """Expire the site session on every N-th page request as well (0: only injected auth_loss)."""

    job: str | None = None
    """The user's own job (``path/file.py[:name]`` or ``module:name``) instead of the
    reference job on the built-in site: only JOB_FAULTS, integrity by completeness."""

    hybrid: bool = False
    """Run the hybrid reference job (the browser logs in, ``ctx.http`` calls the site's
    JSON API) instead of the browser one; the site's faults then hit the API."""

    backend: Literal["selenium", "playwright"] | None = None
    """What drives the runner's browsers (``--backend``): None is Selenium for the
    reference job, or what your job pins (``Job.backend``)."""

    dropped_faults: tuple[str, ...] = ()
    """Fault types the scenario named that this run cannot get (a user's job: they need
    the site; a hybrid run: they need pages loaded in the browser)."""

    criteria: SuccessCriteria = Field(default_factory=lambda: SuccessCriteria())
    """What the run must achieve, and when it stops early."""

    @field_validator("duration", mode="before")
    @classmethod
    def _read_duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("faults")
    @classmethod
    def _check_faults(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_fault_keys(dict.fromkeys(value))
        twice = sorted({fault for fault in value if value.count(fault) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is listed more than once")
        return value

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        _check_fault_keys(value)
        for key, weight in value.items():
            if not (weight >= 0 and math.isfinite(weight)):
                raise ValueError(f"weight of {key} must be a number >= 0, got {weight!r}")
        return value

    @field_validator("min_injections")
    @classmethod
    def _check_minimums(cls, value: dict[str, int]) -> dict[str, int]:
        _check_fault_keys(value)
        for key, least in value.items():
            if least < 0:
                raise ValueError(f"min_injections of {key} must be >= 0, got {least!r}")
        return value

    @model_validator(mode="after")
    def _check_consistent(self) -> StressTestConfig:
        if self.hybrid:
            if self.job is not None:
                raise ValueError(
                    "hybrid runs the built-in hybrid job and job names yours: pick one"
                )
            paged = [fault for fault in self.faults if fault in BROWSER_PAGE_FAULTS]
            if paged:
                raise ValueError(
                    f"{paged[0]!r} needs pages loaded in the browser; a hybrid run's browser "
                    "only logs in"
                )
        if self.job is not None:
            sited = [fault for fault in self.faults if fault not in JOB_FAULTS]
            if sited:
                raise ValueError(
                    f"{sited[0]!r} needs control of the site; a run of your own job "
                    f"takes only {', '.join(JOB_FAULTS)}"
                )
            if self.expire_session_every:
                raise ValueError("expire_session_every needs the built-in site; set it to 0")
        for table in ("weights", "min_injections"):
            stray = [key for key in getattr(self, table) if key not in self.faults]
            if stray:
                raise ValueError(f"{table} names {stray[0]!r}, which faults does not list")
        crashes = self.injection_counts().get("runner_crash", 0)
        if crashes and self.pages < RUNNER_CRASH_SPACING * crashes:
            raise ValueError(
                f"{crashes} runner crashes {RUNNER_CRASH_SPACING} pages apart need at least "
                f"{RUNNER_CRASH_SPACING * crashes} pages, got {self.pages}"
            )
        return self

    @property
    def shared_store(self) -> bool:
        """Whether the run's store is a PostgreSQL server (many runners, or a
        database restart to survive) rather than a SQLite file."""
        return self.runners > 1 or "database_restart" in self.faults

    def minimum(self, fault_type: str) -> int:
        """Least injections of ``fault_type`` (0 for a type the scenario does not name)."""
        if fault_type not in self.faults:
            return 0
        return self.min_injections.get(fault_type, 1)

    def injection_counts(self) -> dict[str, int]:
        """How many faults of each named type the scenario injects, in FAULT_TYPES order.

        ``max(minimum, round(failure_rate * pages * share))``, where a type's
        share is its weight over the weights of all named types.
        """
        weights = {fault: self.weights.get(fault, 1.0) for fault in self.faults}
        total = sum(weights.values())
        counts: dict[str, int] = {}
        for fault in FAULT_TYPES:
            if fault not in weights:
                continue
            share = weights[fault] / total if total else 0.0
            expected = self.failure_rate * self.pages * share
            counts[fault] = max(self.minimum(fault), math.floor(expected + 0.5))
        return counts
