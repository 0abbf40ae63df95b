"""Tests for series summaries and the memory-leak estimators."""

from __future__ import annotations

import random

import pytest

from enduro.monitor._stats import (
    LeakEstimate,
    SeriesSummary,
    estimate_leak,
    estimate_leak_between_restarts,
    summarize,
)

SLOPE_MB_PER_PAGE = 0.04  # 40 MB per 1,000 pages


def _linear(
    rng: random.Random, *, start: float, pages: int, step: float, base: float, slope: float
) -> list[tuple[float, float]]:
    """Points ``(pages, MB)`` on a line from ``base`` with noise of up to ±3 MB."""
    return [
        (start + i * step, base + slope * i * step + rng.uniform(-3, 3))
        for i in range(int(pages / step))
    ]


def test_summarize_matches_hand_computed_values() -> None:
    # Sorted 1, 2, 3, 4: rank 0.95 * 3 = 2.85 lies 85% of the way from 3 to 4.
    assert summarize([3, 1, 2, 4]) == SeriesSummary(count=4, min=1, mean=2.5, max=4, p95=3.85)


def test_summarize_p95_interpolates_like_numpy() -> None:
    summary = summarize(range(1, 101))
    assert summary is not None
    assert summary.p95 == pytest.approx(95.05)
    assert summary.mean == pytest.approx(50.5)


def test_summarize_single_value_and_empty() -> None:
    assert summarize([7.5]) == SeriesSummary(count=1, min=7.5, mean=7.5, max=7.5, p95=7.5)
    assert summarize([]) is None


def test_linear_growth_is_recovered_and_flagged() -> None:
    points = _linear(
        random.Random(1), start=0, pages=2000, step=10, base=300, slope=SLOPE_MB_PER_PAGE
    )
    assert len(points) == 200
    estimate = estimate_leak(points)
    assert estimate is not None
    assert estimate.slope_mb_per_1000_pages == pytest.approx(40, rel=0.05)
    assert estimate.r_squared > 0.9
    assert estimate.leaking
    assert estimate.samples == 195  # pages 0-40 are warm-up
    assert estimate.pages_span == 1940


def test_flat_noisy_series_is_not_a_leak() -> None:
    points = _linear(random.Random(2), start=0, pages=2000, step=10, base=500, slope=0)
    estimate = estimate_leak(points)
    assert estimate is not None
    assert abs(estimate.slope_mb_per_1000_pages) < 1
    assert estimate.r_squared < 0.1
    assert not estimate.leaking


def test_shallow_but_clean_growth_is_below_the_slope_threshold() -> None:
    points = [(float(p), 200 + 0.002 * p) for p in range(0, 2000, 10)]
    estimate = estimate_leak(points)
    assert estimate is not None
    assert estimate.slope_mb_per_1000_pages == pytest.approx(2)
    assert estimate.r_squared == pytest.approx(1)
    assert not estimate.leaking


def test_warmup_growth_is_dropped() -> None:
    # Caches fill over the first 50 pages (100 -> 400 MB), then memory stays flat.
    rng = random.Random(3)
    points = [(float(p), 100.0 + 6 * p) for p in range(0, 50, 5)]
    points += [(float(p), 400 + rng.uniform(-3, 3)) for p in range(50, 1000, 10)]
    estimate = estimate_leak(points)
    assert estimate is not None
    assert not estimate.leaking
    assert abs(estimate.slope_mb_per_1000_pages) < 5
    # Counting the start instead fits a steep slope to the same points.
    counted = estimate_leak(points, warmup_pages=0)
    assert counted is not None
    assert counted.slope_mb_per_1000_pages > 50


def test_warmup_is_measured_from_the_smallest_pages_value() -> None:
    points = [(float(p), 0.05 * p) for p in range(1000, 1200, 10)]  # 20 points, none at 0
    estimate = estimate_leak(points, warmup_pages=50)
    assert estimate is not None
    assert estimate.samples == 15


def test_too_few_points_or_no_span_gives_none() -> None:
    points = [(float(p), 0.05 * p) for p in range(50, 150, 10)]  # 10 points after warm-up
    assert estimate_leak([(0.0, 0.0), *points]) is not None
    assert estimate_leak([(0.0, 0.0), *points[1:]]) is None
    assert estimate_leak([(100.0, float(mb)) for mb in range(20)], warmup_pages=0) is None
    assert estimate_leak([]) is None


def _sawtooth(rng: random.Random) -> list[list[tuple[float, float]]]:
    """Four browser lifetimes of 500 pages, each restarting at its own baseline."""
    return [
        _linear(rng, start=500 * k, pages=500, step=10, base=base, slope=SLOPE_MB_PER_PAGE)
        for k, base in enumerate([400, 380, 430, 390])
    ]


def test_pooled_fit_recovers_growth_across_restarts() -> None:
    segments = _sawtooth(random.Random(4))
    pooled = estimate_leak_between_restarts(segments)
    assert pooled is not None
    assert pooled.slope_mb_per_1000_pages == pytest.approx(40, rel=0.05)
    assert pooled.leaking
    assert pooled.samples == 4 * 45  # each lifetime drops its own first 50 pages
    assert pooled.pages_span == 4 * 440
    # One line through the whole sawtooth misses the growth: restarts pull it flat.
    naive = estimate_leak([point for segment in segments for point in segment])
    assert naive is not None
    assert naive.slope_mb_per_1000_pages < 20
    assert not naive.leaking


def test_pooled_fit_of_one_segment_equals_the_plain_fit() -> None:
    segment = _linear(random.Random(5), start=0, pages=800, step=10, base=300, slope=0.01)
    pooled = estimate_leak_between_restarts([segment])
    plain = estimate_leak(segment)
    assert pooled is not None
    assert plain is not None
    assert pooled.slope_mb_per_1000_pages == pytest.approx(plain.slope_mb_per_1000_pages)
    assert pooled.r_squared == pytest.approx(plain.r_squared)


def test_pooled_fit_skips_short_segments_and_needs_enough_points() -> None:
    long = [(float(p), 100 + 0.04 * p) for p in range(0, 160, 10)]  # 11 points after warm-up
    short = [(1000.0, 900.0), (1060.0, 0.0)]  # one point left after warm-up
    estimate = estimate_leak_between_restarts([long, short])
    assert estimate is not None
    assert estimate.samples == 11
    assert estimate.slope_mb_per_1000_pages == pytest.approx(40)
    assert estimate_leak_between_restarts([long, short], min_samples=12) is None
    assert estimate_leak_between_restarts([]) is None


def test_describe_leaking_and_flat() -> None:
    leak = LeakEstimate(40.2, 0.971, samples=195, pages_span=1940, leaking=True)
    assert leak.describe("browser") == "browser grows 40 MB per 1,000 pages (R² 0.97)"
    flat = LeakEstimate(0.31, 0.012, samples=195, pages_span=1940, leaking=False)
    assert flat.describe("browser") == "browser flat (0.3 MB per 1,000 pages, R² 0.01)"
    big = LeakEstimate(1234.0, 0.99, samples=50, pages_span=500, leaking=True)
    assert big.describe("driver") == "driver grows 1,234 MB per 1,000 pages (R² 0.99)"
