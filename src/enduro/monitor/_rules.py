"""The alert rules a run watches, from its settings."""

from __future__ import annotations

from enduro.monitor._alerts import AlertRule
from enduro.settings import Settings

__all__ = ["default_rules"]


def default_rules(settings: Settings) -> list[AlertRule]:
    """Memory, CPU, browser PSS and free-disk rules with the settings' thresholds."""
    return [
        AlertRule("mem_percent", settings.alert_memory_percent),
        AlertRule("cpu_percent", settings.alert_cpu_percent, sustain=5),
        AlertRule("browser_pss_mb", settings.alert_browser_pss_mb),
        AlertRule("disk_free_mb", settings.alert_disk_free_mb, above=False),
    ]
