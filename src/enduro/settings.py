"""One settings object for the runner, read from ``ENDURO_*`` variables.

CLI flags and (later) scenario files map onto these same fields.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything the runner and the session manager can be told."""

    model_config = SettingsConfigDict(env_prefix="ENDURO_", frozen=True, extra="forbid")

    store: Path = Path("enduro.db")
    """Path of the SQLite store."""

    workers: int = Field(1, ge=1, le=32)
    """Browser sessions run side by side, one page loop each."""

    headless: bool = True
    """Run Chromium without a window."""

    chromium: str = "chromium"
    """Chromium binary (a name on PATH or a path); never downloaded."""

    chromedriver: str = "chromedriver"
    """chromedriver binary (a name on PATH or a path); never downloaded."""

    page_timeout: float = Field(60.0, gt=0)
    """Seconds a page may take, handler included, before it is cut short."""

    max_attempts: int = Field(4, ge=1)
    """Attempts a page gets before it is marked failed."""

    backoff_base: float = Field(1.0, ge=0)
    """First retry delay in seconds; doubles with each attempt."""

    backoff_max: float = Field(60.0, ge=0)
    """Longest retry delay in seconds."""

    restart_every_pages: int = Field(50, ge=0)
    """Restart the browser after this many pages (0: never)."""

    restart_max_age: float = Field(1800.0, ge=0)
    """Restart the browser once it is this many seconds old (0: never)."""

    max_restarts: int = Field(20, ge=1)
    """Consecutive failed browser starts before the run halts."""

    lease_seconds: float = Field(300.0, gt=0)
    """How long a claimed page stays leased to its runner without a heartbeat."""

    monitor_interval: float = Field(30.0, ge=0)
    """Seconds between resource samples (0: no monitor)."""

    alert_memory_percent: float = Field(90.0, gt=0, le=100)
    """System memory in use (of the cgroup limit, if any) that raises an alert
    and pauses new pages until it falls back."""

    alert_cpu_percent: float = Field(90.0, gt=0, le=100)
    """System CPU use that raises an alert."""

    alert_browser_pss_mb: float = Field(1500.0, gt=0)
    """Browser process tree PSS (MB) that raises an alert and restarts the browser."""

    alert_disk_free_mb: float = Field(500.0, ge=0)
    """Free disk (MB) where the store lives under which an alert is raised."""

    seed: int | None = None
    """Seed for retry jitter (None: from the OS)."""
