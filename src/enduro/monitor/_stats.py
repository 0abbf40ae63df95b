"""Summaries of resource series and memory-leak estimates from (pages, MB) samples.

A leak shows as memory that grows with the work done, not with time: the
estimators regress megabytes against pages processed and report the slope in
MB per 1,000 pages, with R² saying how much of the variation that line explains.
Pure Python (``statistics``), so the monitor has no numeric dependency.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "TREND_MIN_R_SQUARED",
    "LeakEstimate",
    "SeriesSummary",
    "estimate_leak",
    "estimate_leak_between_restarts",
    "summarize",
]

TREND_MIN_R_SQUARED = 0.5
"""Least R² for a fitted growth to be a trend rather than scatter: below it the line
explains under half the variation, and its slope says little about growth."""


@dataclass(frozen=True)
class SeriesSummary:
    """Count, range, mean and 95th percentile of a series of numbers."""

    count: int
    min: float
    mean: float
    max: float
    p95: float


def summarize(values: Sequence[float]) -> SeriesSummary | None:
    """Summarize ``values``; ``None`` when there are none.

    The 95th percentile interpolates linearly between the closest ranks, the
    same definition as numpy's default ``percentile(values, 95)``.
    """
    if not values:
        return None
    if len(values) == 1:
        p95 = float(values[0])
    else:
        # method="inclusive" is numpy's "linear"; cut point 94 is the 95th percentile.
        p95 = statistics.quantiles(values, n=100, method="inclusive")[94]
    return SeriesSummary(
        count=len(values),
        min=float(min(values)),
        mean=statistics.fmean(values),
        max=float(max(values)),
        p95=p95,
    )


@dataclass(frozen=True)
class LeakEstimate:
    """A fitted growth rate of memory against pages processed.

    Attributes:
        slope_mb_per_1000_pages: Growth in MB per 1,000 pages (negative when shrinking).
        r_squared: Share of the variance the line explains, 0 to 1.
        samples: Points used by the fit, after warm-up was dropped.
        pages_span: Pages the fit covers (summed over segments for the pooled fit).
        leaking: Whether slope and R² both passed the thresholds given to the estimator.
    """

    slope_mb_per_1000_pages: float
    r_squared: float
    samples: int
    pages_span: float
    leaking: bool

    def describe(self, what: str) -> str:
        """Return one plain sentence about ``what`` (e.g. ``"browser"``) for a report."""
        slope = _format_mb(self.slope_mb_per_1000_pages)
        if self.leaking:
            return f"{what} grows {slope} MB per 1,000 pages (R² {self.r_squared:.2f})"
        return f"{what} flat ({slope} MB per 1,000 pages, R² {self.r_squared:.2f})"


def estimate_leak(
    points: Sequence[tuple[float, float]],
    *,
    warmup_pages: float = 50,
    min_samples: int = 10,
    min_r_squared: float = TREND_MIN_R_SQUARED,
    min_slope_mb_per_1000: float = 5.0,
) -> LeakEstimate | None:
    """Fit one line of megabytes against pages processed.

    Args:
        points: ``(pages_processed, megabytes)`` samples, in any order.
        warmup_pages: Points within this many pages of the smallest pages value are
            dropped: caches fill at the start, which is growth but not a leak.
        min_samples: Fewest points, after warm-up, worth fitting.
        min_r_squared: Least R² for the growth to count as a leak.
        min_slope_mb_per_1000: Least slope, in MB per 1,000 pages, to count as a leak.

    Returns:
        The estimate, or ``None`` when too few points remain or they all share
        one pages value.
    """
    kept = _after_warmup(points, warmup_pages)
    if len(kept) < min_samples:
        return None
    pages = [p for p, _ in kept]
    mb = [m for _, m in kept]
    span = max(pages) - min(pages)
    if span <= 0:
        return None
    slope, intercept = statistics.linear_regression(pages, mb)
    mean_mb = statistics.fmean(mb)
    ss_res = sum((m - (slope * p + intercept)) ** 2 for p, m in kept)
    ss_tot = sum((m - mean_mb) ** 2 for m in mb)
    return _estimate(slope, ss_res, ss_tot, len(kept), span, min_r_squared, min_slope_mb_per_1000)


def estimate_leak_between_restarts(
    segments: Sequence[Sequence[tuple[float, float]]],
    *,
    warmup_pages: float = 50,
    min_samples: int = 10,
    min_r_squared: float = TREND_MIN_R_SQUARED,
    min_slope_mb_per_1000: float = 5.0,
) -> LeakEstimate | None:
    """Fit one common slope across browser lifetimes, each with its own baseline.

    Memory drops at every restart, so one line through the whole sawtooth
    understates the growth within each lifetime. This pooled within-segment fit
    centres each segment on its own mean pages and mean MB, then regresses the
    centred values through the origin: the slope is the growth rate shared by all
    segments, and R² comes from the centred fit.

    Args:
        segments: One ``(pages_processed, megabytes)`` series per browser lifetime.
        warmup_pages: Dropped from the start of each segment (see ``estimate_leak``).
        min_samples: Fewest points, summed over the segments used, worth fitting.
        min_r_squared: Least R² for the growth to count as a leak.
        min_slope_mb_per_1000: Least slope, in MB per 1,000 pages, to count as a leak.

    Returns:
        The estimate, or ``None`` when too few points remain. Segments left with
        fewer than two points after warm-up are skipped.
    """
    centred_pages: list[float] = []
    centred_mb: list[float] = []
    span = 0.0
    for segment in segments:
        kept = _after_warmup(segment, warmup_pages)
        if len(kept) < 2:
            continue
        mean_pages = statistics.fmean(p for p, _ in kept)
        mean_mb = statistics.fmean(m for _, m in kept)
        centred_pages.extend(p - mean_pages for p, _ in kept)
        centred_mb.extend(m - mean_mb for _, m in kept)
        span += max(p for p, _ in kept) - min(p for p, _ in kept)
    if len(centred_pages) < min_samples or span <= 0:
        return None
    slope, _ = statistics.linear_regression(centred_pages, centred_mb, proportional=True)
    ss_res = sum((m - slope * p) ** 2 for p, m in zip(centred_pages, centred_mb, strict=True))
    # Centred values have mean zero within each segment, hence overall.
    ss_tot = sum(m * m for m in centred_mb)
    return _estimate(
        slope, ss_res, ss_tot, len(centred_pages), span, min_r_squared, min_slope_mb_per_1000
    )


def _after_warmup(
    points: Sequence[tuple[float, float]], warmup_pages: float
) -> list[tuple[float, float]]:
    """Return the points at least ``warmup_pages`` past the smallest pages value."""
    if not points:
        return []
    start = min(p for p, _ in points) + warmup_pages
    return [(float(p), float(m)) for p, m in points if p >= start]


def _estimate(
    slope_mb_per_page: float,
    ss_res: float,
    ss_tot: float,
    samples: int,
    span: float,
    min_r_squared: float,
    min_slope_mb_per_1000: float,
) -> LeakEstimate:
    """Build a ``LeakEstimate`` from a fitted slope and its sums of squares."""
    # Clamped: rounding can push a perfect fit a hair outside [0, 1].
    r_squared = 0.0 if ss_tot == 0 else min(1.0, max(0.0, 1.0 - ss_res / ss_tot))
    slope = slope_mb_per_page * 1000
    return LeakEstimate(
        slope_mb_per_1000_pages=slope,
        r_squared=r_squared,
        samples=samples,
        pages_span=span,
        leaking=slope >= min_slope_mb_per_1000 and r_squared >= min_r_squared,
    )


def _format_mb(value: float) -> str:
    """Format megabytes for a sentence: whole MB from 10 up, one decimal below."""
    if abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:.1f}"
