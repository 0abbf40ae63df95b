"""The production stress tester: scenarios, fault injection, the tester, the verdict.

The tester and the suite (which pull in the site, the runner and matplotlib)
load on first use, so ``enduro run enduro.stress.reference:job`` does not pay
for them.
"""

from typing import Any

from enduro.stress.injector import FailureInjector, FaultSchedule, Injection
from enduro.stress.results import StressTestResults, SuiteResults
from enduro.stress.scenario import (
    FAULT_TYPES,
    LENIENT,
    PRESETS,
    StressTestConfig,
    SuccessCriteria,
    load_scenario,
    parse_duration,
)

__all__ = [
    "FAULT_TYPES",
    "LENIENT",
    "PRESETS",
    "FailureInjector",
    "FaultSchedule",
    "Injection",
    "ProductionStressTester",
    "StressTestConfig",
    "StressTestResults",
    "SuccessCriteria",
    "SuiteResults",
    "load_scenario",
    "parse_duration",
    "run_scenario",
    "run_suite",
]

_LAZY = {
    "ProductionStressTester": "enduro.stress.tester",
    "run_scenario": "enduro.stress.suite",
    "run_suite": "enduro.stress.suite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
