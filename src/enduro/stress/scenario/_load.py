"""Loading a scenario (a preset's name or a TOML file, then overrides) and narrowing
one onto the user's own job or onto the hybrid reference job."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from enduro.errors import UsageError
from enduro.stress.scenario._model import StressTestConfig
from enduro.stress.scenario._presets import PRESETS, PROFILES
from enduro.stress.vocabulary import BROWSER_PAGE_FAULTS, JOB_FAULTS, JOB_SUBSTITUTES

__all__ = ["for_hybrid", "for_job", "load_scenario"]


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
        fault = JOB_SUBSTITUTES.get(fault, fault)
        if fault in JOB_FAULTS and fault not in faults:
            faults.append(fault)
    dropped = tuple(f for f in config.faults if f not in JOB_FAULTS and f not in JOB_SUBSTITUTES)
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
