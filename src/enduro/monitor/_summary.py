"""A run's resource samples, summarised: min / mean / max / p95 and leak estimates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from itertools import groupby
from typing import Any

from enduro.monitor._stats import estimate_leak, estimate_leak_between_restarts, summarize

__all__ = ["SERIES", "run_resources", "summarize_samples"]

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
        found = summarize([float(s[name]) / scale for s in samples if _measured(s, name)])
        if found is not None:
            series[name] = {"unit": unit, **asdict(found)}
    stretches = [
        [(float(s["pages"]), s["browser_pss"] / MB) for s in group if _has(s, "browser_pss")]
        for _, group in groupby(samples, key=lambda s: s.get("browser_starts"))
    ]
    browser = estimate_leak_between_restarts(stretches, warmup_pages=warmup_pages)
    runner = estimate_leak(
        [(float(s["pages"]), s["runner_rss"] / MB) for s in samples if _has(s, "runner_rss")],
        warmup_pages=warmup_pages,
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


def _has(sample: dict[str, Any], name: str) -> bool:
    """Whether a stored sample holds ``pages`` and a measured ``name`` (one from an
    older enduro, or written by hand, may lack a field)."""
    return "pages" in sample and _measured(sample, name)


def _measured(sample: dict[str, Any], name: str) -> bool:
    """Whether ``name`` was measured in ``sample``: browser memory only when the
    sample saw browser processes (none between two browsers, and none to see
    on this host for a browser from a Selenium Grid — not a 0 MB browser)."""
    if name not in sample:
        return False
    return not name.startswith("browser_") or sample.get("browser_count", 1) > 0


def run_resources(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What one run's samples say in a line: peak memory, and growth when it can be fitted.

    Built on :func:`summarize_samples`, so the leak estimate is the one the
    stress tester judges. ``leak_text`` says "not fitted (N samples)" for a
    series with too few samples past the warm-up (a short run).

    Returns:
        ``samples`` (count), ``peak_browser_pss_mb`` and ``peak_runner_rss_mb``
        (None without samples), ``leak`` (as in :func:`summarize_samples`) and
        ``leak_text``.
    """
    summary = summarize_samples(samples)
    series, leak = summary["series"], summary["leak"]
    unfitted = f"not fitted ({len(samples)} samples)"
    if leak["browser_pss"] is None and leak["runner_rss"] is None:
        leak_text = unfitted
    else:
        leak_text = "; ".join(
            f"{what} {unfitted}" if leak[name] is None else leak[name]["text"]
            for what, name in (("browser", "browser_pss"), ("runner", "runner_rss"))
        )
    return {
        "samples": len(samples),
        "peak_browser_pss_mb": _peak(series, "browser_pss"),
        "peak_runner_rss_mb": _peak(series, "runner_rss"),
        "leak": leak,
        "leak_text": leak_text,
    }


def _peak(series: dict[str, Any], name: str) -> float | None:
    found = series.get(name)
    return None if found is None else round(float(found["max"]), 1)
