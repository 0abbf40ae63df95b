"""A run's resource samples, summarised: min / mean / max / p95 and leak estimates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from itertools import groupby
from typing import Any

from enduro.monitor._stats import estimate_leak, estimate_leak_between_restarts, summarize

__all__ = ["SERIES", "summarize_samples"]

MB = 1024 * 1024

# Series summarised, with the unit they are reported in.
SERIES: dict[str, tuple[str, float]] = {
    "mem_percent": ("%", 1.0),
    "cpu_percent": ("%", 1.0),
    "runner_rss": ("MB", MB),
    "browser_count": ("processes", 1.0),
    "browser_pss": ("MB", MB),
    "browser_rss": ("MB", MB),
    "open_fds": ("fds", 1.0),
    "zombies": ("processes", 1.0),
    "disk_free": ("MB", MB),
}


def summarize_samples(
    samples: Sequence[dict[str, Any]], warmup_pages: float = 50
) -> dict[str, Any]:
    """Summaries of every series, and the leak estimates of the browser and the runner.

    The browser's memory drops at every restart, so its slope is fitted within
    the stretches between restarts (one common slope, an intercept each); the
    runner lives through the whole run and gets a single fit.
    """
    series = {}
    for name, (unit, scale) in SERIES.items():
        found = summarize([float(s[name]) / scale for s in samples if name in s])
        if found is not None:
            series[name] = {"unit": unit, **asdict(found)}
    stretches = [
        [(float(s["pages"]), s["browser_pss"] / MB) for s in group]
        for _, group in groupby(samples, key=lambda s: s.get("browser_starts"))
    ]
    browser = estimate_leak_between_restarts(stretches, warmup_pages=warmup_pages)
    runner = estimate_leak(
        [(float(s["pages"]), s["runner_rss"] / MB) for s in samples], warmup_pages=warmup_pages
    )
    return {
        "series": series,
        "leak": {
            "browser_pss": None
            if browser is None
            else {**asdict(browser), "text": browser.describe("browser")},
            "runner_rss": None
            if runner is None
            else {**asdict(runner), "text": runner.describe("runner")},
        },
    }
