"""The six built-in scenarios and the two named criteria profiles."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from enduro.stress.scenario._model import StressTestConfig, SuccessCriteria, parse_duration
from enduro.stress.vocabulary import FAULT_TYPES

__all__ = ["BASIC_FAULTS", "LENIENT", "PRESETS", "PROFILES"]

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
_ONE_MACHINE = tuple(fault for fault in FAULT_TYPES if fault != "database_restart")
# a database restart needs a store that is a server: the fleet's, not a SQLite file

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
            _ONE_MACHINE,
            min_injections={"runner_crash": 3, "browser_crash": 5},
        ),
        "endurance": _preset("endurance", 200, "8h", 0.05, _MEDIUM, cycle=True),
        "fleet": _preset(
            "fleet",
            120,
            "1h",
            0.05,
            (*BASIC_FAULTS, "runner_crash", "database_restart"),
            runners=3,
            min_injections={"runner_crash": 3},
        ),
    }
)
"""The five built-in scenarios, by name (issue 5's table)."""
