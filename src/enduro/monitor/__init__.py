"""Resource monitor: samples, alerts, summaries and leak estimates."""

from enduro.monitor._alerts import Alert, AlertRule
from enduro.monitor._rules import default_rules
from enduro.monitor._sampler import Monitor, ResourceSample, group_memory

__all__ = ["Alert", "AlertRule", "Monitor", "ResourceSample", "default_rules", "group_memory"]
