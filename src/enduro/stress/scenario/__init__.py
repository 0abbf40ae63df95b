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

The model and its checks are in ``_model``, the presets and profiles in
``_presets``, reading files and narrowing a scenario onto a job in ``_load``;
the fault types come from :mod:`enduro.stress.vocabulary`.
"""

from enduro.stress.scenario._load import for_hybrid, for_job, load_scenario
from enduro.stress.scenario._model import (
    RUNNER_CRASH_SPACING,
    StressTestConfig,
    SuccessCriteria,
    parse_duration,
)
from enduro.stress.scenario._presets import BASIC_FAULTS, LENIENT, PRESETS, PROFILES
from enduro.stress.vocabulary import BROWSER_PAGE_FAULTS, FAULT_TYPES, JOB_FAULTS

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
