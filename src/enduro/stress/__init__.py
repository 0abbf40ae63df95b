"""The production stress tester: scenarios, fault injection, the tester, the verdict.

The tester, the analysis and the suite (which pull in the site, the runner
and the monitor) load on first use, so ``enduro run
enduro.stress.reference:job`` does not pay for them. The results models live
in :mod:`enduro.report` (re-exported here); the fault vocabulary, one table
from fault type to delivery to error category, in :mod:`enduro.stress.vocabulary`.
"""

from typing import Any

from enduro.report import StressTestResults, SuiteResults
from enduro.stress.injector import FailureInjector, FaultSchedule, Injection
from enduro.stress.record import RunRecord, read_record
from enduro.stress.scenario import (
    FAULT_TYPES,
    LENIENT,
    PRESETS,
    StressTestConfig,
    SuccessCriteria,
    load_scenario,
    parse_duration,
)
from enduro.stress.vocabulary import FAULTS, FaultSpec

__all__ = [
    "FAULTS",
    "FAULT_TYPES",
    "LENIENT",
    "PRESETS",
    "FailureInjector",
    "FaultSchedule",
    "FaultSpec",
    "Injection",
    "ProductionStressTester",
    "RunRecord",
    "StressTestConfig",
    "StressTestResults",
    "SuccessCriteria",
    "SuiteResults",
    "analyse",
    "judge_again",
    "load_scenario",
    "parse_duration",
    "read_record",
    "run_scenario",
    "run_suite",
]

_LAZY = {
    "ProductionStressTester": "enduro.stress.tester",
    "analyse": "enduro.stress.analysis",
    "judge_again": "enduro.stress.suite",
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
