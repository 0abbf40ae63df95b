"""Stress scenarios: what to run, which faults to inject, and how to judge it.

A scenario is a :class:`StressTestConfig`: one of the five :data:`PRESETS`,
or a TOML file that starts from a preset (``preset = "heavy"``) or from
nothing, and overrides fields::

    preset = "heavy"
    pages = 200
    duration = "30m"
    faults = ["browser_crash", "rate_limiting", "runner_crash"]
    profile = "lenient"            # the criteria to start from: "strict" (default) or "lenient"

    [min_injections]
    runner_crash = 2

    [criteria]
    max_error_rate = 0.3

    [criteria.max_recovery_p95]
    browser_crash = 30

Tables (``weights``, ``min_injections``, ``criteria`` and its
``max_recovery_p95``) are merged into the preset's; other keys replace it.
A file that leaves out ``name`` is named after its file. :func:`load_scenario`
reads either kind and applies command-line overrides last; every bad input
becomes a :class:`~enduro.errors.UsageError` with one line naming it.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from enduro.errors import UsageError

__all__ = [
    "BASIC_FAULTS",
    "BROWSER_PAGE_FAULTS",
    "FAULT_TYPES",
    "JOB_FAULTS",
    "LENIENT",
    "PRESETS",
    "PROFILES",
    "RUNNER_CRASH_SPACING",
    "StressTestConfig",
    "SuccessCriteria",
    "for_hybrid",
    "for_job",
    "load_scenario",
    "parse_duration",
]

FAULT_TYPES: tuple[str, ...] = (
    "browser_crash",
    "driver_crash",
    "tab_crash",
    "network_timeout",
    "element_not_found",
    "javascript_error",
    "rate_limiting",
    "auth_loss",
    "server_error",
    "memory_pressure",
    "runner_crash",
    "cookie_wipe",
)
"""Every fault type a scenario may name (the injector maps each onto its layer)."""

BASIC_FAULTS: tuple[str, ...] = (
    "browser_crash",
    "driver_crash",
    "tab_crash",
    "element_not_found",
    "javascript_error",
    "rate_limiting",
    "auth_loss",
    "server_error",
)
"""The fault types of the light preset, which every other preset builds on."""

JOB_FAULTS: tuple[str, ...] = (
    "browser_crash",
    "driver_crash",
    "tab_crash",
    "network_timeout",
    "memory_pressure",
    "runner_crash",
    "cookie_wipe",
)
"""The fault types that need no control of the site: a stress run of the user's
own job (``--job``) injects only these (network_timeout as offline and latency
windows in the browser)."""

BROWSER_PAGE_FAULTS: tuple[str, ...] = ("element_not_found", "javascript_error")
"""Fault types that live in pages loaded in the browser (stale or missing elements, a
broken script): a hybrid run's browser only logs in, so it cannot get them."""

_JOB_SUBSTITUTES: Mapping[str, str] = MappingProxyType({"auth_loss": "cookie_wipe"})
"""A site fault a user's job gets in another form: a logged-out session comes
from wiping the browser's cookies instead of the site expiring it."""

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


LENIENT = SuccessCriteria(
    min_completion=0.8,
    max_critical_failures=0,
    max_error_rate=0.5,
    max_lost=None,
    max_duplicated=None,
    max_corrupted=None,
    max_leak_mb_per_1000_pages=None,
    max_recovery_p95=None,
)
"""The classic bar: 80% of pages done, no critical failure, error rate under 50%;
integrity, leaks and recovery times are not judged."""

PROFILES: Mapping[str, SuccessCriteria] = MappingProxyType(
    {"strict": SuccessCriteria(), "lenient": LENIENT}
)
"""Named criteria a scenario file picks with ``profile = "..."``."""


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
    """Browser sessions side by side."""

    rows: int = Field(default=50, ge=1, le=500)
    """Records on each page of the site."""

    retry_after: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    """Seconds a rate-limit or maintenance answer asks the runner to wait."""

    memory_hold: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    """Seconds a memory-pressure sidecar holds its memory."""

    expire_session_every: int = Field(default=0, ge=0)
    """Expire the site session on every N-th page request as well (0: only injected auth_loss)."""

    job: str | None = None
    """The user's own job (``path/file.py[:name]`` or ``module:name``) instead of the
    reference job on the built-in site: only JOB_FAULTS, integrity by completeness."""

    hybrid: bool = False
    """Run the hybrid reference job (the browser logs in, ``ctx.http`` calls the site's
    JSON API) instead of the browser one; the site's faults then hit the API."""

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


def _preset(
    name: str, pages: int, duration: str, rate: float, faults: tuple[str, ...], **more: Any
) -> StressTestConfig:
    return StressTestConfig(
        name=name,
        pages=pages,
        duration=parse_duration(duration),
        failure_rate=rate,
        faults=faults,
        **more,
    )


_MEDIUM = (*BASIC_FAULTS, "memory_pressure")

PRESETS: Mapping[str, StressTestConfig] = MappingProxyType(
    {
        "light": _preset("light", 10, "15m", 0.02, BASIC_FAULTS),
        "medium": _preset("medium", 50, "1h", 0.05, _MEDIUM),
        "heavy": _preset("heavy", 100, "2h", 0.08, (*_MEDIUM, "network_timeout")),
        "production": _preset(
            "production",
            724,
            "20h",
            0.03,
            FAULT_TYPES,
            min_injections={"runner_crash": 3, "browser_crash": 5},
        ),
        "endurance": _preset("endurance", 200, "8h", 0.05, _MEDIUM, cycle=True),
    }
)
"""The five built-in scenarios, by name (issue 5's table)."""


def for_job(config: StressTestConfig, job: str, job_pages: int) -> StressTestConfig:
    """``config`` turned onto the user's job ``job``, which has ``job_pages`` pages.

    Site faults are dropped (auth_loss becomes cookie_wipe), their share of the
    failure rate going to the faults kept; the scenario walks the job's first
    ``config.pages`` pages, all of them if it has fewer.

    Raises:
        UsageError: if no fault is left, or the result is not a valid scenario.
    """
    faults: list[str] = []
    for fault in config.faults:
        fault = _JOB_SUBSTITUTES.get(fault, fault)
        if fault in JOB_FAULTS and fault not in faults:
            faults.append(fault)
    dropped = tuple(f for f in config.faults if f not in JOB_FAULTS and f not in _JOB_SUBSTITUTES)
    if not faults:
        raise UsageError(
            f"scenario {config.name!r} names only faults that need the built-in site",
            hint=f"name some of {', '.join(JOB_FAULTS)} to stress your own job",
        )
    return _narrowed(
        config,
        tuple(faults),
        dropped,
        f"scenario {config.name!r} on job {job!r}",
        name=f"{config.name} ({job})",
        job=job,
        pages=min(config.pages, job_pages),
        expire_session_every=0,
    )


def for_hybrid(config: StressTestConfig) -> StressTestConfig:
    """``config`` turned onto the hybrid reference job: the faults of pages loaded in the
    browser are dropped (listed as not injected), the site's others hit its JSON API.

    Raises:
        UsageError: if no fault is left, or the result is not a valid scenario.
    """
    faults = tuple(f for f in config.faults if f not in BROWSER_PAGE_FAULTS)
    if not faults and config.faults:
        raise UsageError(
            f"scenario {config.name!r} names only faults of pages loaded in the browser",
            hint="a hybrid run's browser only logs in; name other faults",
        )
    return _narrowed(
        config,
        faults,
        tuple(f for f in config.faults if f in BROWSER_PAGE_FAULTS),
        f"scenario {config.name!r}, hybrid",
        name=f"{config.name} (hybrid)",
        hybrid=True,
    )


def _narrowed(
    config: StressTestConfig,
    faults: tuple[str, ...],
    dropped: tuple[str, ...],
    where: str,
    **changes: Any,
) -> StressTestConfig:
    """``config`` with only ``faults`` (their weights and minimums kept), ``dropped``
    listed as not injected, and ``changes``.

    Raises:
        UsageError: the result is not a valid scenario (``where`` names it).
    """
    data = config.model_dump()
    data.update(
        faults=faults,
        dropped_faults=dropped,
        weights={k: v for k, v in config.weights.items() if k in faults},
        min_injections={k: v for k, v in config.min_injections.items() if k in faults},
        **changes,
    )
    try:
        return StressTestConfig.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{where}: {_one_line(exc)}") from None


_MERGED_TABLES = ("weights", "min_injections")
_LOADER_KEYS = ("preset", "profile")


def load_scenario(ref: str | Path, **overrides: Any) -> StressTestConfig:
    """Load a scenario: a preset's name or a ``.toml`` file, then ``overrides``.

    Args:
        ref: ``"light"``, ``"medium"``, ``"heavy"``, ``"production"``,
            ``"endurance"``, or the path of a TOML scenario file.
        overrides: fields set last, as the command line gives them (``pages``,
            ``duration`` as seconds or ``"10m"``, ``seed``, ``pace``,
            ``workers``, ``job``...); ``None`` values are ignored. A ``job``
            (here or in the file) loads that job and moves the scenario onto
            it with :func:`for_job`.

    Raises:
        UsageError: one line naming the bad input: an unknown preset, a missing
            or unreadable file, a TOML syntax error, an unknown fault type, a
            rate out of range, a missing field, a bad duration...
    """
    text = str(ref)
    where = f"scenario {text!r}"
    if text in PRESETS and not isinstance(ref, Path):
        data = PRESETS[text].model_dump()
    elif isinstance(ref, Path) or text.endswith(".toml") or "/" in text or Path(text).exists():
        path = Path(text)
        where = f"scenario file {text}"
        data = _from_file(path, _read_toml(path, where), where)
    else:
        raise UsageError(
            f"unknown scenario {text!r}",
            hint=f"use a preset ({', '.join(PRESETS)}) or the path of a .toml file",
        )
    data.update({key: value for key, value in overrides.items() if value is not None})
    # A user's job, or the hybrid job: the scenario is read as written, then moved onto it.
    job = data.pop("job", None)
    hybrid = bool(data.pop("hybrid", False))
    data.pop("dropped_faults", None)
    try:
        config = StressTestConfig.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{where}: {_one_line(exc)}", hint=_hint(exc)) from None
    if job is not None and hybrid:
        raise UsageError(
            "--hybrid runs the built-in hybrid job and --job names your own",
            "pick one of them",
        )
    if hybrid:
        return for_hybrid(config)
    if job is None:
        return config
    return _onto_job(config, str(job), overrides.get("pages"))


def _onto_job(config: StressTestConfig, job: str, pages_asked: int | None) -> StressTestConfig:
    from enduro.job import load_job  # the job's module is imported only when a job is named

    loaded = load_job(job)
    if loaded.discovers_pages:
        raise UsageError(
            f"job {job!r} finds its pages as it runs (Job.pages is a function)",
            "stress --job needs a job with a list of pages",
        )
    job_pages = len(loaded.page_keys)
    if pages_asked is not None and pages_asked > job_pages:
        raise UsageError(
            f"--pages {pages_asked} but job {job!r} has {job_pages} pages",
            f"give --pages {job_pages} or fewer",
        )
    return for_job(config, job, job_pages)


def _read_toml(path: Path, where: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"{where} not found", hint=f"give a preset ({', '.join(PRESETS)}) or an existing file"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from None


def _from_file(path: Path, table: dict[str, Any], where: str) -> dict[str, Any]:
    """The fields of a scenario file laid over its preset's (or over nothing)."""
    preset = table.pop("preset", None)
    profile = table.pop("profile", None)
    data: dict[str, Any] = {"name": path.stem}
    if preset is not None:
        if not isinstance(preset, str) or preset not in PRESETS:
            raise UsageError(
                f"{where}: unknown preset {preset!r}", hint=f"known presets: {', '.join(PRESETS)}"
            )
        data = PRESETS[preset].model_dump()
        data["name"] = path.stem
    if "faults" in table and isinstance(table["faults"], list):
        # Tables inherited from the preset keep only the types the file still names.
        for key in _MERGED_TABLES:
            data[key] = {k: v for k, v in data.get(key, {}).items() if k in table["faults"]}
    for key in _MERGED_TABLES:
        if key in table:
            data[key] = {**data.get(key, {}), **_table(table.pop(key), key, where)}
    criteria: dict[str, Any] = dict(data.get("criteria") or {})
    if profile is not None:
        if not isinstance(profile, str) or profile not in PROFILES:
            raise UsageError(
                f"{where}: unknown profile {profile!r}",
                hint=f"known profiles: {', '.join(PROFILES)}",
            )
        criteria = PROFILES[profile].model_dump()
    if "criteria" in table:
        given = _table(table.pop("criteria"), "criteria", where)
        if isinstance(given.get("max_recovery_p95"), dict) and criteria.get("max_recovery_p95"):
            given["max_recovery_p95"] = {
                **criteria["max_recovery_p95"],
                **given["max_recovery_p95"],
            }
        criteria.update(given)
    if criteria:
        data["criteria"] = criteria
    data.update(table)
    return data


def _table(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be a table", hint=f"write it as [{key}]")
    return dict(value)


def _one_line(exc: ValidationError) -> str:
    """The first problem of a validation error, as one line naming the field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    if kind == "missing":
        return f"missing field {field!r}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    message = str(first["msg"]).removeprefix("Value error, ")
    if kind != "value_error":
        message = f"{message}, got {first['input']!r}"
    return f"{field}: {message}" if field else message


def _hint(exc: ValidationError) -> str:
    first = exc.errors()[0]
    if first["type"] == "missing":
        return 'set it in the file, or start from a preset with preset = "light"'
    if first["type"] == "extra_forbidden":
        return "see StressTestConfig in enduro.stress.scenario for the fields"
    return ""
