"""Resource monitor: samples, alerts, summaries and leak estimates."""

from enduro.monitor._alerts import Alert, AlertRule
from enduro.monitor._rules import default_rules
from enduro.monitor._sampler import Monitor, ResourceSample, group_members, group_memory
from enduro.monitor._stats import (
    TREND_MIN_R_SQUARED,
    LeakEstimate,
    SeriesSummary,
    estimate_leak,
    estimate_leak_between_restarts,
    summarize,
)
from enduro.monitor._summary import run_resources, summarize_samples

__all__ = [
    "TREND_MIN_R_SQUARED",
    "Alert",
    "AlertRule",
    "LeakEstimate",
    "Monitor",
    "ResourceSample",
    "SeriesSummary",
    "default_rules",
    "estimate_leak",
    "estimate_leak_between_restarts",
    "group_members",
    "group_memory",
    "run_resources",
    "summarize",
    "summarize_samples",
]
